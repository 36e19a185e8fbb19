// nats-server started again without its JetStream store loses the task messages it held: a task QUEUED before then
// has no message any host could pull. The control plane notices (the task stream is younger than the task's
// queueing) and dispatches the task again, as the platform's failure, once: the lost attempt can never run.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { queryRows } from '../../server/db/client';
import { startTestApp, type TestApp } from '../harness/app';
import { type ExecutorProcess, startExecutorProcess } from '../harness/executor-process';
import { type NatsServer, startNats } from '../harness/nats';
import { refused } from '../harness/ports';

let nats: NatsServer | undefined;
let t: TestApp | undefined;
let host: ExecutorProcess | undefined;
const RUN = `query ($id: ID!) { run(id: $id) { status tasks { id status attempt message } } }`;

beforeAll(async () => {
  nats = await startNats();
  // No executor host in the control plane: the task waits QUEUED, its message on the bus, until one starts.
  t = await startTestApp({ NATS_URL: nats.url });
  await t.publishFixture('echo');
  await t.createWorkflow({ name: 'store-lost', tasks: [{ name: 'say', module: 'test/echo', parameters: { message: 'hi' } }] });
}, 60_000);
afterAll(async () => {
  await host?.stop('SIGKILL');
  await t?.stop();
  await nats?.stop();
});

async function poll<T>(read: () => Promise<T>, ok: (value: T) => boolean, what: string, ms = 30_000): Promise<T> {
  for (const deadline = Date.now() + ms; ; await new Promise((r) => setTimeout(r, 100))) {
    const value = await read();
    if (ok(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(value)}`);
  }
}

it('dispatches again, once, a task QUEUED when nats-server came back without its store', async () => {
  const { startRun } = await t!.api.gql(`mutation { startRun(workflow: "store-lost") { id } }`);
  const read = async () => (await t!.api.gql(RUN, { id: startRun.id })).run;
  await poll(read, (run) => run.tasks[0]?.status === 'QUEUED', 'the task to be queued');
  // Its message published (the outbox empty), then nats-server killed, its store removed, started again empty.
  await poll(
    () => queryRows<{ n: number }>(t!.app.services.db, sql`select count(*)::int as n from outbox`),
    (r) => r[0]!.n === 0,
    'the outbox to empty',
  );
  const restarted = nats!.restart('SIGKILL', 200);
  while (!(await refused(nats!.port))) await new Promise((r) => setTimeout(r, 20));
  await rm(path.join(nats!.storeDir, 'jetstream'), { recursive: true, force: true });
  await restarted;

  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'atelier-store-lost-'));
  host = await startExecutorProcess({ NATS_URL: nats!.url, ATELIER_URL: t!.url, ATELIER_TOKEN: t!.app.adminToken, ATELIER_DATA_DIR: dataDir });
  const run = await poll(read, (r) => ['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(r.status), 'the run to end');
  expect(run.status, JSON.stringify(run)).toBe('SUCCEEDED');
  // The lost attempt never ran: the task's second attempt is its one execution.
  expect(run.tasks[0]).toMatchObject({ status: 'SUCCEEDED', attempt: 2 });
  const results = await queryRows<{ attempt: number }>(
    t!.app.services.db,
    sql`select attempt from task_events where kind = 'result' and task_id = ${run.tasks[0].id}::uuid`,
  );
  expect(results.map((r) => r.attempt)).toEqual([2]);
}, 90_000);
