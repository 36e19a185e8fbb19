// The recording in one round trip (issue 21): what this control plane guesses a batch's reads would return, from the
// runs it dispatched moments ago and the transactions of its own that committed since, so the writes that follow from
// the reads go in the same round trip as the lock, behind a guard (server/db/guess-guard.ts) that aborts them all when
// the rows are not as guessed. Only ever a shortcut: a run not held here (a restart, another replica's) and a guess
// that missed take the ordinary path (record-events.ts), which reads first.
import { type SQL, sql } from 'drizzle-orm';
import type { ExecutorEvent } from '../../plugins/protocol';
import type { Run, Task } from '../db/tables/runs';
import { isUuid } from '../db/uuid';
import type { FeedEventBody } from '../events/feed';
import type { BatchRead } from './batch-read';
import { sentBehind, type TxContext, writeBehind } from './context';
import { eventRows } from './event-rows';
import { lockRuns, type RecordedTask } from './recorded-tasks';

/** Most runs held at once (each a Run row and its few dispatched tasks, ~2 KB): the oldest go first. */
const MAX_RUNS = 1_000;
/** Dispatches of more tasks than this are not held (a throughput start): their recordings take the ordinary path. */
const MAX_TASKS = 8;
/** A batch with more events than this takes the ordinary path (its events travel as one parameter either way). */
const MAX_EVENTS = 64;

/** A dispatched task as the recorder's read would return it, its status and attempt kept as this process saw them. */
type HeldTask = Pick<Task, 'id' | 'runId' | 'node' | 'status' | 'attempt' | 'hotCluster' | 'moduleVersionId'>;

interface HeldRun {
  run: Run;
  tasks: Map<string, HeldTask>;
  /** Whether its start dispatched one task and wrote no task waiting: then that task's result is the run's end. */
  single: boolean;
}

/** A batch's reads as guessed: what record-events.ts would have read under the run's lock. */
export interface RecordingGuess {
  run: Run;
  task: RecordedTask;
  events: ExecutorEvent[];
  /** Whether the batch ends the task (its success): the guess then says no other task of the run exists. */
  ending: boolean;
}

export class RecordingGuesses {
  private readonly runs = new Map<string, HeldRun>();

  get size(): number {
    return this.runs.size;
  }

  /**
   * Notes a dispatch of `tasks` (their next attempt queued) of `run`, once it has committed. `single`: the dispatch of a
   * run's start that queued its one task and left nothing waiting. Tasks with a cache key, a map parent or data access
   * are not held (their recordings read and write more than the guessed path covers).
   */
  dispatched(run: Run, tasks: readonly Task[], single: boolean): void {
    if (!tasks.length || tasks.length > MAX_TASKS || tasks.some((t) => t.cacheKey || t.mapParent || t.dataAccess || t.kind !== 'module')) return;
    const held = this.runs.get(run.id) ?? { run: { ...run }, tasks: new Map<string, HeldTask>(), single };
    held.single = held.single && single && held.tasks.size === 0;
    for (const t of tasks)
      held.tasks.set(t.id, {
        id: t.id,
        runId: t.runId,
        node: t.node,
        status: 'QUEUED',
        attempt: t.attempt + 1,
        hotCluster: t.hotCluster,
        moduleVersionId: t.moduleVersionId,
      });
    this.runs.delete(run.id); // kept in the order touched, for letting the oldest go
    this.runs.set(run.id, held);
    for (const [id] of this.runs) {
      if (this.runs.size <= MAX_RUNS) break;
      this.runs.delete(id);
    }
  }

  /**
   * Follows what a committed transaction of this process wrote, as its feed events say: a held task's status and
   * attempt, a held run's status and start; a run that ended is let go.
   */
  committed(events: readonly FeedEventBody[]): void {
    if (!this.runs.size) return;
    // A transaction's events are mostly of one run (a throughput start's, thousands): looked up once while it repeats.
    let runId: string | undefined;
    let held: HeldRun | undefined;
    for (const e of events) {
      if (e.runId !== runId) [runId, held] = [e.runId, this.runs.get(e.runId)];
      if (!held) continue;
      if (e.kind === 'task-status') {
        const task = held.tasks.get(e.taskId);
        if (task) Object.assign(task, { status: e.status, attempt: e.attempt });
      } else if (e.kind === 'run-status') {
        if (e.status !== 'QUEUED' && e.status !== 'RUNNING') {
          this.runs.delete(e.runId);
          held = undefined;
        } else {
          // The recorder writes a run's start at the transaction's time, the time its event carries.
          if (e.status === 'RUNNING' && held.run.status !== 'RUNNING' && !held.run.startedAt) held.run.startedAt = new Date(e.at);
          held.run.status = e.status;
        }
      }
    }
  }

  /** Lets a run go after a guess of it missed: its next recordings read, until a dispatch of it is held again. */
  missed(runId: string): void {
    this.runs.delete(runId);
  }

  /**
   * The reads of a batch as guessed, where the batch is one this path covers: the starts, progress and at most one
   * success of one held task's current attempt (of a run whose start queued only it, for a success), all under one
   * attempt key or none. Undefined: the ordinary path.
   */
  guess(events: readonly ExecutorEvent[]): RecordingGuess | undefined {
    if (!events.length || events.length > MAX_EVENTS) return undefined;
    const first = events[0]!;
    const held = this.runs.get(first.runId);
    const task = held?.tasks.get(first.taskId);
    if (!held || !task || (task.status !== 'QUEUED' && task.status !== 'RUNNING')) return undefined;
    const { run } = held;
    if ((run.status !== 'QUEUED' && run.status !== 'RUNNING') || !(run.createdAt instanceof Date) || !(run.startedAt === null || run.startedAt instanceof Date))
      return undefined;
    let results = 0;
    const seqs = new Set<number>();
    for (const e of events) {
      if (e.taskId !== task.id || e.runId !== task.runId || e.attempt !== task.attempt || e.attemptKey !== first.attemptKey) return undefined;
      if (!Number.isSafeInteger(e.seq) || e.seq < 0 || seqs.has(e.seq)) return undefined;
      seqs.add(e.seq);
      if (e.kind === 'result') {
        if (e.outcome.state !== 'SUCCEEDED') return undefined;
        results++;
      } else if (e.kind !== 'started' && e.kind !== 'progress') return undefined;
    }
    if (first.attemptKey !== undefined && !isUuid(first.attemptKey)) return undefined;
    const ending = results > 0;
    if (results > 1 || (ending && (!held.single || held.run.parentTaskId))) return undefined;
    const read: RecordedTask = {
      ...task,
      cacheKey: null,
      mapParent: null,
      dataAccess: null,
      attemptKey: first.attemptKey ?? null,
      ...(ending ? { othersEnded: [], edge: { downstream: [], upstreamOutputs: new Map(), more: false, readyInRun: false } } : {}),
    };
    return { run: { ...held.run }, task: read, events: [...events], ending };
  }
}

/**
 * Holds a dispatch's tasks once its transaction has committed, for their recordings to guess their reads. `starting`:
 * the dispatch of a run's start: its one task queued with no task written waiting (run-edges.ts holds none) is taken
 * to be the run's only one, so its success the run's end.
 */
export function noteDispatched(tc: TxContext, run: Run, queued: Task[], starting: boolean): void {
  const { recordGuesses, runEdges } = tc.ctx;
  if (!recordGuesses) return;
  const single = starting && queued.length === 1 && !runEdges.holds(run.id);
  tc.step.afterCommit.push(() => recordGuesses.dispatched(run, queued, single));
}

/**
 * The guard and the batch's insert, in one statement sent behind the run's lock (so it reads after the lock is granted):
 * the events are stored only as the guess says (every one new, of the current attempt), and the statement raises
 * AT001 (guess-guard.ts) unless the run's row, the task's row, the attempt's key and, for a success, the run's other
 * tasks (none) are as guessed: every column the recording reads of them and decides by. `rows`: the insert's rows as
 * event-rows.ts makes them.
 */
export function guardedInsert(guess: RecordingGuess, rows: readonly unknown[]): SQL {
  const { run, task } = guess;
  const runHolds = sql`exists (select 1 from runs r where r.id = ${run.id}::uuid
    and (r.status, r.started_at, r.parent_task_id, r.parent_run_id, r.name, r.domain, r.trigger, r.workflow_id, r.created_by, r.idempotency_key,
      r.created_at, r.admitted, r.max_parallel_tasks)
    is not distinct from (${run.status}::text, ${run.startedAt?.toISOString() ?? null}::timestamptz, ${run.parentTaskId ?? null}::uuid,
      ${run.parentRunId ?? null}::uuid, ${run.name ?? null}::text, ${run.domain ?? null}::text, ${run.trigger ?? null}::text, ${run.workflowId ?? null}::uuid,
      ${run.createdBy ?? null}::uuid, ${run.idempotencyKey ?? null}::text, ${run.createdAt.toISOString()}::timestamptz, ${run.admitted ?? null}::boolean,
      ${run.maxParallelTasks ?? null}::int))`;
  const taskHolds = sql`exists (select 1 from tasks t where t.id = ${task.id}::uuid and t.run_id = ${run.id}::uuid
    and t.status = ${task.status}::text and t.attempt = ${task.attempt}::int and t.node = ${task.node}::text
    and t.cache_key is null and t.map_parent is null and t.data_access is null
    and t.hot_cluster is not distinct from ${task.hotCluster ?? null}::text and t.module_version_id is not distinct from ${task.moduleVersionId ?? null}::uuid)`;
  const keyHolds = task.attemptKey
    ? sql` and exists (select 1 from task_executions x where x.task_id = ${task.id}::uuid and x.attempt = ${task.attempt}::int and x.key = ${task.attemptKey}::uuid)`
    : sql``;
  const aloneHolds = guess.ending ? sql` and not exists (select 1 from tasks o where o.run_id = ${run.id}::uuid and o.id <> ${task.id}::uuid)` : sql``;
  return sql`with stored as (
      insert into task_events (task_id, run_id, attempt, seq, kind, at, payload)
      select v.task_id, v.run_id, v.attempt, v.seq, v.kind, v.at, v.payload
      from json_array_elements(${JSON.stringify(rows)}::json) j cross join lateral json_populate_record(null::task_events, j) v
      on conflict do nothing returning 1)
    select atelier_expect(${runHolds} and ${taskHolds}${keyHolds}${aloneHolds} and (select count(*) from stored) = ${rows.length}::int,
      'the recording guessed its run and task as this control plane last saw them') as held`;
}

/**
 * Sends the guessed path's first statements (the run's lock, then the guard with the batch's insert) without waiting,
 * and returns the reads as guessed, for the recording's writes to follow them in the same round trip. A guess that
 * does not hold fails the transaction with AT001, none of it kept (`transact` throws the guard's error).
 */
export function sendGuessed(tc: TxContext, given: ExecutorEvent[], guess: RecordingGuess): BatchRead {
  const { task } = guess;
  // Issued in this order, each sent when first awaited: the guard reaches Postgres after the lock, so reads after it.
  sentBehind(tc, Promise.resolve(lockRuns(tc.tx, [guess.run.id])));
  const { rows } = eventRows(guess.events);
  // Prepared: its text is one of four (with or without the key's and the other tasks' parts), every value a parameter.
  writeBehind(tc, guardedInsert(guess, rows), undefined, true);
  return {
    capped: { events: given, fresh: new Set(), writes: [] },
    lockedRuns: [guess.run],
    taskRows: [guess.task],
    // What the early insert would have stored: every row (the guard holds only if the insert stored them all).
    early: {
      stored: rows.map((r) => ({ task_id: r.task_id, attempt: r.attempt, seq: r.seq })),
      current: new Set([`${task.id}:${task.attempt}`]),
      kept: new Map([[`${task.id}:${task.attempt}`, guess.events]]),
    },
  };
}
