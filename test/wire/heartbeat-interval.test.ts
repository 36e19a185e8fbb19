// A host beats as often as its control plane's heartbeat timeout needs (the claim's run answer says how often: a
// quarter of it), not at its own interval alone. Before, a host's 5 s interval under a control plane whose timeout was
// shorter (ATELIER_HEARTBEAT_TIMEOUT_SECONDS=2) had every live attempt that ran past the timeout presumed lost and run
// again (test/operations/backup-restore.test.ts failed that way under load). Driven through the host's own claim and
// attempt path (claimAttempt, runAttempt) against the real app, its bus, its recorder and its sweep.
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Delivery } from '../../plugins/bus/types';
import { Attempt, type AttemptRuntime, claimAttempt, runAttempt } from '../../plugins/host/attempt';
import type { TaskMessage, TaskOutcome } from '../../plugins/protocol';
import { createExecutorRegistry } from '../../plugins/registry';
import { defineExecutor } from '../../plugins/sdk';
import { tasks } from '../../server/db/tables/runs';
import { until } from '../batch/until';
import { startTestApp, type TestApp } from '../harness/app';

let t: TestApp;

beforeAll(async () => {
  t = await startTestApp({ ATELIER_HEARTBEAT_TIMEOUT_SECONDS: '2' });
  await t.publishFixture('sleep');
  // A pool no host serves: only this test's execution runs the task.
  await t.createWorkflow({ name: 'quiet', tasks: [{ name: 'only', module: 'test/sleep', executor: 'noop', pool: 'nobody', parameters: { ms: 0 } }] });
}, 180_000);
afterAll(async () => t?.stop());

it("keeps a silent attempt alive on a host whose own interval is longer than the control plane's heartbeat timeout", async () => {
  const { startRun } = await t.api.gql(`mutation { startRun(workflow: "quiet") { id } }`);
  const { db } = t.app.services;
  const row = () =>
    db
      .select()
      .from(tasks)
      .where(eq(tasks.runId, startRun.id))
      .then((r) => r[0]!);
  const queued = await until('the task to be queued', () => row().then((task) => task.status === 'QUEUED' && task));
  // An executor that says nothing until the test ends it: only heartbeats show it alive.
  let end!: (outcome: TaskOutcome) => void;
  const executor = defineExecutor<null>({
    name: 'quiet',
    workdir: false,
    tracking: false,
    async submit() {
      return null;
    },
    wait: () => new Promise<TaskOutcome>((resolve) => (end = resolve)),
    async cancel() {},
  });
  const rt: AttemptRuntime = {
    bus: t.app.bus,
    registry: createExecutorRegistry([executor]),
    host: 'slow-beating-host',
    artifacts: { fetch: async () => '/nonexistent' },
    workRoot: '/nonexistent',
    heartbeatEveryMs: 5_000, // the host's own default
    logBatch: { bytes: 64_000, ms: 20 },
    maxLogBytes: 1_000_000,
    warn: () => undefined,
    running: () => true,
    verifyClaims: true,
    askClaim: (claim) => t.app.bus.requestClaim(claim, 5_000),
  };
  const task = { taskId: queued.id, runId: startRun.id, attempt: 1, node: 'only', pool: 'nobody', executor: 'quiet' } as TaskMessage;
  const delivery: Delivery<TaskMessage> = {
    data: { ...task },
    redeliveryCount: 0,
    ack: async () => undefined,
    nak: () => undefined,
    working: () => undefined,
    term: () => undefined,
  };
  expect(await claimAttempt(rt, delivery)).toBe(true);
  expect(delivery.data.heartbeatMs).toBe(500);
  const attempt = new Attempt(`${task.taskId}:1`, delivery.data);
  const done = runAttempt(rt, attempt, delivery, () => undefined);

  await until('the attempt to start', async () => (await row()).status === 'RUNNING');
  // Several times the timeout goes by, heartbeat after heartbeat, and attempt 1 is never given up.
  const beats = new Set<number>();
  await until('three heartbeats past the first, the attempt still running', async () => {
    const now = await row();
    expect([now.attempt, now.status], 'the attempt was presumed lost').toEqual([1, 'RUNNING']);
    if (now.heartbeatAt) beats.add(now.heartbeatAt.getTime());
    return beats.size >= 4 && Math.max(...beats) - Math.min(...beats) > 2_000;
  });
  end({ state: 'SUCCEEDED', outputs: { beat: true } });
  await done;
  expect(await until('the task to succeed', () => row().then((r) => r.status === 'SUCCEEDED' && r))).toMatchObject({ attempt: 1, outputs: { beat: true } });
}, 120_000);
