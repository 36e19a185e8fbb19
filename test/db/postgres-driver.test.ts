// The Postgres driver survives a backend that dies under it. postgres@3.4.9 throws from a timer when a query is
// written to a connection whose socket has closed (porsager/postgres#1208): no caller can catch it, and the
// control plane died with it when Postgres restarted mid-run (the chaos suite saw it). Atelier patches the driver
// (server/db/patches, applied by `npm install`/`npm ci`); this is the upstream reproduction, and what must hold
// after it: the query fails as a closed connection, the process lives, and the next query works. And a backend
// terminated under a query (Postgres stopping: 57P01) leaves nothing behind: upstream replayed its error onto the
// first query of the reconnected connection (porsager/postgres#1223), so one request per busy connection failed
// after every restart of Postgres, though Postgres was back (test/db/postgres-down.test.ts saw it now and then).
// Nor does a query it ended mid-result (its row count was kept). And a transaction (or reserved connection) whose
// connection closed sends nothing more: upstream sent its later statements, and its COMMIT, on the same connection
// object once the pool had reconnected it for someone else.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type PostgresServer, startPostgres } from '../harness/postgres';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
let server: PostgresServer | undefined;

beforeAll(async () => {
  server = await startPostgres();
}, 60_000);

afterAll(async () => {
  await server?.stop();
}, 30_000);

// In a process of its own: unpatched, the driver's throw ends the process it runs in.
const REPRO = `
import postgres from 'postgres';
const sql = postgres(process.env.URL, { max: 2, onnotice: () => undefined });
const killer = postgres(process.env.URL, { max: 1, onnotice: () => undefined });
const reserved = await sql.reserve();
const [{ pid }] = await reserved\`select pg_backend_pid() as pid\`;
await killer\`select pg_terminate_backend(\${pid})\`;
const first = await reserved\`select 1 as one\`.then(() => 'ok', (e) => e.code ?? e.message);
// A second query on the dead reserved connection waits for a reconnect that never comes (porsager/postgres#1199);
// unpatched, its write throws from a timer once the connection is released.
reserved\`select 1 as one\`.catch(() => undefined);
await new Promise((r) => setTimeout(r, 100));
reserved.release();
const after = [];
for (let i = 0; i < 3; i++) after.push(await sql\`select 1 as one\`.then(() => 'ok', (e) => e.code ?? e.message));
console.log(JSON.stringify({ first, after }));
await Promise.all([sql.end({ timeout: 1 }), killer.end({ timeout: 1 })]);
`;

it('fails a query on a connection whose backend died instead of crashing the process, and goes on serving', async () => {
  const child = spawn(process.execPath, ['--input-type=module', '-e', REPRO], { cwd: root, env: { ...process.env, URL: server!.url } });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c));
  child.stderr.on('data', (c: Buffer) => (out += c));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  expect(out, out).not.toMatch(/TypeError/);
  expect(code, out).toBe(0);
  const result = JSON.parse(out.trim().split('\n').at(-1)!) as { first: string; after: string[] };
  // Linux may answer the dead backend's socket with a reset rather than a close.
  expect(result.first).toMatch(/^(CONNECTION_CLOSED|ECONNRESET)$/);
  // The pool drops the dead connection (a query still queued on it fails as closed) and serves the next one.
  expect(result.after.at(-1)).toBe('ok');
}, 60_000);

it('runs the first query after a backend was terminated under a query, instead of failing it with the old backend’s error', async () => {
  const sql = postgres(server!.url, { max: 1, onnotice: () => undefined });
  const killer = postgres(server!.url, { max: 1, onnotice: () => undefined });
  try {
    const [row] = await sql<{ pid: number }[]>`select pg_backend_pid() as pid`;
    const pid = row!.pid;
    const sleeping = sql`select pg_sleep(30)`.then(
      () => 'ok',
      (e: { code?: string }) => e.code,
    );
    while ((await killer`select 1 from pg_stat_activity where pid = ${pid} and state = 'active'`).length === 0) await new Promise((r) => setTimeout(r, 10));
    await killer`select pg_terminate_backend(${pid})`;
    // The query the backend was running fails as its connection does.
    expect(await sleeping).toMatch(/^(CONNECTION_CLOSED|ECONNRESET|57P01)$/);
    // The same (only) connection of the pool reconnects, and its first query runs: upstream failed it with 57P01.
    for (let i = 0; i < 2; i++) expect((await sql`select 1 as one`)[0]).toEqual({ one: 1 });
  } finally {
    await Promise.all([sql.end({ timeout: 1 }), killer.end({ timeout: 1 })]);
  }
}, 60_000);

it('answers the first query after a backend died mid-result with its own rows only, with fetch_types off (as DATABASE_URL may set it)', async () => {
  const sql = postgres(server!.url, { max: 1, onnotice: () => undefined, fetch_types: false });
  const killer = postgres(server!.url, { max: 1, onnotice: () => undefined });
  try {
    const [row] = await sql<{ pid: number }[]>`select pg_backend_pid() as pid`;
    // Rows wide enough that the backend sends the first four before it sleeps on the fifth.
    const streaming = sql`select i, repeat('x', 20000) as pad, case when i = 5 then pg_sleep(30) end from generate_series(1, 10) i`.then(
      () => 'ok',
      (e: { code?: string }) => e.code,
    );
    while ((await killer`select 1 from pg_stat_activity where pid = ${row!.pid} and wait_event = 'PgSleep'`).length === 0)
      await new Promise((r) => setTimeout(r, 10));
    await killer`select pg_terminate_backend(${row!.pid})`;
    expect(await streaming).toMatch(/^(CONNECTION_CLOSED|ECONNRESET|57P01)$/);
    // Upstream: [empty × 4, { one: 1 }], the dead query's row count kept as the new result's first index.
    expect([...(await sql`select 1 as one`)]).toEqual([{ one: 1 }]);
  } finally {
    await Promise.all([sql.end({ timeout: 1 }), killer.end({ timeout: 1 })]);
  }
}, 60_000);

/** Resolves the next time the pool of `sql` sees one of its connections close. */
function closes(): { options: { onclose: () => void }; next: () => Promise<void> } {
  let waiting: (() => void) | undefined;
  return { options: { onclose: () => waiting?.() }, next: () => new Promise<void>((r) => (waiting = r)) };
}

it('sends nothing of a transaction whose connection closed under it: neither its later statements nor its COMMIT reach the reconnected connection another transaction holds', async () => {
  // One connection, so that the one the dead transaction held is the one the next transaction gets once reconnected.
  const sql = postgres(server!.url, { max: 1, onnotice: () => undefined, backoff: () => 0.01 });
  const other = postgres(server!.url, { max: 1, onnotice: () => undefined });
  try {
    await other`create table tx_after_close (v text)`;
    let resumeDead!: () => void;
    const deadMayResume = new Promise<void>((r) => (resumeDead = r));
    let pid = 0;
    let insertedByDead!: (outcome: string) => void;
    const deadInsert = new Promise<string>((r) => (insertedByDead = r));
    // Its function waits between statements (as the scheduler's leader lock does while it works) when its backend dies.
    const dead = sql.begin(async (tx) => {
      pid = (await tx<{ pid: number }[]>`select pg_backend_pid() as pid`)[0]!.pid;
      await deadMayResume;
      insertedByDead(
        await tx`insert into tx_after_close values ('dead transaction')`.then(
          () => 'sent',
          (e: { code?: string }) => e.code ?? 'failed',
        ),
      );
      return 'returned';
    });
    const deadOutcome = dead.then(
      () => 'committed',
      (e: { code?: string }) => e.code ?? 'failed',
    );
    while (!pid) await new Promise((r) => setTimeout(r, 5));
    await other`select pg_terminate_backend(${pid})`;
    expect(await deadOutcome).toMatch(/^(CONNECTION_CLOSED|ECONNRESET|57P01)$/);

    let abandon!: () => void;
    const living = new Promise<void>((r) => (abandon = r));
    let began!: () => void;
    const livingBegan = new Promise<void>((r) => (began = r));
    const live = sql
      .begin(async (tx) => {
        await tx`insert into tx_after_close values ('living, first')`;
        began();
        await living;
        await tx`insert into tx_after_close values ('living, second')`;
        throw new Error('the living transaction gives up');
      })
      .catch((e: Error) => e.message);
    await livingBegan;
    // The dead transaction's function goes on: its statement and then its COMMIT (once it returns) must not run on the
    // connection the living transaction now holds. Upstream they did: the COMMIT committed 'living, first'.
    resumeDead();
    expect(await deadInsert).toMatch(/^(CONNECTION_CLOSED|ECONNRESET)$/);
    await new Promise((r) => setTimeout(r, 50));
    abandon();
    expect(await live).toBe('the living transaction gives up');
    expect([...(await other`select v from tx_after_close order by v`)]).toEqual([]);
    // The pool goes on serving.
    expect((await sql`select 1 as one`)[0]).toEqual({ one: 1 });
  } finally {
    await Promise.all([sql.end({ timeout: 1 }), other.end({ timeout: 1 })]);
  }
}, 60_000);

it('refuses the statements of a reserved connection that closed, and its release leaves the reconnected connection to its new holder', async () => {
  const closed = closes();
  const sql = postgres(server!.url, { max: 1, onnotice: () => undefined, backoff: () => 0.01, ...closed.options });
  const other = postgres(server!.url, { max: 1, onnotice: () => undefined });
  try {
    await other`create table reserved_after_close (v text)`;
    const reserved = await sql.reserve();
    const [{ pid }] = (await reserved<{ pid: number }[]>`select pg_backend_pid() as pid`) as unknown as [{ pid: number }];
    const gone = closed.next();
    await other`select pg_terminate_backend(${pid})`;
    await gone;

    let abandon!: () => void;
    const living = new Promise<void>((r) => (abandon = r));
    let began!: () => void;
    const livingBegan = new Promise<void>((r) => (began = r));
    const live = sql
      .begin(async (tx) => {
        await tx`insert into reserved_after_close values ('living, first')`;
        began();
        await living;
        await tx`insert into reserved_after_close values ('living, second')`;
        return 'committed';
      })
      .catch((e: { code?: string; message: string }) => e.code ?? e.message);
    await livingBegan;
    // Upstream this ran inside the living transaction and answered success; and the release took the connection from
    // that transaction, so that other queries of the pool were sent into it.
    const stale = await reserved`insert into reserved_after_close values ('stale holder')`.then(
      () => 'sent',
      (e: { code?: string }) => e.code ?? 'failed',
    );
    expect(stale).toBe('CONNECTION_CLOSED');
    reserved.release();
    abandon();
    expect(await live).toBe('committed');
    expect([...(await other`select v from reserved_after_close order by v`)].map((r) => r.v)).toEqual(['living, first', 'living, second']);
    expect((await sql`select 1 as one`)[0]).toEqual({ one: 1 });
  } finally {
    await Promise.all([sql.end({ timeout: 1 }), other.end({ timeout: 1 })]);
  }
}, 60_000);
