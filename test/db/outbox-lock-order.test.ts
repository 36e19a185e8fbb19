// A cancel withdrawing attempts still in the outbox against an enqueue deleting the same rows (the published rows it
// takes over from the relay), on real Postgres: both delete several outbox rows, so both take them in id order
// (docs/architecture.md, "Lock order"). The test's transaction deletes as the enqueue does; the cancel's withdrawal
// (stopAttempts) is sent once the first row is held, and the second row is taken once it waits. In the old order (the
// rows' message ids, here also their order on disk) the two waited on each other, and the test's transaction, with the
// shorter deadlock_timeout, was the one aborted (40P01).
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type Database, openDatabase, queryRows } from '../../server/db/client';
import { stopAttempts } from '../../server/orchestrator/cancel';
import type { TxContext } from '../../server/orchestrator/context';
import { deletePublishedRows } from '../../server/orchestrator/dispatch';
import { type PostgresServer, startPostgres } from '../harness/postgres';

let pg: PostgresServer;
let database: Database;

beforeAll(async () => {
  pg = await startPostgres();
  database = await openDatabase({ url: pg.url, dataDir: await mkdtemp(path.join(os.tmpdir(), 'atelier-outbox-locks-')) });
}, 60_000);
afterAll(async () => {
  await database?.close();
  await pg?.stop();
});

const blocked = async () =>
  (await queryRows<{ n: number }>(database.db, sql`select count(*)::int as n from pg_stat_activity where wait_event_type = 'Lock'`))[0]!.n;

it("a cancel withdraws its attempts' outbox rows in id order, as an enqueue deletes the published rows it takes", async () => {
  // Row 200 written first, with the message id that sorts first: a scan and the message ids both meet it before 100.
  const task = (id: number, taskId: string) =>
    sql`insert into outbox (id, kind, pool, msg_id, payload) values (${id}, 'task', 'default', ${`${taskId}:1`}, '{}')`;
  await database.db.execute(task(200, 'a-task'));
  await database.db.execute(task(100, 'b-task'));

  let withdrawn: Promise<unknown> | undefined;
  await database.db.transaction(async (tx) => {
    await tx.execute(sql`set local deadlock_timeout = '50ms'`);
    await tx.execute(sql`select id from outbox where id = 100 for update`);
    withdrawn = database.db.transaction((cancelTx) =>
      stopAttempts(
        { tx: cancelTx, step: { at: new Date(), outbox: false } } as unknown as TxContext,
        [
          { taskId: 'a-task', attempt: 1 },
          { taskId: 'b-task', attempt: 1 },
        ],
        'cancelled',
      ),
    );
    withdrawn.catch(() => {}); // awaited below
    for (let i = 0; i < 500 && (await blocked()) === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(await blocked()).toBeGreaterThan(0);
    await tx.execute(sql`select id from outbox where id = 200 for update`);
  });
  await withdrawn;
  const rows = await queryRows<{ kind: string; msg_id: string }>(database.db, sql`select kind, msg_id from outbox order by msg_id`);
  expect(rows.map((r) => r.kind)).toEqual(['cancel', 'cancel']);
});

it('an enqueue deletes exactly the published rows it takes, one or several (the several locked in id order)', async () => {
  await database.db.execute(sql`delete from outbox`);
  for (const id of [300, 301, 302, 303])
    await database.db.execute(sql`insert into outbox (id, kind, pool, msg_id, payload) values (${id}, 'task', 'default', ${`t${id}:1`}, '{}')`);
  await database.db.execute(sql`with gone as (${deletePublishedRows(['302', 300])}) select 1`);
  await database.db.execute(sql`with gone as (${deletePublishedRows([303])}) select 1`);
  const left = await queryRows<{ id: string | number }>(database.db, sql`select id from outbox order by id`);
  expect(left.map((r) => Number(r.id))).toEqual([301]);
});
