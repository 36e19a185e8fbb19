// Task batches and the outbox (protocol 3, issue 21): a control plane killed between committing a run's 40 task
// messages (one outbox row: one batch) and publishing them loses none; the restarted one's relay publishes the batch
// as the direct publish would have, under the same message id, and each task runs exactly once. Real Postgres and
// nats-server; the control plane is its own process (so it can die); the executor host runs in this process with a
// counting executor, so every execution is seen.
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Bus } from '../../plugins/bus/types';
import { createExecutorHost, type ExecutorHost } from '../../plugins/host';
import { createExecutorRegistry } from '../../plugins/registry';
import { packDirectory } from '../../server/artifacts/archive';
import { createJetStreamBus } from '../../server/bus/jetstream';
import { fixturesDir } from '../harness/app';
import { apiClient, PUBLISH } from '../harness/client';
import { type ControlPlaneProcess, crashAt, settledStatus, startControlPlaneProcess } from '../harness/control-plane-process';
import { countingNoopExecutor } from '../harness/counting-executor';
import { type NatsServer, startNats } from '../harness/nats';
import { freePort } from '../harness/ports';
import { type PostgresServer, startPostgres } from '../harness/postgres';

let pg: PostgresServer;
let nats: NatsServer;
let sql: postgres.Sql;
let cp: ControlPlaneProcess | undefined;
let hostBus: Bus;
let host: ExecutorHost;
const token = 'atl_wire-batch-crash-admin-token';
let env: Record<string, string>;
const TASKS = 40;

const { executor: countingNoop, executionsOf } = countingNoopExecutor();

beforeAll(async () => {
  // Commits must survive the SIGKILL below, as they do in any real deployment.
  [pg, nats] = await Promise.all([startPostgres({ durableCommits: true }), startNats()]);
  sql = postgres(pg.url, { max: 2, onnotice: () => {} });
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'atelier-wire-batch-'));
  env = {
    PORT: String(await freePort()),
    DATABASE_URL: pg.url,
    NATS_URL: nats.url,
    ATELIER_DATA_DIR: dataDir,
    ATELIER_ADMIN_TOKEN: token,
    ATELIER_TICK_MS: '200',
  };
  cp = await startControlPlaneProcess(env);
  const api = apiClient(cp.url, token);
  const r = await api.upload(PUBLISH, {}, 'artifact', await packDirectory(path.join(fixturesDir, 'modules', 'sleep')));
  expect(r.errors).toBeUndefined();
  const tasks = Array.from({ length: TASKS }, (_, i) => ({ name: `t${i}`, module: 'test/sleep', executor: 'noop', retries: 0, parameters: { ms: 0 } }));
  await api.gql(`mutation ($s: String!) { createWorkflow(spec: $s) { created } }`, { s: JSON.stringify({ name: 'batch-crash', tasks }) });
  hostBus = await createJetStreamBus({ url: nats.url, name: 'wire-batch-host' });
  host = createExecutorHost({
    bus: hostBus,
    registry: createExecutorRegistry([countingNoop]),
    pools: ['noop'],
    hostName: 'wire-batch-host',
    // A pool's batches are never larger than its smallest live host's capacity: room for the whole run in one.
    maxConcurrency: 64,
    artifacts: { fetch: async () => '/nonexistent' },
    workRoot: path.join(dataDir, 'work'),
    warn: () => undefined,
  });
  await host.start();
  // Batches are sized by the hosts the control plane has heard from: wait for this one's heartbeat.
  for (
    const deadline = Date.now() + 60_000;
    !(await sql`select 1 from executor_hosts where name = 'wire-batch-host'`).length;
    await new Promise((r) => setTimeout(r, 50))
  )
    if (Date.now() > deadline) throw new Error('the host’s heartbeat was not recorded in 60 s');
}, 180_000);

afterAll(async () => {
  await host?.stop();
  await hostBus?.close();
  await cp?.kill();
  await sql?.end();
  await nats?.stop();
  await pg?.stop();
});

const waitForRun = (runId: string) => settledStatus(async () => (await sql<{ status: string }[]>`select status from runs where id = ${runId}`)[0]!.status);

it('a control plane killed between committing a batch and publishing it loses no task: the relay publishes the batch, each task runs once', async () => {
  await cp!.kill();
  // startRun's own transaction dispatches the tasks: the process dies right after its commit, before answering.
  await crashAt(env, 'tasks-committed', (url) =>
    apiClient(url, token)
      .gql(`mutation { startRun(workflow: "batch-crash") { id } }`)
      .catch(() => undefined),
  );
  const [run] = await sql<{ id: string }[]>`select r.id from runs r join workflows w on w.id = r.workflow_id where w.name = 'batch-crash'`;
  const tasks = await sql<{ id: string; status: string }[]>`select id, status from tasks where run_id = ${run!.id}`;
  expect(tasks).toHaveLength(TASKS);
  // Committed and not published: the forty wait in the outbox as one batch, and no host has seen them.
  expect(tasks.every((t) => t.status === 'QUEUED')).toBe(true);
  const rows = await sql<{ msg_id: string; n: number }[]>`select msg_id, jsonb_array_length(payload->'tasks') as n from outbox where kind = 'task'`;
  expect(rows).toHaveLength(1);
  expect(rows[0]!.n).toBe(TASKS);
  expect(rows[0]!.msg_id).toMatch(new RegExp(`:1\\+${TASKS}$`));
  for (const t of tasks) expect(executionsOf(t.id)).toHaveLength(0);

  cp = await startControlPlaneProcess(env);
  expect(await waitForRun(run!.id)).toBe('SUCCEEDED');
  for (const t of tasks) expect(executionsOf(t.id)).toHaveLength(1);
  // The no-op executor runs no module code (Executor.tracking false): its attempts were let run without MLflow tokens.
  expect((await sql`select count(*)::int as n from tokens where task_id = any(${tasks.map((t) => t.id)}::uuid[])`)[0]!.n).toBe(0);
  expect(executionsOf(tasks[0]!.id)[0]!.tracking).toBeUndefined();
  for (let i = 0; i < 100 && (await sql`select count(*)::int as n from outbox`)[0]!.n > 0; i++) await new Promise((r) => setTimeout(r, 100));
  expect((await sql`select count(*)::int as n from outbox`)[0]!.n).toBe(0);
}, 300_000);
