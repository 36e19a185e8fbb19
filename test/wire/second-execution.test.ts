// Two executions of one attempt (a bus that hands a message delivered before back as a first delivery, as the chaos
// suite saw JetStream do): each numbers its events from the execution number its claim's answer gave it, so neither
// execution's events are dropped as repeats of the other's. The first result recorded ends the attempt; a later
// execution's result is kept as a note saying it was ignored. Driven through the host's own claim and attempt path
// (claimAttempt, runAttempt) against the real app, its bus and its recorder. And an execution that ran on through a
// restore of the database (its claim undone, its attempt number handed out again): its reports carry the key its claim
// drew (protocol 6), which the restored database never drew, so none is recorded, not even as the new execution's.
import { and, asc, eq } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Delivery, Subscription } from '../../plugins/bus/types';
import { Attempt, type AttemptRuntime, abortAttempt, claimAttempt, runAttempt } from '../../plugins/host/attempt';
import { subscribeCancels } from '../../plugins/host/cancels';
import { SEQ_BLOCK, type TaskMessage, type TaskOutcome } from '../../plugins/protocol';
import { createExecutorRegistry } from '../../plugins/registry';
import { defineExecutor } from '../../plugins/sdk';
import { runs, tasks } from '../../server/db/tables/runs';
import { taskEvents } from '../../server/db/tables/task-events';
import { taskExecutions } from '../../server/db/tables/task-executions';
import { createOrchestrator } from '../../server/orchestrator/orchestrator';
import { until } from '../batch/until';
import { startTestApp, type TestApp } from '../harness/app';

let t: TestApp;

beforeAll(async () => {
  // Claims answered by the claim query, whose numbering these tests read: a dispatch's reservation would draw execution
  // 0 itself (test/wire/reserved-claims.test.ts).
  t = await startTestApp({ ATELIER_CLAIM_RESERVATIONS: 'false' });
  await t.publishFixture('sleep');
  // A pool no host serves: only this test's executions run the task.
  await t.createWorkflow({ name: 'twice', tasks: [{ name: 'only', module: 'test/sleep', executor: 'noop', pool: 'nobody', parameters: { ms: 0 } }] });
}, 180_000);
afterAll(async () => t?.stop());

/** An executor whose attempts log until the test ends them, each with the outcome it is given (or cancels them). */
function heldExecutor() {
  const ends = new Map<string, (outcome: TaskOutcome) => void>();
  const cancelled = new Set<string>();
  const executor = defineExecutor<string>({
    name: 'held',
    workdir: false,
    tracking: false,
    async submit(_task, ctx) {
      return ctx.host;
    },
    // It says something every few milliseconds while it runs: events that the database keeps (heartbeats it does not).
    wait: (host, _task, ctx) =>
      new Promise<TaskOutcome>((resolve) => {
        let n = 0;
        const talk = setInterval(() => ctx.log('stdout', `line ${n++}`), 5);
        ends.set(host, (outcome) => {
          clearInterval(talk);
          resolve(outcome);
        });
      }),
    async cancel(host) {
      cancelled.add(host);
      ends.get(host)?.({ state: 'CANCELLED' });
    },
  });
  return { executor, cancelled, end: (host: string, outcome: TaskOutcome) => ends.get(host)!(outcome), started: (host: string) => ends.has(host) };
}

/** A delivery the bus calls a first one, however often the message was delivered before. */
function firstDelivery(task: TaskMessage): Delivery<TaskMessage> & { settled?: string } {
  const delivery: Delivery<TaskMessage> & { settled?: string } = {
    data: { ...task },
    redeliveryCount: 0,
    ack: async () => void (delivery.settled = 'ack'),
    nak: () => void (delivery.settled = 'nak'),
    working: () => undefined,
    term: () => void (delivery.settled = 'term'),
  };
  return delivery;
}

it("records both executions' events apart, applies the first result and notes the second as ignored", async () => {
  const { startRun } = await t.api.gql(`mutation { startRun(workflow: "twice") { id } }`);
  const { db } = t.app.services;
  const row = () =>
    db
      .select()
      .from(tasks)
      .where(eq(tasks.runId, startRun.id))
      .then((r) => r[0]!);
  const queued = await until('the task to be queued', () => row().then((task) => task.status === 'QUEUED' && task));
  const events = () => db.select().from(taskEvents).where(eq(taskEvents.taskId, queued.id)).orderBy(asc(taskEvents.seq));
  const held = heldExecutor();
  const runtime = (host: string): AttemptRuntime => ({
    bus: t.app.bus,
    registry: createExecutorRegistry([held.executor]),
    host,
    artifacts: { fetch: async () => '/nonexistent' },
    workRoot: '/nonexistent',
    // No heartbeats (they take sequence numbers the database does not keep): every number an execution uses is stored.
    heartbeatEveryMs: 600_000,
    logBatch: { bytes: 64_000, ms: 20 },
    maxLogBytes: 1_000_000,
    warn: () => undefined,
    running: () => true,
    verifyClaims: true,
    askClaim: (claim) => t.app.bus.requestClaim(claim, 5_000),
  });
  const task = { taskId: queued.id, runId: startRun.id, attempt: 1, node: 'only', pool: 'nobody', executor: 'held' } as TaskMessage;
  /** Claims (asking again while the control plane says later) and runs one execution; resolves when it is settled. */
  async function execute(host: string): Promise<{ done: Promise<void> }> {
    const rt = runtime(host);
    for (;;) {
      const delivery = firstDelivery(task);
      if (await claimAttempt(rt, delivery)) {
        const attempt = new Attempt(`${task.taskId}:1`, delivery.data);
        return { done: runAttempt(rt, attempt, delivery, () => undefined) };
      }
      expect(delivery.settled).toBe('nak'); // held while the first execution's events are recorded, never dropped
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  // The first execution starts and logs; its events are recorded.
  const first = await execute('first-host');
  await until("the first execution's start and logs", async () => (await events()).length >= 4);
  expect((await row()).status).toBe('RUNNING');

  // The bus hands the attempt out again as a first delivery: a second execution runs it and succeeds.
  const second = await execute('second-host');
  await until('the second execution to start', async () => held.started('second-host'));
  held.end('second-host', { state: 'SUCCEEDED', outputs: { from: 'second' } });
  await second.done;
  const done = await until('the second execution’s success to be recorded', () => row().then((task) => task.status === 'SUCCEEDED' && task));
  expect(done.outputs).toEqual({ from: 'second' });

  // The first execution ends later with a result of its own: ignored, and said so in the task's events.
  held.end('first-host', { state: 'SUCCEEDED', outputs: { from: 'first' } });
  await first.done;
  const note = await until('the note on the ignored result', async () =>
    (await events()).find((e) => e.kind === 'log' && JSON.stringify(e.payload).includes('ignored')),
  );
  expect(await row()).toMatchObject({ status: 'SUCCEEDED', outputs: { from: 'second' } });

  // Each execution's events sit in a block of its own: the second's after all of the first's.
  const all = await events();
  const blockOf = (host: string) => [...new Set(all.filter((e) => e.payload.host === host).map((e) => Math.floor(e.seq / SEQ_BLOCK)))];
  expect(blockOf('first-host')).toHaveLength(1);
  expect(blockOf('second-host')).toHaveLength(1);
  expect(blockOf('second-host')[0]).toBeGreaterThan(blockOf('first-host')[0]!);
  const results = await db
    .select()
    .from(taskEvents)
    .where(and(eq(taskEvents.taskId, queued.id), eq(taskEvents.kind, 'result')));
  expect(results.map((r) => r.payload.host)).toEqual(['second-host']);
  expect(note.payload.host).toBe('first-host');
  expect(JSON.stringify(note.payload)).toContain('SUCCEEDED');
}, 120_000);

it('numbers each execution of an attempt, holds one whose attempt had an earlier execution, and keeps a number asked again', async () => {
  const { startRun } = await t.api.gql(`mutation { startRun(workflow: "twice") { id } }`);
  const { services } = t.app;
  const row = () =>
    services.db
      .select()
      .from(tasks)
      .where(eq(tasks.runId, startRun.id))
      .then((r) => r[0]!);
  const queued = await until('the task to be queued', () => row().then((task) => task.status === 'QUEUED' && task));
  // An orchestrator over the app's database whose recorder is ten events behind until the test says otherwise.
  let backlog = { published: 100, recorded: 90 };
  const orchestrator = createOrchestrator({
    db: services.db,
    feed: services.feed,
    onOutbox: () => {},
    defaults: services.planDefaults,
    eventBacklog: async () => backlog,
  });
  const claim = { taskId: queued.id, runId: startRun.id, attempt: 1, host: 'h', execution: null };
  // Two hosts claim the attempt at once, both first deliveries as far as the bus says: the first runs as execution 0;
  // the second is execution 1, held while events published before it may be the first one's.
  const key = expect.stringMatching(/^[0-9a-f-]{36}$/);
  expect(await orchestrator.answerClaims([claim, { ...claim, host: 'h2' }])).toEqual([
    { verdict: 'run', execution: 0, attemptKey: key },
    { verdict: 'later', reason: 'recording' },
  ]);
  // The first host asks again before it submits (after its download): it keeps its number, and uses none up.
  expect(await orchestrator.answerClaims([{ ...claim, execution: 0 }])).toEqual([{ verdict: 'run', execution: 0 }]);
  // Once those events are recorded and the attempt is still current, the second host's next claim runs, numbered anew.
  backlog = { published: 120, recorded: 100 };
  const [again] = await orchestrator.answerClaims([{ ...claim, host: 'h2' }]);
  expect(again).toEqual({ verdict: 'run', execution: 2, attemptKey: key });
  // A host below protocol 4 asks for no number and gets none.
  const { execution: _, ...old } = claim;
  expect(await orchestrator.answerClaims([old])).toEqual([{ verdict: 'run' }]);
  // A new attempt's executions are numbered from 0 again.
  await services.db.update(tasks).set({ attempt: 2 }).where(eq(tasks.id, queued.id));
  const [second] = await orchestrator.answerClaims([{ ...claim, attempt: 2 }]);
  expect(second).toEqual({ verdict: 'run', execution: 0, attemptKey: key });
  const counts = await services.db.select().from(taskExecutions).where(eq(taskExecutions.taskId, queued.id));
  expect(counts.sort((a, b) => a.attempt - b.attempt)).toEqual([
    { taskId: queued.id, attempt: 1, count: 3, key },
    { taskId: queued.id, attempt: 2, count: 1, key },
  ]);
  // One key per attempt, the same for each of its executions; each attempt its own.
  const first = (again as { attemptKey: string }).attemptKey;
  expect(counts.find((c) => c.attempt === 1)!.key).toBe(first);
  expect((second as { attemptKey: string }).attemptKey).not.toBe(first);
});

it('refuses every report of an execution whose claim a restore undid, though the restored database hands its attempt out again', async () => {
  const { startRun } = await t.api.gql(`mutation { startRun(workflow: "twice") { id } }`);
  const { db } = t.app.services;
  const row = () =>
    db
      .select()
      .from(tasks)
      .where(eq(tasks.runId, startRun.id))
      .then((r) => r[0]!);
  // The backup is taken here: the task queued on attempt 1, no execution of it claimed.
  const queued = await until('the task to be queued', () => row().then((task) => task.status === 'QUEUED' && task));
  const events = () => db.select().from(taskEvents).where(eq(taskEvents.taskId, queued.id)).orderBy(asc(taskEvents.seq));
  const held = heldExecutor();
  const task = { taskId: queued.id, runId: startRun.id, attempt: 1, node: 'only', pool: 'nobody', executor: 'held' } as TaskMessage;
  const execute = async (host: string) => {
    const rt: AttemptRuntime = {
      bus: t.app.bus,
      registry: createExecutorRegistry([held.executor]),
      host,
      artifacts: { fetch: async () => '/nonexistent' },
      workRoot: '/nonexistent',
      heartbeatEveryMs: 600_000,
      logBatch: { bytes: 64_000, ms: 20 },
      maxLogBytes: 1_000_000,
      warn: () => undefined,
      running: () => true,
      verifyClaims: true,
      askClaim: (claim) => t.app.bus.requestClaim(claim, 5_000),
    };
    const delivery = firstDelivery(task);
    expect(await claimAttempt(rt, delivery)).toBe(true);
    const attempt = new Attempt(`${task.taskId}:1`, delivery.data);
    return { done: runAttempt(rt, attempt, delivery, () => undefined), key: delivery.data.attemptKey };
  };

  // After the backup, a host claims attempt 1 and runs it: its start and logs are recorded.
  const stale = await execute('stale-host');
  await until("the stale execution's start and logs", async () => (await events()).length >= 4);

  // The database is restored from the backup (as pg_restore would leave these rows: the claim, the execution's number
  // and its events undone, the task queued again); the host was not stopped and runs on, logging. The run's row is
  // locked first, as the recorder locks it before it reads or writes the run's events: no recording straddles the
  // rewind, as none straddles a restore (the control plane is stopped meanwhile).
  await db.transaction(async (tx) => {
    await tx.select({ id: runs.id }).from(runs).where(eq(runs.id, startRun.id)).for('update');
    await tx.delete(taskEvents).where(eq(taskEvents.taskId, queued.id));
    await tx.delete(taskExecutions).where(eq(taskExecutions.taskId, queued.id));
    await tx
      .update(tasks)
      .set({ status: 'QUEUED', startedAt: null, host: null, externalHandle: null, heartbeatAt: queued.heartbeatAt })
      .where(eq(tasks.id, queued.id));
  });

  // The restored database hands attempt 1 out again: another host claims it, under the same number (execution 0).
  const fresh = await execute('new-host');
  expect(fresh.key).toEqual(expect.any(String));
  expect(fresh.key).not.toBe(stale.key);
  await until("the new execution's start", async () => (await row()).status === 'RUNNING' && (await row()).host === 'new-host');
  // Asking again before it submits (after a slow download), each execution shows its key: the stale one is dropped.
  const orchestrator = createOrchestrator({ db, feed: t.app.services.feed, onOutbox: () => {}, defaults: t.app.services.planDefaults });
  const reask = { taskId: queued.id, runId: startRun.id, attempt: 1, execution: 0 };
  expect(await orchestrator.answerClaims([{ ...reask, host: 'stale-host', attemptKey: stale.key }])).toEqual([
    { verdict: 'drop', reason: 'superseded', status: 'RUNNING' },
  ]);
  expect(await orchestrator.answerClaims([{ ...reask, host: 'new-host', attemptKey: fresh.key }])).toEqual([{ verdict: 'run', execution: 0 }]);

  // The stale execution succeeds first; then the new one does. Only the new one's result and words are the task's.
  held.end('stale-host', { state: 'SUCCEEDED', outputs: { from: 'stale' } });
  await stale.done;
  held.end('new-host', { state: 'SUCCEEDED', outputs: { from: 'new' } });
  await fresh.done;
  const done = await until('the task to succeed', () => row().then((r) => r.status === 'SUCCEEDED' && r));
  expect(done.outputs).toEqual({ from: 'new' });
  const kept = await events();
  expect(kept.filter((e) => e.payload.host === 'stale-host')).toEqual([]);
  expect(kept.filter((e) => e.kind === 'result').map((e) => e.payload.host)).toEqual(['new-host']);
}, 120_000);

it('tells the host of an execution whose claim a restore undid to stop it, and only it, once it hears from it', async () => {
  const { startRun } = await t.api.gql(`mutation { startRun(workflow: "twice") { id } }`);
  const { db } = t.app.services;
  const row = () =>
    db
      .select()
      .from(tasks)
      .where(eq(tasks.runId, startRun.id))
      .then((r) => r[0]!);
  const queued = await until('the task to be queued', () => row().then((task) => task.status === 'QUEUED' && task));
  const held = heldExecutor();
  const task = { taskId: queued.id, runId: startRun.id, attempt: 1, node: 'only', pool: 'nobody', executor: 'held' } as TaskMessage;
  const subscriptions: Subscription[] = [];
  /** One execution on a host of its own, which stops it on the cancels the host's own subscription lets through. */
  const execute = async (host: string) => {
    const rt: AttemptRuntime = {
      bus: t.app.bus,
      registry: createExecutorRegistry([held.executor]),
      host,
      artifacts: { fetch: async () => '/nonexistent' },
      workRoot: '/nonexistent',
      heartbeatEveryMs: 600_000,
      logBatch: { bytes: 64_000, ms: 20 },
      maxLogBytes: 1_000_000,
      warn: () => undefined,
      running: () => true,
      verifyClaims: true,
      askClaim: (claim) => t.app.bus.requestClaim(claim, 5_000),
    };
    const delivery = firstDelivery(task);
    expect(await claimAttempt(rt, delivery)).toBe(true);
    const attempt = new Attempt(`${task.taskId}:1`, delivery.data);
    const runs = (taskId: string, number: number) => (taskId === task.taskId && number === 1 ? attempt : undefined);
    subscriptions.push(...(await subscribeCancels(t.app.bus, runs, (a, message) => ((a.cancelNote = message.reason), abortAttempt(a, 'cancelled')))));
    return { done: runAttempt(rt, attempt, delivery, () => undefined), key: delivery.data.attemptKey };
  };
  try {
    // A host claims attempt 1 after the backup, and runs on through the restore (rows rewound as in the test above).
    const stale = await execute('stale-host');
    await until("the stale execution's start", async () => (await row()).status === 'RUNNING');
    await db.transaction(async (tx) => {
      await tx.select({ id: runs.id }).from(runs).where(eq(runs.id, startRun.id)).for('update');
      await tx.delete(taskEvents).where(eq(taskEvents.taskId, queued.id));
      await tx.delete(taskExecutions).where(eq(taskExecutions.taskId, queued.id));
      await tx
        .update(tasks)
        .set({ status: 'QUEUED', startedAt: null, host: null, externalHandle: null, heartbeatAt: queued.heartbeatAt })
        .where(eq(tasks.id, queued.id));
    });
    // The restored database hands attempt 1 to another host. The stale execution keeps logging: its reports are refused,
    // and its host is told to stop it; the new execution of the same attempt number runs on.
    const fresh = await execute('new-host');
    expect(fresh.key).not.toBe(stale.key);
    await until('the stale execution to be stopped', async () => held.cancelled.has('stale-host'));
    await stale.done;
    expect(held.cancelled.has('new-host')).toBe(false);
    held.end('new-host', { state: 'SUCCEEDED', outputs: { from: 'new' } });
    await fresh.done;
    const done = await until('the task to succeed', () => row().then((r) => r.status === 'SUCCEEDED' && r));
    expect(done.outputs).toEqual({ from: 'new' });
    expect(held.cancelled.has('new-host')).toBe(false);
  } finally {
    await Promise.all(subscriptions.map((s) => s.stop()));
  }
}, 120_000);
