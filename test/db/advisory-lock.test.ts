// withTryAdvisoryLock (server/db/client.ts) guards what one replica at a time may do: the scheduler's cron firing and
// the object collector's pass. Its lock is a session lock on a reserved connection (a transaction's, idle for the whole
// guarded work, held back vacuum: test/object-store/collect-vacuum.test.ts). When Postgres ends the lock's connection
// under the guarded work (a restart), the work goes on without the lock; the caller's loop once started its next pass
// (which takes the lock again) beside it. Now the loss is thrown only once the work has ended.

import net from 'node:net';
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

// The reserve itself (porsager/postgres#1195): a reserve() queued for a busy pool was never settled once the server ended
// the connection it waited for. The pool opened that connection again with the reserve as its first query and took the
// reserve out of its queue; the connection, once ready, sent nothing for it and granted it to nobody. The scheduler's,
// trigger dispatcher's or collector's pass then never ended, and stopping the app waited for it forever
// (test/db/postgres-down.test.ts hung stopping its app once, under load, after its Postgres restart). The driver's patch
// (server/db/patches/postgres+3.4.9.patch) keeps a reserve queued until a connection is granted to it.
it('takes the lock on a connection opened again after the server ended the busy pool’s connections', async () => {
  // Two connections (opening takes one for its migration lock and migrates on the other), both made busy below.
  const single = await openDatabase({ url: server!.url, dataDir: '/nonexistent', maxConnections: 2 });
  const other = postgres(server!.url, { max: 1, onnotice: () => undefined });
  try {
    const key = 0x7465_7375;
    // The pool's connections busy, so the reserve waits in the queue; then the server ends them.
    const busy = Promise.all([1, 2].map(() => single.db.execute(sql`select pg_sleep(60)`).catch(() => undefined)));
    await sleeping(other, 2);
    let ran = false;
    // Far past the test's own time: what settles the reserve is the driver, not the bound.
    const guarded = withTryAdvisoryLock(single.db, key, async () => void (ran = true), { reserveTimeoutMs: 600_000 });
    await new Promise((r) => setImmediate(r));
    await other`select pg_terminate_backend(pid) from pg_stat_activity where query like '%pg_sleep(60)%' and pid <> pg_backend_pid()`;
    await busy;
    expect(await guarded).toBe(true);
    expect(ran).toBe(true);
    expect(await withTryAdvisoryLock(single.db, key, async () => undefined, { reserveTimeoutMs: 600_000 })).toBe(true);
  } finally {
    await other.end({ timeout: 1 });
    await single.close();
  }
}, 60_000);

it('grants a queued reserve on a connection opened again that fetches no types', async () => {
  // With fetch_types off no type query follows the connection's start, and the pool was never told it was ready.
  const pool = postgres(server!.url, { max: 1, fetch_types: false, onnotice: () => undefined });
  const other = postgres(server!.url, { max: 1, onnotice: () => undefined });
  try {
    const busy = pool`select pg_sleep(60)`.catch(() => undefined);
    await sleeping(other, 1);
    const reserved = pool.reserve();
    await new Promise((r) => setImmediate(r));
    await other`select pg_terminate_backend(pid) from pg_stat_activity where query like '%pg_sleep(60)%' and pid <> pg_backend_pid()`;
    await busy;
    const session = await within(reserved, 30_000, 'the reserve was never granted');
    expect((await session`select 1 as one`)[0]?.one).toBe(1);
    session.release();
    expect((await within(pool`select 2 as two`, 30_000, 'the pool lost its connection'))[0]?.two).toBe(2);
  } finally {
    await other.end({ timeout: 1 });
    await pool.end({ timeout: 1 });
  }
}, 60_000);

it('takes a failed reserve out of the queue, so the connection opened later is not granted to it and lost', async () => {
  // The pool's one connection goes through a relay that is down at first: the reserve fails with it. A reserve now
  // stays queued until a connection is granted to it; one that failed must leave the queue, or the connection opened
  // once the relay is up is granted to it and lost, and the pool has none left for the next query.
  const relay = await relayTo(server!.url);
  const pool = postgres(relay.url, { max: 1, onnotice: () => undefined, backoff: () => 0.05 });
  try {
    await expect(pool.reserve()).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    await relay.open();
    expect((await within(pool`select 1 as one`, 30_000, 'the pool lost its connection to the failed reserve'))[0]?.one).toBe(1);
  } finally {
    await pool.end({ timeout: 1 });
    await relay.close();
  }
}, 60_000);

// The bound stays for a pool busy longer than a pass may wait: the pass fails and is tried again, and the reserve the
// pool grants later is released at once (the pool keeps both its connections).
it('gives up a reserve the busy pool does not grant in time, and releases it when granted later', async () => {
  const single = await openDatabase({ url: server!.url, dataDir: '/nonexistent', maxConnections: 2 });
  const other = postgres(server!.url, { max: 1, onnotice: () => undefined });
  try {
    const key = 0x7465_7376;
    const busy = Promise.all([1, 2].map(() => single.db.execute(sql`select pg_sleep(60)`).catch(() => undefined)));
    await sleeping(other, 2);
    let ran = false;
    const guarded = withTryAdvisoryLock(single.db, key, async () => void (ran = true), { reserveTimeoutMs: 1_000 }).then(
      (held) => `held: ${held}`,
      (e: { code?: string }) => e.code,
    );
    expect(await guarded).toBe('CONNECTION_CLOSED');
    expect(ran).toBe(false);
    await other`select pg_cancel_backend(pid) from pg_stat_activity where query like '%pg_sleep(60)%' and pid <> pg_backend_pid()`;
    await busy;
    expect(await withTryAdvisoryLock(single.db, key, async () => void (ran = true), { reserveTimeoutMs: 30_000 })).toBe(true);
    expect(ran).toBe(true);
    // Both connections serve again: two statements at once run on two backends.
    const pids = await Promise.all(
      [1, 2].map(async () => ((await single.db.execute(sql`select pg_backend_pid() as pid, pg_sleep(0.3)`)) as unknown as { pid: number }[])[0]?.pid),
    );
    expect(new Set(pids).size).toBe(2);
  } finally {
    await other.end({ timeout: 1 });
    await single.close();
  }
}, 60_000);

async function sleeping(other: postgres.Sql, count: number): Promise<void> {
  while ((await other`select 1 from pg_stat_activity where query like '%pg_sleep(60)%' and pid <> pg_backend_pid()`).length < count)
    await new Promise((r) => setTimeout(r, 10));
}

async function within<T>(pending: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([pending, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(what)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** A TCP relay to the server on a port of its own, refusing connections (nothing listening) until opened. */
async function relayTo(url: string): Promise<{ url: string; open(): Promise<void>; close(): Promise<void> }> {
  const target = new URL(url);
  const probe = net.createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const port = (probe.address() as net.AddressInfo).port;
  await new Promise((r) => probe.close(r));
  const sockets = new Set<net.Socket>();
  const relay = net.createServer((client) => {
    const upstream = net.connect(Number(target.port), target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined).on('close', () => sockets.delete(s));
    }
    client.pipe(upstream).pipe(client);
  });
  const relayed = new URL(url);
  relayed.port = String(port);
  return {
    url: relayed.toString(),
    open: () => new Promise((r) => relay.listen(port, '127.0.0.1', () => r())),
    close: async () => {
      for (const s of sockets) s.destroy();
      if (relay.listening) await new Promise((r) => relay.close(r));
    },
  };
}
