// Exactly once, deterministically: a control plane that dies between storing a result and applying it, a task
// message redelivered after its task finished, and stale reports for a finished attempt. Real Postgres and
// nats-server; the control plane is its own process (so it can die), the executor host runs in this process with a
// counting executor, so every execution is seen.

import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import postgres from 'postgres';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Bus } from '../../plugins/bus/types';
import { createExecutorHost, type ExecutorHost } from '../../plugins/host';
import { type ExecutorEvent, SEQ_BLOCK } from '../../plugins/protocol';
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
const token = 'atl_exactly-once-admin-token';
let env: Record<string, string>;

const { executor: countingNoop, executionsOf } = countingNoopExecutor();

beforeAll(async () => {
  [pg, nats] = await Promise.all([startPostgres(), startNats()]);
  sql = postgres(pg.url, { max: 2, onnotice: () => {} });
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'atelier-once-'));
  env = {
    PORT: String(await freePort()),
    DATABASE_URL: pg.url,
    NATS_URL: nats.url,
    ATELIER_DATA_DIR: dataDir,
    ATELIER_ADMIN_TOKEN: token,
    ATELIER_TICK_MS: '200',
    // Far below the event consumer's 30 s ack wait: nothing may depend on the order of the two.
    ATELIER_HEARTBEAT_TIMEOUT_SECONDS: '2',
  };
  cp = await startControlPlaneProcess(env);
  const api = apiClient(cp.url, token);
  const r = await api.upload(PUBLISH, {}, 'artifact', await packDirectory(path.join(fixturesDir, 'modules', 'sleep')));
  expect(r.errors).toBeUndefined();
  for (const [name, sleepMs] of [
    ['once-crash', 1500],
    ['once-redeliver', 0],
    ['once-stale', 0],
  ] as const) {
    const spec = { name, tasks: [{ name: 'only', module: 'test/sleep', executor: 'noop', retries: 0, parameters: { ms: 0, sleepMs } }] };
    await api.gql(`mutation ($s: String!) { createWorkflow(spec: $s) { created } }`, { s: JSON.stringify(spec) });
  }
  hostBus = await createJetStreamBus({ url: nats.url, name: 'exactly-once-host' });
  host = createExecutorHost({
    bus: hostBus,
    registry: createExecutorRegistry([countingNoop]),
    pools: ['noop'],
    hostName: 'once-host',
    artifacts: { fetch: async () => '/nonexistent' },
    workRoot: path.join(dataDir, 'work'),
    heartbeatMs: 300,
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

async function startRun(workflow: string): Promise<string> {
  return (await gql(`mutation ($w: String!) { startRun(workflow: $w) { id } }`, { w: workflow })).startRun.id;
}

const waitForRun = (runId: string) => settledStatus(async () => (await gql(`query ($id: ID!) { run(id: $id) { status } }`, { id: runId })).run.status);

/** Resolves once the bus holds nothing unread: no task message waits and every event was recorded (acked). */
async function busDrained() {
  const nc = await connect({ servers: nats.url });
  try {
    const jsm = await jetstreamManager(nc);
    for (let i = 0; i < 300; i++) {
      const tasksLeft = (await jsm.streams.info('TASKS')).state.messages;
      const events = await jsm.consumers.info('EVENTS', 'control-plane');
      const eventsLast = (await jsm.streams.info('EVENTS')).state.last_seq;
      if (tasksLeft === 0 && host.running() === 0 && events.num_pending === 0 && events.num_ack_pending === 0 && events.ack_floor.stream_seq >= eventsLast)
        return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error('the bus did not drain in 30 s');
  } finally {
    await nc.close();
  }
}

const taskOf = async (runId: string) => (await sql`select * from tasks where run_id = ${runId}`)[0]!;
const successes = async (taskId: string) =>
  (await sql`select count(*)::int as n from task_events where task_id = ${taskId} and kind = 'result' and payload->'outcome'->>'state' = 'SUCCEEDED'`)[0]!
    .n as number;
const eventCount = async (taskId: string) => (await sql`select count(*)::int as n from task_events where task_id = ${taskId}`)[0]!.n as number;

it('a control plane killed after storing a result and before applying it neither loses the result nor runs the task again', async () => {
  // The first replica dies at the hook, the moment a result is in the database and not yet applied.
  await cp!.kill();
  const runId = await crashAt(
    env,
    'result-stored',
    async (url) => (await apiClient(url, token).gql(`mutation { startRun(workflow: "once-crash") { id } }`)).startRun.id as string,
  );
  const taskId = (await taskOf(runId)).id as string;
  expect(executionsOf(taskId)).toHaveLength(1);
  // Down for longer than the heartbeat timeout, as a crashed replica may well be.
  await new Promise((r) => setTimeout(r, 2500));
  cp = await startControlPlaneProcess(env);

  expect(await waitForRun(runId)).toBe('SUCCEEDED');
  await busDrained();
  const task = await taskOf(runId);
  expect({ status: task.status, attempt: task.attempt }).toEqual({ status: 'SUCCEEDED', attempt: 1 });
  expect(executionsOf(taskId)).toHaveLength(1);
  expect(await successes(taskId)).toBe(1);
}, 300_000);

it('a task message redelivered after its task finished is dropped by the host, not executed', async () => {
  const runId = await startRun('once-redeliver');
  expect(await waitForRun(runId)).toBe('SUCCEEDED');
  await busDrained();
  const before = await taskOf(runId);
  const [message] = executionsOf(before.id);
  expect(message).toBeDefined();
  const events = await eventCount(before.id);

  // The same attempt back on its queue, as JetStream redelivers it after a server restart lost the ack.
  await hostBus.publishTask('noop', message!, `${before.id}:${message!.attempt}:redelivered`);
  await busDrained();

  expect(executionsOf(before.id)).toHaveLength(1);
  expect(await taskOf(runId)).toEqual(before);
  expect(await eventCount(before.id)).toBe(events);
  expect(await successes(before.id)).toBe(1);
}, 180_000);

it('stale reports for an attempt that already finished change nothing', async () => {
  const runId = await startRun('once-stale');
  expect(await waitForRun(runId)).toBe('SUCCEEDED');
  await busDrained();
  const before = await taskOf(runId);
  const events = await eventCount(before.id);

  // A second execution of attempt 1 (another delivery: its own block of sequence numbers) reporting late.
  const base = { taskId: before.id as string, runId, attempt: 1, host: 'ghost', at: new Date().toISOString() };
  const seq = 3 * SEQ_BLOCK;
  const stale: ExecutorEvent[] = [
    { ...base, seq, kind: 'started', handle: null },
    { ...base, seq: seq + 1, kind: 'progress', fraction: 0.3, message: 'again' },
    { ...base, seq: seq + 2, kind: 'log', stream: 'stdout', lines: ['ran again'] },
    { ...base, seq: seq + 3, kind: 'metric', firstPoint: seq, points: [{ name: 'loss', value: 1, step: 1, at: Date.now() }] },
    { ...base, seq: seq + 4, kind: 'result', outcome: { state: 'SUCCEEDED', outputs: { other: true } }, durationMs: 5 },
    { ...base, seq: seq + 5, kind: 'result', outcome: { state: 'FAILED', reason: 'late' }, durationMs: 5 },
  ];
  for (const e of stale) await hostBus.publishEvent(e, `${e.taskId}:${e.attempt}:${e.seq}`);
  await busDrained();

  expect(await taskOf(runId)).toEqual(before);
  expect(await eventCount(before.id)).toBe(events);
  expect(await successes(before.id)).toBe(1);
  const { run } = await gql(`query ($id: ID!) { run(id: $id) { status } }`, { id: runId });
  expect(run.status).toBe('SUCCEEDED');
}, 180_000);
