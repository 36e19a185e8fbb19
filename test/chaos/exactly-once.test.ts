// Exactly once, deterministically: a control plane that dies between storing a result and applying it, a task
// message redelivered after its task finished, and stale reports for a finished attempt. Real Postgres and
// nats-server; the control plane is its own process (so it can die), the executor host runs in this process with a
// counting executor, so every execution is seen.

import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import type postgres from 'postgres';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Bus } from '../../plugins/bus/types';
import type { ExecutorHost } from '../../plugins/host';
import { type ExecutorEvent, SEQ_BLOCK } from '../../plugins/protocol';
import { apiClient } from '../harness/client';
import { type ControlPlaneProcess, crashAt, retryingGql, settledStatus, startControlPlaneProcess } from '../harness/control-plane-process';
import { type CrashWorld, startCrashWorld } from '../harness/crash-world';

let world: CrashWorld;
let sql: postgres.Sql;
let cp: ControlPlaneProcess | undefined;
let hostBus: Bus;
let host: ExecutorHost;
let env: Record<string, string>;
const token = 'atl_exactly-once-admin-token';
const executionsOf = (taskId: string) => world.executionsOf(taskId);

beforeAll(async () => {
  world = await startCrashWorld({
    name: 'exactly-once',
    workflows: {
      'once-crash': [{ name: 'only', parameters: { ms: 0, sleepMs: 1500 } }],
      'once-redeliver': [{ name: 'only', parameters: { ms: 0, sleepMs: 0 } }],
      'once-stale': [{ name: 'only', parameters: { ms: 0, sleepMs: 0 } }],
      'once-carried': [{ name: 'only', parameters: { ms: 0, sleepMs: 0 } }],
    },
    // Far below the event consumer's 30 s ack wait: nothing may depend on the order of the two.
    env: { ATELIER_HEARTBEAT_TIMEOUT_SECONDS: '2' },
    host: { heartbeatMs: 300 },
  });
  ({ sql, cp, env, bus: hostBus, host } = world);
}, 180_000);

afterAll(async () => {
  await world?.stop(cp);
});

/** Retries while the control plane is down between a crash and its restart. */
const gql = retryingGql(() => cp!.url, token);

async function startRun(workflow: string): Promise<string> {
  return (await gql(`mutation ($w: String!) { startRun(workflow: $w) { id } }`, { w: workflow })).startRun.id;
}

const waitForRun = (runId: string) => settledStatus(async () => (await gql(`query ($id: ID!) { run(id: $id) { status } }`, { id: runId })).run.status);

/** Resolves once the bus holds nothing unread: no task message waits and every event was recorded (acked). */
async function busDrained() {
  const nc = await connect({ servers: world.natsUrl });
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

it('stale reports for an attempt that already finished change nothing; its results are noted as ignored', async () => {
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
  // Of the other execution, only a note per result it reported (in the task's log, under the result's own number).
  const added = await sql<{ seq: string; kind: string; line: string }[]>`
    select seq, kind, payload->'lines'->>0 as line from task_events where task_id = ${before.id} and seq >= ${seq} order by seq`;
  expect(added.map((e) => [Number(e.seq) - seq, e.kind])).toEqual([
    [4, 'log'],
    [5, 'log'],
  ]);
  expect(added[0]!.line).toMatch(/^\[atelier\] ignored the result of execution 3 of attempt 1 on ghost \(SUCCEEDED\)/);
  expect(added[1]!.line).toContain('(FAILED: late)');
  expect(await eventCount(before.id)).toBe(events + 2);
  expect(await successes(before.id)).toBe(1);
  const { run } = await gql(`query ($id: ID!) { run(id: $id) { status } }`, { id: runId });
  expect(run.status).toBe('SUCCEEDED');
}, 180_000);

it('a start and a progress report their result’s row carries, delivered again alone, are neither stored nor shown again', async () => {
  const runId = await startRun('once-carried');
  expect(await waitForRun(runId)).toBe('SUCCEEDED');
  await busDrained();
  const before = await taskOf(runId);
  const [result] = await sql<
    {
      progress: { seq: number; fraction: number; message: string | null; at: string } | null;
      started: { seq: number; at: string } | null;
      host: string;
    }[]
  >`select payload->'progress' as progress, payload->'started' as started, payload->>'host' as host from task_events where task_id = ${before.id} and kind = 'result'`;
  // A short attempt's start and progress travel with its result and are stored in the result's row.
  expect(result!.progress).not.toBeNull();
  expect(result!.started).not.toBeNull();
  const attempts = async () =>
    (await gql(`query ($id: ID!) { run(id: $id) { tasks { attempts { attempt host startedAt finishedAt state } } } }`, { id: runId })).run.tasks[0].attempts;
  // The task's attempts still show when it started.
  const shownAttempts = await attempts();
  expect(shownAttempts).toEqual([
    { attempt: 1, host: result!.host, startedAt: new Date(result!.started!.at).toISOString(), finishedAt: expect.any(String), state: 'SUCCEEDED' },
  ]);
  const events = await eventCount(before.id);
  const feed = async () => (await sql`select event_seq::int as n from runs where id = ${runId}`)[0]!.n as number;
  const shown = await feed();

  // The reports alone, as JetStream would redeliver messages of their own whose acks were lost.
  const { seq, fraction, message, at } = result!.progress!;
  const base = { taskId: before.id as string, runId, attempt: 1, host: result!.host };
  const again: ExecutorEvent[] = [
    { ...base, at, seq, kind: 'progress', fraction, message },
    { ...base, at: result!.started!.at, seq: result!.started!.seq, kind: 'started', handle: null },
  ];
  for (const e of again) await hostBus.publishEvent(e, `${e.taskId}:${e.attempt}:${e.seq}:again`);
  await busDrained();

  expect(await taskOf(runId)).toEqual(before);
  expect(await eventCount(before.id)).toBe(events);
  expect(await feed()).toBe(shown);
  expect(await attempts()).toEqual(shownAttempts);
}, 180_000);
