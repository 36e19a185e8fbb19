// The recorder's one walk over a batch (server/orchestrator/batch-walk.ts, session 34): a batch whose every attempt is
// current skips the ended attempts' checks; one with anything else in it takes them. These pin what both decide, on
// real Postgres, with batches larger than the early insert takes (EARLY_MAX_EVENTS), as a throughput batch is: a stale
// attempt's reports (a zombie told to stop), a duplicate event, progress out of order and after its result, a second
// execution's result, all in one mixed batch; and a batch of current attempts delivered twice.
import { and, asc, eq } from 'drizzle-orm';
import { expect, it } from 'vitest';
import type { ExecutorEvent } from '../../plugins/protocol';
import { SEQ_BLOCK } from '../../plugins/protocol';
import { runs, tasks } from '../../server/db/tables/runs';
import { taskEvents } from '../../server/db/tables/task-events';
import { EARLY_MAX_EVENTS } from '../../server/orchestrator/event-insert';
import { countedApp } from '../harness/counted-app';

const WIDTH = 40;
const wide = { name: 'wide', tasks: Array.from({ length: WIDTH }, (_, i) => ({ name: `t${i}`, module: 'test/sleep', parameters: { ms: 1 } })) };
const w = countedApp({ workflows: [wide] });

type Base = Omit<ExecutorEvent, 'kind' | 'seq'>;

/** A run of `wide` started: its tasks, queued, as their reports' common fields, in node order. */
async function queuedRun(): Promise<{ runId: string; bases: Base[] }> {
  const runId = (await w.alice.gql(`mutation { startRun(workflow: "wide") { id } }`)).startRun.id as string;
  const rows = await w.db.select().from(tasks).where(eq(tasks.runId, runId)).orderBy(asc(tasks.node));
  expect(rows.map((t) => t.status)).toEqual(rows.map(() => 'QUEUED'));
  const at = new Date().toISOString();
  return { runId, bases: rows.map((t) => ({ taskId: t.id, runId, attempt: t.attempt, host: 'test', at })) };
}

const started = (b: Base, seq = 1): ExecutorEvent => ({ ...b, kind: 'started', seq, handle: null });
const success = (b: Base, seq = 2, message = 'done'): ExecutorEvent => ({
  ...b,
  kind: 'result',
  seq,
  durationMs: 5,
  outcome: { state: 'SUCCEEDED', outputs: { n: 1 }, message },
});
const failure = (b: Base, seq: number, message: string): ExecutorEvent => ({ ...b, kind: 'result', seq, durationMs: 5, outcome: { state: 'FAILED', message } });
const progress = (b: Base, seq: number, message: string): ExecutorEvent => ({ ...b, kind: 'progress', seq, fraction: seq / 10, message });

const rowsOf = (taskId: string) =>
  w.db
    .select({ kind: taskEvents.kind, seq: taskEvents.seq, attempt: taskEvents.attempt, payload: taskEvents.payload })
    .from(taskEvents)
    .where(eq(taskEvents.taskId, taskId))
    .orderBy(asc(taskEvents.seq));
const taskOf = async (taskId: string) => (await w.db.select().from(tasks).where(eq(tasks.id, taskId)))[0]!;

it('records a batch of current attempts, larger than the early insert takes, once: a row a short attempt, and nothing again when it comes twice', async () => {
  const { runId, bases } = await queuedRun();
  const batch = bases.flatMap((b) => [started(b), success(b)]);
  expect(batch.length).toBeGreaterThan(EARLY_MAX_EVENTS);
  const first = await w.counted.orchestrator.recordEvents(batch);
  expect(first.accepted).toHaveLength(batch.length);
  for (const b of bases) {
    expect((await taskOf(b.taskId)).status).toBe('SUCCEEDED');
    // The start rides on its result's row (event-rows.ts).
    const rows = await rowsOf(b.taskId);
    expect(rows.map((r) => r.kind)).toEqual(['result']);
    expect((rows[0]!.payload as { started?: { seq: number } }).started?.seq).toBe(1);
  }
  expect((await w.db.select().from(runs).where(eq(runs.id, runId)))[0]!.status).toBe('SUCCEEDED');
  const feed = await w.t.app.services.feed.since(runId, 0);

  // Delivered again (at least once on the bus): nothing is new, nothing moves, nothing is told.
  await w.counted.orchestrator.recordEvents(batch);
  expect(await w.t.app.services.feed.since(runId, 0)).toEqual(feed);
  for (const b of bases.slice(0, 3)) expect(await rowsOf(b.taskId)).toHaveLength(1);
}, 60_000);

it("decides a mixed batch as each report's attempt says: a stale attempt's zombie stopped, a duplicate stored once, progress by its number, a second execution's result a note", async () => {
  const { runId, bases } = await queuedRun();
  const [moved, twice, outOfOrder, ...rest] = bases as [Base, Base, Base, ...Base[]];
  // `moved` went on to its attempt 2 (its host presumed lost): attempt 1's words are history, and its execution a zombie.
  await w.db.update(tasks).set({ attempt: 2, status: 'QUEUED' }).where(eq(tasks.id, moved.taskId));
  // Recorded before: delivered again in the batch below (at least once on the bus).
  const recordedBefore = [started(outOfOrder), progress(outOfOrder, 3, 'three')];
  await w.counted.orchestrator.recordEvents(recordedBefore);
  const batch: ExecutorEvent[] = [
    progress(moved, 2, 'stale'),
    { ...moved, kind: 'heartbeat', seq: 3 },
    started(twice),
    success(twice, 2, 'first execution'),
    // Another execution of the same attempt (its message delivered again) reports a result too: the first decides.
    failure(twice, SEQ_BLOCK + 2, 'second execution'),
    progress(outOfOrder, 5, 'five'),
    ...recordedBefore,
    success(outOfOrder, 6),
    // Sent after its result by the same execution: kept as its own row, the latest progress its success writes.
    progress(outOfOrder, 7, 'seven'),
    ...rest.flatMap((b) => [started(b), success(b)]),
  ];
  expect(batch.length).toBeGreaterThan(EARLY_MAX_EVENTS);
  w.counted.seen.sent.length = 0;
  const { accepted } = await w.counted.orchestrator.recordEvents(batch);

  // The stale attempt: nothing of it moves its task; its execution is told to stop (stopAttempts' withdrawal of its message).
  expect(await taskOf(moved.taskId)).toMatchObject({ status: 'QUEUED', attempt: 2, progressMessage: null });
  expect(w.counted.seen.sent.some((s) => s.statement.includes("kind = 'task' and msg_id = any"))).toBe(true);
  // The second execution's result is refused, kept only as a line in the task's log.
  expect(accepted.filter((e) => e.taskId === twice.taskId && e.kind === 'result')).toHaveLength(1);
  expect(await taskOf(twice.taskId)).toMatchObject({ status: 'SUCCEEDED', message: 'first execution' });
  const twiceRows = await rowsOf(twice.taskId);
  expect(twiceRows.map((r) => r.kind)).toEqual(['result', 'log']);
  expect(JSON.stringify(twiceRows[1]!.payload)).toContain('ignored the result of execution 1 of attempt 1');
  // Progress: the new one before the result rides on its row, the one after it is its own row, and the success writes
  // the latest by number; what was recorded before is stored once.
  const ordered = await rowsOf(outOfOrder.taskId);
  expect(ordered.map((r) => [r.kind, Number(r.seq)])).toEqual([
    ['started', 1],
    ['progress', 3],
    ['result', 6],
    ['progress', 7],
  ]);
  expect((ordered[2]!.payload as { progress?: { seq: number } }).progress?.seq).toBe(5);
  expect(await taskOf(outOfOrder.taskId)).toMatchObject({ status: 'SUCCEEDED', progressMessage: 'seven' });
  for (const b of rest) expect((await taskOf(b.taskId)).status).toBe('SUCCEEDED');
  // The run waits for `moved`'s second attempt.
  expect((await w.db.select().from(runs).where(eq(runs.id, runId)))[0]!.status).toBe('RUNNING');
}, 60_000);

it("refuses a second execution's result in a batch whose every attempt is current, and stops no one", async () => {
  const { bases } = await queuedRun();
  const [twice, ...rest] = bases as [Base, ...Base[]];
  const second: ExecutorEvent = failure(twice, SEQ_BLOCK + 2, 'second execution');
  // The same execution's result twice is one result (recorded once), not a second.
  const batch = [
    started(twice),
    success(twice, 2, 'first execution'),
    success(twice, 2, 'first execution'),
    second,
    ...rest.flatMap((b) => [started(b), success(b)]),
  ];
  expect(batch.length).toBeGreaterThan(EARLY_MAX_EVENTS);
  w.counted.seen.sent.length = 0;
  const { accepted } = await w.counted.orchestrator.recordEvents(batch);
  expect(accepted).toHaveLength(batch.length - 1);
  expect(accepted).not.toContain(second);
  expect(await taskOf(twice.taskId)).toMatchObject({ status: 'SUCCEEDED', message: 'first execution' });
  const rows = await rowsOf(twice.taskId);
  expect(rows.map((r) => [r.kind, Number(r.seq)])).toEqual([
    ['result', 2],
    ['log', SEQ_BLOCK + 2],
  ]);
  expect(JSON.stringify(rows[1]!.payload)).toContain('ignored the result of execution 1 of attempt 1');
  expect(w.counted.seen.sent.some((s) => s.statement.includes("kind = 'task' and msg_id = any"))).toBe(false);
  for (const b of rest) expect((await taskOf(b.taskId)).status).toBe('SUCCEEDED');
}, 60_000);

it('keeps nowhere, and moves nothing for, progress that comes after its result in a later batch', async () => {
  const { runId, bases } = await queuedRun();
  await w.counted.orchestrator.recordEvents(bases.flatMap((b) => [started(b, 1), success(b, 3)]));
  const feed = await w.t.app.services.feed.since(runId, 0);
  // Progress of the execution that ended each attempt, numbered before its result but delivered after it.
  const late = bases.map((b) => progress(b, 2, 'late'));
  await w.counted.orchestrator.recordEvents([...late, ...bases.map((b) => ({ ...b, kind: 'heartbeat' as const, seq: 4 }))]);
  expect(await w.t.app.services.feed.since(runId, 0)).toEqual(feed);
  const [first] = bases;
  expect((await rowsOf(first!.taskId)).map((r) => r.kind)).toEqual(['result']);
  expect(await taskOf(first!.taskId)).toMatchObject({ status: 'SUCCEEDED', progressMessage: null });
  expect(
    await w.db
      .select()
      .from(taskEvents)
      .where(and(eq(taskEvents.kind, 'progress'), eq(taskEvents.runId, runId))),
  ).toHaveLength(0);
}, 60_000);
