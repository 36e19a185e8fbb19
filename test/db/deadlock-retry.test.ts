// Two transactions that lock the same two rows in opposite orders on real Postgres: one is aborted as the deadlock's
// victim (40P01). retryingTransaction runs the victim again, so both callers succeed and both writes are there; a
// plain db.transaction hands the victim's caller the error. Any other error is thrown at once, never retried.
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type Database, openDatabase, queryRows, retryingTransaction, type Tx } from '../../server/db/client';
import { type PostgresServer, startPostgres } from '../harness/postgres';

let pg: PostgresServer;
let database: Database;

beforeAll(async () => {
  pg = await startPostgres();
  database = await openDatabase({ url: pg.url, dataDir: await mkdtemp(path.join(os.tmpdir(), 'atelier-deadlock-')) });
  await database.db.execute(sql`create table deadlock_probe (id int primary key, writes int not null default 0)`);
  await database.db.execute(sql`insert into deadlock_probe (id) values (1), (2)`);
}, 60_000);
afterAll(async () => {
  await database?.close();
  await pg?.stop();
});

/** Each side locks its first row, waits until the other holds its own, then asks for the other's: a deadlock. */
function crossed(run: (fn: (tx: Tx) => Promise<void>) => Promise<void>) {
  let held = 0;
  const bothHold = async () => {
    held++;
    for (const deadline = Date.now() + 5_000; held < 2 && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 5));
  };
  const side = (first: number, second: number) => {
    let tries = 0;
    return run(async (tx) => {
      await tx.execute(sql`update deadlock_probe set writes = writes + 1 where id = ${first}`);
      if (tries++ === 0) await bothHold(); // only the first try waits for the other: a retry goes straight through
      await tx.execute(sql`update deadlock_probe set writes = writes + 1 where id = ${second}`);
    });
  };
  return Promise.allSettled([side(1, 2), side(2, 1)]);
}

it('runs a deadlock victim again, so both transactions commit', async () => {
  const before = await queryRows<{ writes: number }>(database.db, sql`select sum(writes)::int as writes from deadlock_probe`);
  const outcomes = await crossed((fn) => retryingTransaction(database.db, fn));
  expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'fulfilled']);
  const after = await queryRows<{ writes: number }>(database.db, sql`select sum(writes)::int as writes from deadlock_probe`);
  expect(after[0]!.writes - before[0]!.writes).toBe(4);
});

it('without it, the victim’s caller gets the deadlock; other errors are never retried', async () => {
  const outcomes = await crossed((fn) => database.db.transaction(fn));
  const failed = outcomes.filter((o) => o.status === 'rejected') as PromiseRejectedResult[];
  expect(failed).toHaveLength(1);
  expect(String((failed[0]!.reason as { cause?: { code?: string } }).cause?.code ?? (failed[0]!.reason as { code?: string }).code)).toBe('40P01');
  let calls = 0;
  await expect(
    retryingTransaction(database.db, async (tx) => {
      calls++;
      await tx.execute(sql`select * from no_such_table`);
    }),
  ).rejects.toThrow();
  expect(calls).toBe(1);
});

it('opens its transactions without a relational query builder per table, which drizzle would make for each', async () => {
  // Nothing in a transaction uses `tx.query`; drizzle builds one per table (~70) for every transaction on the schema's db.
  expect(await retryingTransaction(database.db, async (tx) => Object.keys(tx.query ?? {}))).toEqual([]);
  expect(await database.db.transaction(async (tx) => Object.keys(tx.query).length)).toBeGreaterThan(50);
  expect(await retryingTransaction(database.db, async (tx) => (await queryRows<{ n: number }>(tx, sql`select 1 as n`))[0]!.n)).toBe(1);
});
