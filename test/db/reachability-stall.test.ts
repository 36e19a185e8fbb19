// The reachability probe (server/db/reachability.ts) tells a silent Postgres from a stall of this process. When the
// event loop was blocked past the probe's deadline (a long synchronous stretch), the deadline's timer and the probe's
// answer were due together, timers ran first, and a healthy Postgres was declared out of reach: every pooled
// connection destroyed, the next statement failing CONNECTION_CLOSED (test/db/prepared.test.ts in CI, while the same
// process migrated an embedded database).
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type Database, openDatabase, queryRows } from '../../server/db/client';
import { type AppDatabase, appDatabase } from '../harness/shared-postgres';

let pg: AppDatabase;
let database: Database;
const logged: string[] = [];

beforeAll(async () => {
  pg = await appDatabase();
  database = await openDatabase({ url: pg.url, dataDir: '', maxConnections: 2, unreachableAfterMs: 300, log: (m) => logged.push(m) });
}, 120_000);

afterAll(async () => {
  await database?.close();
  await pg?.drop();
});

it('does not take a stall of this process for Postgres out of reach', async () => {
  const one = async () => (await queryRows<{ n: number }>(database.db, sql`select 1 as n`))[0]!.n;
  expect(await one()).toBe(1);
  // Back-to-back synchronous stretches of 400 ms, each in its own turn of the event loop, for 4 s: a probe (one a
  // second) goes out between two of them, and its answer and its 300 ms deadline are both due when the next one ends.
  const end = Date.now() + 4_000;
  await new Promise<void>((done) => {
    const stall = () => {
      const until = Date.now() + 400;
      while (Date.now() < until); // no timer runs, no socket is read
      if (Date.now() < end) setImmediate(stall);
      else done();
    };
    setImmediate(stall);
  });
  await new Promise((resolve) => setTimeout(resolve, 1_500)); // the probes in flight answered (or not)
  expect(
    logged.filter((m) => /out of reach/.test(m)),
    logged.join('\n'),
  ).toEqual([]);
  expect(await one()).toBe(1);
}, 60_000);
