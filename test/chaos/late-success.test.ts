// A success that arrives after the control plane gave its attempt up (its host presumed lost) ends the task once:
// the attempt dispatched in its place is stopped and dropped, and a second success is never recorded. Reports
// are published straight onto the app's bus, so each step is deterministic.
import { and, eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { ExecutorEvent } from '../../plugins/protocol';
import { tasks } from '../../server/db/tables/runs';
import { taskEvents } from '../../server/db/tables/task-events';
import { EVENTS_DURABLE } from '../../server/events/recorder';
import { createOrchestrator } from '../../server/orchestrator/orchestrator';
import { startTestApp, type TestApp } from '../harness/app';

let t: TestApp;

beforeAll(async () => {
  t = await startTestApp({ ATELIER_HEARTBEAT_TIMEOUT_SECONDS: '1' });
  await t.publishFixture('sleep');
  // A pool no host serves: only this test reports for the task.
  await t.createWorkflow({ name: 'late', tasks: [{ name: 'only', module: 'test/sleep', executor: 'noop', pool: 'nobody', parameters: { ms: 0 } }] });
}, 180_000);
afterAll(async () => t?.stop());

async function until<T>(probe: () => Promise<T | undefined | null | false>, what: string, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const taskRow = async (runId: string) => (await t.app.services.db.select().from(tasks).where(eq(tasks.runId, runId)))[0]!;
const successes = async (taskId: string) =>
  (
    await t.app.services.db
      .select({ n: sql<number>`count(*)::int` })
      .from(taskEvents)
      .where(and(eq(taskEvents.taskId, taskId), eq(taskEvents.kind, 'result'), sql`payload->'outcome'->>'state' = 'SUCCEEDED'`))
  )[0]!.n;

async function report(events: ExecutorEvent[]) {
  for (const e of events) await t.app.bus.publishEvent(e, `${e.taskId}:${e.attempt}:${e.seq}`);
  await until(async () => {
    const b = await t.app.bus.eventBacklog(EVENTS_DURABLE);
    return b.recorded >= b.published;
  }, 'the events to be recorded');
}

it('adopts a late success of an attempt presumed lost, stops the one in its place, and never records a second success', async () => {
  const { startRun } = await t.api.gql(`mutation { startRun(workflow: "late") { id } }`);
  const queued = await until(() => taskRow(startRun.id).then((task) => task.status === 'QUEUED' && task), 'the task to be queued');
  const at = () => new Date().toISOString();
  const base = { taskId: queued.id, runId: startRun.id, host: 'slow-host' };
  await report([{ ...base, attempt: 1, seq: 0, at: at(), kind: 'started', handle: null }]);
  // Silent for longer than the heartbeat timeout: presumed lost, retried as attempt 2.
  await until(() => taskRow(startRun.id).then((task) => task.attempt === 2 && task.status === 'QUEUED'), 'attempt 2');

  // Attempt 1 was not lost after all: its success arrives.
  await report([{ ...base, attempt: 1, seq: 1, at: at(), kind: 'result', outcome: { state: 'SUCCEEDED', outputs: { from: 1 } }, durationMs: 5 }]);
  const done = await taskRow(startRun.id);
  expect(done).toMatchObject({ status: 'SUCCEEDED', outputs: { from: 1 } });
  expect(await successes(done.id)).toBe(1);
  const { run } = await t.api.gql(`query ($id: ID!) { run(id: $id) { status } }`, { id: startRun.id });
  expect(run.status).toBe('SUCCEEDED');

  // Attempt 2, already on the queue, is dropped by any host that claims it; attempt 1's message too.
  expect(await t.app.bus.requestClaim({ ...base, attempt: 2, host: 'h' }, 2_000)).toEqual({ verdict: 'drop', reason: 'finished', status: 'SUCCEEDED' });
  expect(await t.app.bus.requestClaim({ ...base, attempt: 1, host: 'h' }, 2_000)).toEqual({ verdict: 'drop', reason: 'superseded', status: 'SUCCEEDED' });

  // Had attempt 2 run anyway, its success would be refused: one success per task.
  await report([
    { ...base, host: 'other', attempt: 2, seq: 0, at: at(), kind: 'started', handle: null },
    { ...base, host: 'other', attempt: 2, seq: 1, at: at(), kind: 'result', outcome: { state: 'SUCCEEDED', outputs: { from: 2 } }, durationMs: 5 },
  ]);
  expect(await taskRow(startRun.id)).toEqual(done);
  expect(await successes(done.id)).toBe(1);
}, 180_000);

/** An orchestrator over the app's database whose recorder's backlog is what `backlog` says at each claim. */
function orchestratorBehind(backlog: () => { published: number; recorded: number }) {
  const { services } = t.app;
  return createOrchestrator({
    db: services.db,
    feed: services.feed,
    onOutbox: () => {},
    defaults: services.planDefaults,
    eventBacklog: async () => backlog(),
  });
}

it("holds a redelivered attempt's claim while events published before it are unrecorded, and never a first delivery", async () => {
  const { startRun } = await t.api.gql(`mutation { startRun(workflow: "late") { id } }`);
  const queued = await until(() => taskRow(startRun.id).then((task) => task.status === 'QUEUED' && task), 'the task to be queued');
  // An orchestrator over the app's database whose recorder is behind by ten events, as after a control-plane restart.
  let backlog = { published: 100, recorded: 90 };
  const orchestrator = orchestratorBehind(() => backlog);
  const claim = { taskId: queued.id, runId: startRun.id, attempt: 1, host: 'h' };
  expect(await orchestrator.answerClaims([claim])).toEqual([{ verdict: 'run' }]); // a first delivery: no prior execution
  const again = { ...claim, redelivered: true };
  expect(await orchestrator.answerClaims([again])).toEqual([{ verdict: 'later', reason: 'recording' }]);
  backlog = { published: 140, recorded: 99 }; // newer events do not hold it longer than those before its claim
  expect(await orchestrator.answerClaims([again])).toEqual([{ verdict: 'later', reason: 'recording' }]);
  // The recorder reached the claim's mark and the task is still current: no result was on the bus, so it runs.
  backlog = { published: 160, recorded: 100 };
  expect(await orchestrator.answerClaims([again])).toEqual([{ verdict: 'run' }]);
  // Had the result been among those events, the task would have ended, and the redelivery is dropped.
  await t.app.services.db.update(tasks).set({ status: 'SUCCEEDED' }).where(eq(tasks.id, queued.id));
  expect(await orchestrator.answerClaims([again])).toEqual([{ verdict: 'drop', reason: 'finished', status: 'SUCCEEDED' }]);
});

it('holds the claim of an attempt the database saw start even when the bus calls it a first delivery', async () => {
  const { startRun } = await t.api.gql(`mutation { startRun(workflow: "late") { id } }`);
  const queued = await until(() => taskRow(startRun.id).then((task) => task.status === 'QUEUED' && task), 'the task to be queued');
  // An execution of attempt 1 started (its start is recorded); its result may still be on its way.
  await report([
    { taskId: queued.id, runId: startRun.id, host: 'first-host', attempt: 1, seq: 0, at: new Date().toISOString(), kind: 'started', handle: null },
  ]);
  expect((await taskRow(startRun.id)).status).toBe('RUNNING');
  let backlog = { published: 50, recorded: 45 };
  const orchestrator = orchestratorBehind(() => backlog);
  // The same attempt delivered again, counted by the bus as a first delivery (no `redelivered`): held, not run.
  const claim = { taskId: queued.id, runId: startRun.id, attempt: 1, host: 'second-host' };
  expect(await orchestrator.answerClaims([claim])).toEqual([{ verdict: 'later', reason: 'recording' }]);
  backlog = { published: 60, recorded: 50 };
  expect(await orchestrator.answerClaims([claim])).toEqual([{ verdict: 'run' }]);
});
