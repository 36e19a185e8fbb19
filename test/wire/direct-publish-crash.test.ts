// Publishing right after the commit (issue 21), with the outbox as the crash fallback: a control plane killed
// between committing a run's task messages and publishing them loses nothing, and the restarted one's relay
// publishes them exactly once. And a short attempt's start, progress and result, folded into one bus message,
// are stored and applied by one transaction. Real Postgres and nats-server; the control plane is its own process
// (so it can die); the executor host runs in this process with a counting executor, so every execution is seen.
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
const token = 'atl_wire-direct-publish-admin-token';
let env: Record<string, string>;

const { executor: countingNoop, executionsOf } = countingNoopExecutor();

beforeAll(async () => {
  // Commits must survive the SIGKILL below, as they do in any real deployment.
  [pg, nats] = await Promise.all([startPostgres({ durableCommits: true }), startNats()]);
  sql = postgres(pg.url, { max: 2, onnotice: () => {} });
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'atelier-wire-'));
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
  for (const name of ['wire-crash', 'wire-fold']) {
    const spec = { name, tasks: [{ name: 'only', module: 'test/sleep', executor: 'noop', retries: 0, parameters: { ms: 0 } }] };
    await api.gql(`mutation ($s: String!) { createWorkflow(spec: $s) { created } }`, { s: JSON.stringify(spec) });
  }
  hostBus = await createJetStreamBus({ url: nats.url, name: 'wire-host' });
  host = createExecutorHost({
    bus: hostBus,
    registry: createExecutorRegistry([countingNoop]),
    pools: ['noop'],
    hostName: 'wire-host',
    artifacts: { fetch: async () => '/nonexistent' },
    workRoot: path.join(dataDir, 'work'),
    warn: () => undefined,
  });
  await host.start();
}, 180_000);

afterAll(async () => {
  await host?.stop();
  await hostBus?.close();
  await cp?.kill();
  await sql?.end();
  await nats?.stop();
  await pg?.stop();
});

/** Retries while the control plane is down between a crash and its restart. */
async function gql(query: string, variables: Record<string, unknown> = {}) {
  for (let i = 0; ; i++) {
    try {
      return await apiClient(cp!.url, token).gql(query, variables);
    } catch (error) {
      if (i > 150) throw error;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

const waitForRun = (runId: string) => settledStatus(async () => (await sql<{ status: string }[]>`select status from runs where id = ${runId}`)[0]!.status);

it('a control plane killed between committing task messages and publishing them loses none: the relay publishes each once', async () => {
  await cp!.kill();
  // startRun's own transaction dispatches the task: the process dies right after its commit, before answering.
  await crashAt(env, 'tasks-committed', (url) =>
    apiClient(url, token)
      .gql(`mutation { startRun(workflow: "wire-crash") { id } }`)
      .catch(() => undefined),
  );
  const [run] = await sql<{ id: string }[]>`select r.id from runs r join workflows w on w.id = r.workflow_id where w.name = 'wire-crash'`;
  const [task] = await sql<{ id: string; status: string }[]>`select id, status from tasks where run_id = ${run!.id}`;
  // Committed and not published: the message waits in the outbox, and no host has seen it.
  expect(task!.status).toBe('QUEUED');
  expect((await sql`select count(*)::int as n from outbox where kind = 'task'`)[0]!.n).toBe(1);
  expect(executionsOf(task!.id)).toHaveLength(0);

  cp = await startControlPlaneProcess(env);
  expect(await waitForRun(run!.id)).toBe('SUCCEEDED');
  expect(executionsOf(task!.id)).toHaveLength(1);
  for (let i = 0; i < 100 && (await sql`select count(*)::int as n from outbox`)[0]!.n > 0; i++) await new Promise((r) => setTimeout(r, 100));
  expect((await sql`select count(*)::int as n from outbox`)[0]!.n).toBe(0);
}, 300_000);

it('a short attempt’s start, progress and result arrive as one message and are stored and applied by one transaction', async () => {
  const { startRun } = await gql(`mutation { startRun(workflow: "wire-fold") { id } }`);
  expect(await waitForRun(startRun.id)).toBe('SUCCEEDED');
  const [task] = await sql<{ id: string; xmin: string }[]>`select id, xmin::text from tasks where run_id = ${startRun.id}`;
  expect(executionsOf(task!.id)).toHaveLength(1);
  // Postgres stamps each row with the transaction that wrote it last: the events and the task's final update share it.
  const events = await sql<{ kind: string; xmin: string }[]>`select kind, xmin::text from task_events where task_id = ${task!.id} order by seq`;
  expect(events.map((e) => e.kind)).toEqual(['started', 'progress', 'result']);
  expect(new Set(events.map((e) => e.xmin)).size).toBe(1);
  expect(task!.xmin).toBe(events[0]!.xmin);
  // The run ended in that transaction too.
  const [run] = await sql<{ status: string; xmin: string }[]>`select status, xmin::text from runs where id = ${startRun.id}`;
  expect(run).toEqual({ status: 'SUCCEEDED', xmin: events[0]!.xmin });
}, 120_000);
