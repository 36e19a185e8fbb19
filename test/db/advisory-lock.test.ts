// withTryAdvisoryLock (server/db/client.ts) guards what one replica at a time may do: the scheduler's cron firing and
// the object collector's pass. Its lock is a session lock on a reserved connection (a transaction's, idle for the whole
// guarded work, held back vacuum: test/object-store/collect-vacuum.test.ts). When Postgres ends the lock's connection
// under the guarded work (a restart), the work goes on without the lock; the caller's loop once started its next pass
// (which takes the lock again) beside it. Now the loss is thrown only once the work has ended.

import { sql } from 'drizzle-orm';
import postgres from 'postgres';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type Database, openDatabase, withTryAdvisoryLock } from '../../server/db/client';
import { type PostgresServer, startPostgres } from '../harness/postgres';

let server: PostgresServer | undefined;
let database: Database | undefined;

beforeAll(async () => {
  server = await startPostgres();
  database = await openDatabase({ url: server.url, dataDir: '/nonexistent', maxConnections: 3 });
}, 120_000);

afterAll(async () => {
  await database?.close();
  await server?.stop();
}, 30_000);

it('ends only once the guarded work has ended when the lock’s connection closes under it', async () => {
  const other = postgres(server!.url, { max: 1, onnotice: () => undefined });
  try {
    const key = 0x7465_7374;
    let finishWork!: () => void;
    const workMayEnd = new Promise<void>((r) => (finishWork = r));
    let working!: () => void;
    const workStarted = new Promise<void>((r) => (working = r));
    let workEnded = false;
    let guardEnded = false;
    const guarded = withTryAdvisoryLock(database!.db, key, async () => {
      working();
      await workMayEnd;
      workEnded = true;
    })
      .then(
        (held) => `held: ${held}`,
        (e: { code?: string; message: string }) => e.code ?? e.message,
      )
      .finally(() => (guardEnded = true));
    await workStarted;
    const [holder] = await other<{ pid: number }[]>`select pid from pg_locks where locktype = 'advisory' and objid = ${key} and granted`;
    await other`select pg_terminate_backend(${holder!.pid})`;
    // The lock is free again: the next pass would take it while the first pass's work still runs.
    while ((await other`select 1 from pg_locks where locktype = 'advisory' and objid = ${key}`).length) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 100));
    expect(guardEnded).toBe(false);
    finishWork();
    expect(await guarded).toMatch(/^(CONNECTION_CLOSED|ECONNRESET|57P01)$/);
    expect(workEnded).toBe(true);
  } finally {
    await other.end({ timeout: 1 });
  }
}, 60_000);

// The reserve itself: postgres-js strands a reserve() queued for a busy pool when the connection it waits for is ended by
// the server (porsager/postgres#1195: it never settles). The scheduler's, trigger dispatcher's or collector's pass then
// never ended, and stopping the app waited for it forever (test/db/postgres-down.test.ts hung stopping its app once,
// under load, after its Postgres restart). Now a reserve not granted in time fails the pass, which is tried again.
it('gives up a reserve the driver strands when the connection it waits for is ended, and the next pass takes the lock', async () => {
  // Two connections (opening takes one for its migration lock and migrates on the other), both made busy below.
  const single = await openDatabase({ url: server!.url, dataDir: '/nonexistent', maxConnections: 2 });
  const other = postgres(server!.url, { max: 1, onnotice: () => undefined });
  try {
    const key = 0x7465_7375;
    // The pool's connections busy, so the reserve waits in the queue; then the server ends them.
    const busy = Promise.all([1, 2].map(() => single.db.execute(sql`select pg_sleep(60)`).catch(() => undefined)));
    while ((await other`select 1 from pg_stat_activity where query like '%pg_sleep(60)%' and pid <> pg_backend_pid()`).length < 2)
      await new Promise((r) => setTimeout(r, 10));
    let ran = false;
    const guarded = withTryAdvisoryLock(single.db, key, async () => void (ran = true), { reserveTimeoutMs: 2_000 }).then(
      (held) => `held: ${held}`,
      (e: { code?: string; message: string }) => e.code ?? e.message,
    );
    await new Promise((r) => setImmediate(r));
    await other`select pg_terminate_backend(pid) from pg_stat_activity where query like '%pg_sleep(60)%' and pid <> pg_backend_pid()`;
    await busy;
    expect(await guarded).toBe('CONNECTION_CLOSED');
    expect(ran).toBe(false);
    expect(await withTryAdvisoryLock(single.db, key, async () => void (ran = true), { reserveTimeoutMs: 2_000 })).toBe(true);
    expect(ran).toBe(true);
  } finally {
    await other.end({ timeout: 1 });
    await single.close();
  }
}, 60_000);
