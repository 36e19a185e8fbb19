// A task's first progress, its start with it and no result (the batch a host sends once a module has run past the
// fold's few milliseconds), and a later progress alone, each recorded in two round trips (issue 21, session 32): BEGIN
// with the run's lock, the task's read and the early insert; then the progress and heartbeat update, the task's RUNNING,
// the run's RUNNING, the feed's append and the COMMIT, sent together (record-alive.ts; nothing after the read waits for
// an answer, and a batch of starts alone asks dispatch for nothing). Before: five (the progress update, the start's
// update and dispatch's read of the run's READY tasks each awaited) and three. Real Postgres, a recorder on a connection
// of its own whose statements and Postgres' answers are counted on the socket (run-end-round-trips.test.ts counts the
// batches that carry a result).
import { and, eq } from 'drizzle-orm';
import { expect, it } from 'vitest';
import type { ExecutorEvent } from '../../plugins/protocol';
import { runs, tasks } from '../../server/db/tables/runs';
import { countedApp, oneTask } from '../harness/counted-app';
import { roundTrips } from '../harness/counting-pool';

const w = countedApp({ workflows: [oneTask()] });

/** A run of `one-task` started, and what its task reports as `base` (the event's own fields to be added). */
async function queuedTask(): Promise<{ runId: string; taskId: string; base: Omit<ExecutorEvent, 'kind' | 'seq'> }> {
  const runId = (await w.alice.gql(`mutation { startRun(workflow: "one-task") { id } }`)).startRun.id as string;
  const [task] = await w.db
    .select()
    .from(tasks)
    .where(and(eq(tasks.runId, runId), eq(tasks.status, 'QUEUED')));
  return { runId, taskId: task!.id, base: { taskId: task!.id, runId, attempt: task!.attempt, host: 'test', at: new Date().toISOString() } };
}

const firstProgress = (base: Omit<ExecutorEvent, 'kind' | 'seq'>): ExecutorEvent[] => [
  { ...base, kind: 'started', seq: 1, handle: null },
  { ...base, kind: 'progress', seq: 2, fraction: 0.5, message: 'half way' },
];

/** The round trips recordEvents takes for `events`, from its BEGIN to its COMMIT. */
async function recorded(events: ExecutorEvent[]): Promise<number> {
  w.counted.seen.sent.length = 0;
  await w.counted.orchestrator.recordEvents(events);
  return roundTrips(w.counted.seen.sent);
}

const taskRow = async (taskId: string) =>
  (
    await w.db
      .select({ status: tasks.status, progress: tasks.progress, message: tasks.progressMessage, heartbeatAt: tasks.heartbeatAt, startedAt: tasks.startedAt })
      .from(tasks)
      .where(eq(tasks.id, taskId))
  )[0]!;

it("records a task's first progress with its start, and a later progress alone, in two round trips each", async () => {
  // Once first: a statement kept prepared is described on its first use on a connection, a round trip of its own.
  const warm = await queuedTask();
  await recorded(firstProgress(warm.base));
  await recorded([{ ...warm.base, kind: 'progress', seq: 3, fraction: 0.75, message: null }]);

  const { runId, taskId, base } = await queuedTask();
  expect(await recorded(firstProgress(base))).toBe(2);
  expect(await taskRow(taskId)).toMatchObject({ status: 'RUNNING', progress: 0.5, message: 'half way' });
  expect((await taskRow(taskId)).heartbeatAt).not.toBeNull();
  expect((await taskRow(taskId)).startedAt).not.toBeNull();
  const [run] = await w.db.select().from(runs).where(eq(runs.id, runId));
  expect(run!.status).toBe('RUNNING');
  // The feed tells it in order, numbered without holes: the task running, the run running, the progress.
  const events = await w.t.app.services.feed.since(runId, 0);
  expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
  const told = events.map((e) => `${e.kind}:${'status' in e ? e.status : 'fraction' in e ? e.fraction : ''}`);
  expect(told.slice(-3).sort()).toEqual(['run-status:RUNNING', 'task-progress:0.5', 'task-status:RUNNING']);

  expect(await recorded([{ ...base, kind: 'progress', seq: 3, fraction: 0.75, message: 'three quarters' }])).toBe(2);
  expect(await taskRow(taskId)).toMatchObject({ status: 'RUNNING', progress: 0.75, message: 'three quarters' });
  expect((await w.t.app.services.feed.since(runId, events.length)).map((e) => e.kind)).toEqual(['task-progress']);
}, 60_000);

it('records a first progress with its start, and a later progress alone, in one round trip each for a run this control plane started', async () => {
  for (const counting of [false, true]) {
    const run = await w.counted.orchestrator.startRun({ workflow: 'one-task', trigger: 'API' }, null);
    const [task] = await w.db.select().from(tasks).where(eq(tasks.runId, run.id));
    const base = { taskId: task!.id, runId: run.id, attempt: task!.attempt, host: 'test', at: new Date().toISOString() };
    const first = await recorded(firstProgress(base));
    expect(w.counted.seen.sent.some((s) => s.statement.includes('atelier_expect'))).toBe(true);
    expect(await taskRow(task!.id)).toMatchObject({ status: 'RUNNING', progress: 0.5, message: 'half way' });
    expect((await taskRow(task!.id)).heartbeatAt).not.toBeNull();
    expect((await w.db.select().from(runs).where(eq(runs.id, run.id)))[0]!.status).toBe('RUNNING');
    const events = await w.t.app.services.feed.since(run.id, 0);
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
    const told = events.map((e) => `${e.kind}:${'status' in e ? e.status : 'fraction' in e ? e.fraction : ''}`);
    expect(told.slice(-3).sort()).toEqual(['run-status:RUNNING', 'task-progress:0.5', 'task-status:RUNNING']);
    // The task's start and the run's, as this control plane committed them, guessed for the next.
    const later = await recorded([{ ...base, kind: 'progress', seq: 3, fraction: 0.75, message: 'three quarters' }]);
    expect(w.counted.seen.sent.some((s) => s.statement.includes('atelier_expect'))).toBe(true);
    expect(await taskRow(task!.id)).toMatchObject({ status: 'RUNNING', progress: 0.75, message: 'three quarters' });
    expect((await w.t.app.services.feed.since(run.id, events.length)).map((e) => e.kind)).toEqual(['task-progress']);
    if (counting) expect([first, later]).toEqual([1, 1]);
  }
}, 60_000);

it('changes nothing when the first progress is delivered again, nor for a progress of an attempt no longer current', async () => {
  const { runId, taskId, base } = await queuedTask();
  await recorded(firstProgress(base));
  await recorded([{ ...base, kind: 'progress', seq: 3, fraction: 0.75, message: 'three quarters' }]);
  const before = await w.t.app.services.feed.since(runId, 0);
  // The batch again (at least once on the bus): nothing is new, so no row, progress or event moves.
  await recorded(firstProgress(base));
  expect(await taskRow(taskId)).toMatchObject({ status: 'RUNNING', progress: 0.75, message: 'three quarters' });
  expect(await w.t.app.services.feed.since(runId, 0)).toEqual(before);
  // A report of an attempt the task has moved past is kept as history but moves nothing.
  await w.db.update(tasks).set({ attempt: 2, status: 'QUEUED' }).where(eq(tasks.id, taskId));
  await recorded([{ ...base, kind: 'progress', seq: 4, fraction: 0.9, message: 'stale' }]);
  expect(await taskRow(taskId)).toMatchObject({ status: 'QUEUED', progress: 0.75, message: 'three quarters' });
}, 60_000);
