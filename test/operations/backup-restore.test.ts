// Backups and restore as the README's "Backups and restore" says to take them, against real processes: Postgres
// (pg_dump while runs are in flight, pg_restore into a new database), the local object store (a copy), NATS kept
// running as it was (the control plane finds the queued tasks whose messages are gone). Runs queued or running at the
// backup and finished after it end, after the restore, in one more attempt; a run started after the backup is gone
// with it; what the restored database names of the object store is there, and a missing object says what to restore
// (it used to answer the 404 of a digest the token may not read, pointing at the token's scopes).
import { execFile } from 'node:child_process';
import { chmod, cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { queryRows } from '../../server/db/client';
import { startTestApp, type TestApp } from '../harness/app';
import { type ExecutorProcess, startExecutorProcess } from '../harness/executor-process';
import { type NatsServer, startNats } from '../harness/nats';
import { type PostgresServer, startPostgres } from '../harness/postgres';

const run = promisify(execFile);
const PG_BIN = '/usr/lib/postgresql/15/bin';
const ADMIN = 'atl_the-admin-token-of-the-backup-test';
const RUN = `query ($id: ID!) { run(id: $id) { status tasks { id status attempt message } } }`;
const ENDED = ['SUCCEEDED', 'FAILED', 'CANCELLED'];

let pg: PostgresServer;
let nats: NatsServer;
let scratch: string;
let t: TestApp | undefined;
let host: ExecutorProcess | undefined;
/** The control planes' local object store: the same path before and after the restore. */
let objectsDir: string;

beforeAll(async () => {
  [pg, nats] = await Promise.all([startPostgres({ durableCommits: true, migrated: true }), startNats()]);
  scratch = await mkdtemp(path.join(os.tmpdir(), 'atelier-backup-'));
  await chmod(scratch, 0o755); // a sandboxed module (run as nobody) reads the sleeping task's release file in gate/
  await mkdir(path.join(scratch, 'gate'), { mode: 0o755 });
  objectsDir = path.join(scratch, 'store');
}, 120_000);
afterAll(async () => {
  await host?.stop('SIGKILL');
  await t?.stop();
  await Promise.all([pg?.stop(), nats?.stop()]);
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

async function poll<T>(read: () => Promise<T>, ok: (value: T) => boolean, what: string, ms = 60_000): Promise<T> {
  for (const deadline = Date.now() + ms; ; await new Promise((r) => setTimeout(r, 100))) {
    const value = await read();
    if (ok(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(value)}`);
  }
}
const databaseUrl = (name: string) => pg.url.replace(/\/atelier$/, `/${name}`);
// A silent host is failed over after 2 s: a task RUNNING in the backup, whose host is gone after the restore.
const controlPlane = (database: string) =>
  startTestApp({
    DATABASE_URL: databaseUrl(database),
    NATS_URL: nats.url,
    ATELIER_ADMIN_TOKEN: ADMIN,
    ATELIER_OBJECTS_DIR: objectsDir,
    ATELIER_HEARTBEAT_TIMEOUT_SECONDS: '2',
  });
// One task at a time: the sleeping task holds the host while the other waits QUEUED.
const executorHost = async () =>
  startExecutorProcess(
    { NATS_URL: nats.url, ATELIER_URL: t!.url, ATELIER_TOKEN: ADMIN, ATELIER_DATA_DIR: await mkdtemp(path.join(scratch, 'host-')) },
    ['local'],
    ['--concurrency', '1'],
    { ATELIER_MODULE_READONLY_PATHS: path.dirname(released()) },
  );
const readRun = async (id: string) => (await t!.api.gql(RUN, { id })).run;
/** The file whose creation ends the sleeping task (test/sleep's `until`): it runs until the backup is taken. */
const released = () => path.join(scratch, 'gate', 'released');

it('restores a database dump and an object store copy taken while a run was in flight: the run ends, once more', async () => {
  t = await controlPlane('atelier');
  await t.publishFixture('echo');
  await t.publishFixture('sleep');
  await t.createWorkflow({ name: 'backed-up', tasks: [{ name: 'say', module: 'test/echo', parameters: { message: 'hi' } }] });
  await t.createWorkflow({ name: 'sleeping', tasks: [{ name: 'sleep', module: 'test/sleep', parameters: { ms: 0, until: released() } }] });
  // One run RUNNING on the only slot, the other QUEUED behind it, its message on the bus.
  host = await executorHost();
  const { startRun: running } = await t.api.gql(`mutation { startRun(workflow: "sleeping") { id } }`);
  await poll(
    () => readRun(running.id),
    (r) => r.tasks[0]?.status === 'RUNNING',
    'the sleeping task to run',
  );
  const { startRun: queued } = await t.api.gql(`mutation { startRun(workflow: "backed-up") { id } }`);
  await poll(
    () => readRun(queued.id),
    (r) => r.tasks[0]?.status === 'QUEUED',
    'the task to be queued',
  );
  await poll(
    () => queryRows<{ n: number }>(t!.app.services.db, sql`select count(*)::int as n from outbox`),
    (r) => r[0]!.n === 0,
    'the outbox to empty',
  );

  // The backup, the control plane running: the database first, then the object store (objects are only ever added,
  // so a copy taken after the dump holds every object the dump names).
  const dump = path.join(scratch, 'atelier.dump');
  await run(`${PG_BIN}/pg_dump`, ['--format=custom', `--file=${dump}`, pg.url]);
  await cp(objectsDir, path.join(scratch, 'objects'), { recursive: true });
  await writeFile(released(), ''); // the sleeping task may end now (and its attempt after the restore at once)

  // Work after the backup: both runs end, another starts and ends; then the database is lost.
  expect(
    (
      await poll(
        () => readRun(running.id),
        (r) => ENDED.includes(r.status),
        'the sleeping run to end',
      )
    ).status,
  ).toBe('SUCCEEDED');
  expect(
    (
      await poll(
        () => readRun(queued.id),
        (r) => ENDED.includes(r.status),
        'the queued run to end',
      )
    ).status,
  ).toBe('SUCCEEDED');
  const { startRun: later } = await t.api.gql(`mutation { startRun(workflow: "backed-up") { id } }`);
  expect(
    (
      await poll(
        () => readRun(later.id),
        (r) => ENDED.includes(r.status),
        'the later run to end',
      )
    ).status,
  ).toBe('SUCCEEDED');
  await host.stop();
  host = undefined;
  await t.stop();
  t = undefined;
  await rm(objectsDir, { recursive: true, force: true });

  // The restore: a new database from the dump, the object store from its copy, then the control plane and the
  // executor hosts. NATS kept running with its streams: the TASKS stream no longer holds the queued task's message
  // (its host took and acked it after the dump), which the control plane finds out from the stream itself.
  await run(`${PG_BIN}/psql`, [pg.url, '-c', 'create database restored']);
  await run(`${PG_BIN}/pg_restore`, ['--no-owner', `--dbname=${databaseUrl('restored')}`, dump]);
  await cp(path.join(scratch, 'objects'), objectsDir, { recursive: true });
  t = await controlPlane('restored');
  host = await executorHost();

  // The queued run (its first attempt ran after the backup, which the database cannot know) runs once more and ends.
  const restored = await poll(
    () => readRun(queued.id),
    (r) => ENDED.includes(r.status),
    'the restored run to end',
  );
  expect(restored.status, JSON.stringify(restored)).toBe('SUCCEEDED');
  expect(restored.tasks[0]).toMatchObject({ status: 'SUCCEEDED', attempt: 2 });
  const results = await queryRows<{ attempt: number }>(
    t.app.services.db,
    sql`select attempt from task_events where kind = 'result' and task_id = ${restored.tasks[0].id}::uuid`,
  );
  expect(results.map((r) => r.attempt)).toEqual([2]);
  // The task RUNNING in the backup: its host gone, failed over and run again.
  const rerun = await poll(
    () => readRun(running.id),
    (r) => ENDED.includes(r.status),
    'the restored sleeping run to end',
  );
  expect(rerun.status, JSON.stringify(rerun)).toBe('SUCCEEDED');
  expect(rerun.tasks[0]).toMatchObject({ status: 'SUCCEEDED', attempt: 2 });
  // The run started after the backup is not in it.
  expect((await t.api.raw(RUN, { id: later.id })).data?.run ?? null).toBeNull();

  // New runs work on the restored pair (the module's archive is there, its cached result too).
  const { startRun: next } = await t.api.gql(`mutation { startRun(workflow: "backed-up") { id } }`);
  expect(
    (
      await poll(
        () => readRun(next.id),
        (r) => ENDED.includes(r.status),
        'a new run to end',
      )
    ).status,
  ).toBe('SUCCEEDED');
}, 240_000);

it('says what to restore when the object store lacks what the restored database names', async () => {
  // A store copy older than the dump (or another store): here the archive's file is gone from the restored store.
  await rm(path.join(objectsDir, 'sha256'), { recursive: true, force: true });
  await host!.stop();
  host = await executorHost(); // a new host: nothing cached
  await t!.createWorkflow({ name: 'backed-up', tasks: [{ name: 'say', module: 'test/echo', parameters: { message: 'not cached' } }] });
  const { startRun } = await t!.api.gql(`mutation { startRun(workflow: "backed-up") { id } }`);
  const ended = await poll(
    () => readRun(startRun.id),
    (r) => ENDED.includes(r.status),
    'the run to end',
  );
  expect(ended.status).toBe('FAILED');
  expect(ended.tasks[0].message).toMatch(
    /HTTP 404 The object store lacks this module archive, which the database names: restore the store from the copy taken with the database's backup \(README: Backups and restore\), or publish it again\.$/,
  );
}, 120_000);
