// Recording what executors report: each event kept once (task, attempt, sequence number), heartbeats and progress
// written in bulk, starts and results stored and applied together per run under its lock; stale reports (another
// execution of an attempt that already has its result) refused; zombie attempts and stale executions told to stop.
import { inArray, sql } from 'drizzle-orm';
import type { ExecutorEvent } from '../../plugins/protocol';
import { traceTaskHop, tracing } from '../../plugins/trace';
import { idAmong, jsonRows } from '../db/arrays';
import { guessMissed } from '../db/guess-guard';
import { moduleVersions } from '../db/tables/modules';
import type { Run } from '../db/tables/runs';
import { recordDatasetWrites } from '../governance/policy';
import { crashPoint } from '../lifecycle/crash-hook';
import { keepResultFiles } from '../tracking/artifacts';
import { refreshCopies } from '../tracking/inherit';
import { pointsOf } from '../tracking/metric-events';
import { storeMetricPoints } from '../tracking/metrics';
import { isCurrent, reportVerdict, resultVerdict, secondResults, seqBlock } from './attempts';
import { type BatchRead, readBatch } from './batch-read';
import { scanBatch, secondCurrentResults, walkFresh, walkReports } from './batch-walk';
import { stopAttempts, stopStaleExecutions } from './cancel';
import { completeMaps } from './composite';
import { ACTIVE, type OrchestratorContext, type TxContext, taskStatusEvent, transact, writeBehind } from './context';
import { storeKept } from './event-insert';
import { ignoredResultNote, liveEventsOf, progressRow, successRow, timings } from './event-rows';
import { outputKey } from './known-facts';
import { recordAlive } from './record-alive';
import { sendGuessed } from './record-guesses';
import { type RecordedTask, wholeTasks } from './recorded-tasks';
import { resultBlocksOf, staleExecutions, staleReports } from './report-checks';
import { isTerminal } from './rules';
import { applyOutcome, settle } from './settle';

type Started = Extract<ExecutorEvent, { kind: 'started' }>;
type Result = Extract<ExecutorEvent, { kind: 'result' }>;
type Progress = Extract<ExecutorEvent, { kind: 'progress' }>;
type Known = Map<string, RecordedTask>;

/**
 * Records a batch of executor events, as a rule in ONE transaction: the run whose tasks start or end locked, every
 * new event stored by one insert, heartbeats and progress by one update, and the transitions they cause applied and
 * settled, down to the next tasks' messages. A batch that moves tasks of several runs takes one transaction per run
 * after the first (each applying one run's transitions; the runs a transaction locks are taken in id order, as a cancel
 * takes a run and its nested runs: see recordPart). Safe to call again with events already recorded.
 * Returns the events it accepted. (Before, a batch took a transaction for its notes, one per run for its
 * transitions and two more statements outside either: ~37 statements over 3 transactions per chain edge.)
 */
export async function recordEvents(ctx: OrchestratorContext, events: ExecutorEvent[]): Promise<RecordedEvents> {
  const recorded: RecordedEvents = { accepted: [], onHotClusters: [] };
  if (!events.length) return recorded;
  const moves = (e: ExecutorEvent) => e.kind === 'started' || e.kind === 'result';
  const runs = new Set<string>();
  for (const e of events) if (moves(e)) runs.add(e.runId);
  // Starts and results of one run at most (every throughput batch): one part, the batch as it came.
  if (runs.size <= 1) return recordPart(ctx, events);
  const moving = [...runs];
  // The first part: everything but other runs' starts and results; then one part per other run.
  const parts = [
    events.filter((e) => !moves(e) || e.runId === moving[0]),
    ...moving.slice(1).map((runId) => events.filter((e) => moves(e) && e.runId === runId)),
  ];
  for (const part of parts) {
    const { accepted, onHotClusters } = await recordPart(ctx, part);
    recorded.accepted.push(...accepted);
    recorded.onHotClusters.push(...onHotClusters);
  }
  return recorded;
}

/** What recordEvents accepted, and of that the starts and results of tasks on a hot cluster (the hot-cluster service's part). */
export interface RecordedEvents {
  accepted: ExecutorEvent[];
  /** Told apart from the task rows the recording read anyway, so the hot-cluster service reads nothing for other tasks. */
  onHotClusters: ExecutorEvent[];
}

/**
 * Records events whose starts and results all belong to one run, in one transaction under that run's lock: in one
 * round trip where this control plane can guess what the batch's reads would return (record-guesses.ts), the writes
 * sent behind a guard that aborts them all if the rows are not as guessed; else, or after such a miss, in two (the
 * reads, then the writes that follow from them).
 */
async function recordPart(ctx: OrchestratorContext, given: ExecutorEvent[]): Promise<RecordedEvents> {
  const scan = scanBatch(given);
  if (!scan.taskIds.length) return { accepted: given, onHotClusters: [] };
  const guess = ctx.recordGuesses?.guess(given);
  if (guess)
    try {
      return await transact(ctx, (tc) => recordRead(tc, sendGuessed(tc, given, guess)));
    } catch (error) {
      // Nothing of it was kept: the ordinary path records the batch from what it reads.
      if (!guessMissed(error)) throw error;
      ctx.recordGuesses?.missed(guess.run.id);
    }
  return transact(ctx, async (tc) => recordRead(tc, await readBatch(tc, given, scan)));
}

/** Records the batch given its reads (read, or guessed behind a guard), in the transaction that made them. */
async function recordRead(tc: TxContext, { capped, lockedRuns, taskRows, early }: BatchRead): Promise<RecordedEvents> {
  const { tx } = tc;
  let events = capped.events;
  if (tracing()) for (const e of events) if (e.kind === 'result') traceTaskHop('control plane: locked and read', e.runId, e.taskId);
  const locked = new Map<string, Run>(lockedRuns.map((r) => [r.id, r]));
  const known: Known = new Map();
  let onHot = false;
  for (const t of taskRows) {
    known.set(t.id, t);
    if (t.hotCluster) onHot = true;
  }
  // Reports under a key this database did not draw (a restore undid their attempt's claim) are left out of
  // everything below, as the early insert left them out of its rows.
  const stale = await staleReports(tx, events, known);
  if (stale.size) {
    await stopStaleExecutions(tc, staleExecutions(stale));
    events = events.filter((e) => !stale.has(e));
    for (const [pair, kept] of early.kept)
      early.kept.set(
        pair,
        kept.filter((e) => !stale.has(e)),
      );
  }
  // Heartbeats only refresh a timestamp; everything else is kept, once, as a task event, unless it is a stale
  // report: another execution of an attempt that already has its result (a redelivered message run again). One walk
  // sorts the reports (batch-walk.ts); only those of attempts no longer current need the ended attempts' read.
  const { reports, notCurrent, allCurrent } = walkReports(events, known);
  const { blocks: resultBlocks, startCarried } = await resultBlocksOf(tx, notCurrent);
  const refused = new Set<ExecutorEvent>();
  // A report of a current attempt is recorded (reportVerdict); of the others some are refused.
  for (const e of notCurrent) if (reportVerdict(known.get(e.taskId)!, e, resultBlocks.get(`${e.taskId}:${e.attempt}`)) === 'refuse') refused.add(e);
  // A second execution's result (the attempt's first result decides) is kept only as a note in the task's log.
  const seconds = allCurrent ? secondCurrentResults(reports) : secondResults(reports, (id) => known.get(id)!.attempt, resultBlocks);
  for (const e of seconds.keys()) refused.add(e);
  // Progress of an attempt whose result is stored says nothing any more (and may be one its result's row carries), nor
  // does a start its result's row carries (event-rows.ts).
  const ended = (e: ExecutorEvent) =>
    (e.kind === 'progress' ? resultBlocks.has(`${e.taskId}:${e.attempt}`) : e.kind === 'started' && startCarried.has(`${e.taskId}:${e.attempt}:${e.seq}`)) &&
    !isCurrent(known.get(e.taskId)!, e.attempt);
  // Every attempt current and nothing refused (the throughput batch): every report is kept, as it came.
  const kept =
    allCurrent && !refused.size
      ? reports
      : [...reports.filter((e) => !refused.has(e) && !ended(e)), ...[...seconds].map(([e, first]) => ignoredResultNote(e as Result, first))];
  const fresh = await storeKept(tc, early, capped, kept);
  // What is new, sorted in one walk: notes, starts and results by run, each task's latest progress.
  const { notes, moves, hasResult, alive, withSuccess } = walkFresh(fresh);
  await recordNotes(tc, notes, known);
  // An attempt that succeeds in this batch takes its last progress message with its success (one update, not two).
  recordAlive(tc, events, alive, known);

  if (hasResult) crashPoint('result-stored');
  for (const [runId, runEvents] of moves) {
    const run = locked.get(runId);
    if (run) await applyTransitions(tc, run, runEvents, known, withSuccess);
  }
  // An attempt that reports while its task was cancelled or has moved on to a later attempt is a zombie
  // (its message was already on the bus, or its host was presumed lost): stop it. None when every attempt is current
  // (what is refused then is second results, whose executions have ended).
  const zombies = new Map<string, { taskId: string; attempt: number }>();
  if (!allCurrent)
    for (const e of events) {
      const task = known.get(e.taskId);
      if (!task || e.kind === 'result') continue;
      if ((task.status === 'CANCELLED' && e.attempt === task.attempt) || e.attempt < task.attempt || refused.has(e))
        zombies.set(`${e.taskId}:${e.attempt}`, { taskId: e.taskId, attempt: e.attempt });
    }
  if (zombies.size) await stopAttempts(tc, [...zombies.values()], 'superseded: the task was cancelled, moved to a later attempt or already finished');
  const accepted = refused.size ? events.filter((e) => !refused.has(e)) : events;
  const onHotClusters = onHot ? accepted.filter((e) => (e.kind === 'started' || e.kind === 'result') && known.get(e.taskId)?.hotCluster) : [];
  return { accepted, onHotClusters };
}

/** New logs, progress and metrics (`notes`): their metric points stored, their live events queued with the transaction's. */
async function recordNotes({ tx, step }: TxContext, notes: ExecutorEvent[], known: Known): Promise<void> {
  if (!notes.length) return;
  // Metric points are stored with the event that carried them: a redelivered event is not new, so adds none.
  // Decoded once: stored here and sent live below.
  const decoded = new Map(notes.filter((e) => e.kind === 'metric').map((e) => [e, pointsOf(e)]));
  // Points of a task that has succeeded (late words of its execution) reach the copies cache hits and reruns made of it.
  if (decoded.size && (await storeMetricPoints(tx, [...decoded.values()].flat())))
    await refreshCopies(
      tx,
      [...decoded.keys()].filter((e) => known.get(e.taskId)?.status === 'SUCCEEDED').map((e) => e.taskId),
    );
  step.feed.push(...liveEventsOf(notes, known, decoded));
}

/**
 * Applies newly stored `started` and `result` events of one run, whose row the caller has locked, in the
 * transaction that stored them: a crash leaves neither, and the redelivered events do both. Only newly stored
 * events move a task, so a repeat changes nothing; a second success for a task is refused by the database
 * (task_events_one_success_key).
 */
async function applyTransitions(tc: TxContext, run: Run, fresh: ExecutorEvent[], known: Known, progressOf: Map<string, Progress>): Promise<void> {
  const { ctx, tx, step } = tc;
  const runId = run.id;
  // This run's tasks only (a node name means something only within its run), as read under the run's lock.
  const rows = new Map<string, RecordedTask>();
  // The statuses this batch writes, by task id, over the rows as read: not a spread copy of each row (a row as
  // drizzle builds it is a V8 dictionary object, ~11 µs a copy, one per started or succeeded task).
  const written = new Map<string, RecordedTask['status']>();
  const statusOf = (t: RecordedTask) => written.get(t.id) ?? t.status;
  const finished: string[] = [];
  let started = false;
  // Per task, the first report of each kind decides; a start and a result in one batch is one update.
  const latest = new Map<string, { started?: Started; result?: Result; adopt?: Result }>();
  for (const e of fresh) {
    const task = known.get(e.taskId);
    if (!task || task.runId !== runId) continue;
    rows.set(task.id, task);
    const entry = latest.get(task.id) ?? {};
    // Only the current attempt moves a task; reports from an older attempt or after the end are history, except
    // a success of an attempt given up on too early, which ends the task rather than letting it run again.
    if (e.kind === 'started' && isCurrent(task, e.attempt)) entry.started ??= e;
    if (e.kind === 'result') {
      const verdict = resultVerdict(task, e);
      if (verdict === 'apply') entry.result ??= e;
      if (verdict === 'adopt') entry.adopt ??= e;
    }
    latest.set(task.id, entry);
  }
  const startedOnly: { task: RecordedTask; event: Started }[] = [];
  const succeeded: { task: RecordedTask; event: Result; adopted: boolean }[] = [];
  const superseded: { taskId: string; attempt: number }[] = [];
  // A result that did not succeed decides its retry from the whole row.
  const whole = await wholeTasks(
    tx,
    [...latest].filter(([, l]) => !l.adopt && l.result && l.result.outcome.state !== 'SUCCEEDED').map(([id]) => id),
  );
  // The applied results that did not succeed (a success's time split is set by its own update); whether any result ends.
  const failedResults: Result[] = [];
  let ends = false;
  for (const [taskId, { started: s, result: r, adopt: a }] of latest) {
    const task = rows.get(taskId)!;
    if (a || r) ends = true;
    if (a) {
      succeeded.push({ task, event: a, adopted: true });
      // The attempt dispatched in its place is not needed any more.
      if (ACTIVE.includes(task.status) && task.attempt !== a.attempt) superseded.push({ taskId, attempt: task.attempt });
      continue;
    }
    if (r || s) started = true;
    if (r) {
      if (r.outcome.state === 'SUCCEEDED') succeeded.push({ task, event: r, adopted: false });
      else {
        failedResults.push(r);
        const updated = await applyOutcome(tc, whole.get(taskId)!, r.outcome, { at: new Date(r.at), durationMs: r.durationMs, host: r.host });
        rows.set(task.id, updated);
        if (isTerminal(updated.status)) finished.push(updated.node);
      }
    } else if (s && task.status === 'QUEUED') startedOnly.push({ task, event: s });
  }
  if (superseded.length) await stopAttempts(tc, superseded, 'superseded: an earlier attempt of the task succeeded');
  await recordTimings(tc, failedResults);
  if (startedOnly.length) {
    // Nothing waits for its answer (the status it writes is passed on): sent behind, as the progress update before it,
    // and prepared as it is (its text one of two: idAmong).
    writeBehind(
      tc,
      sql`
      update tasks as t set status = 'RUNNING', started_at = v.at, host = v.host, external_handle = v.handle, heartbeat_at = ${step.at.toISOString()}::timestamptz
      from ${jsonRows(startedOnly.map(({ task, event }) => ({ id: task.id, at: event.at, host: event.host, handle: event.handle ?? null })))}
        as v(id uuid, at timestamptz, host text, handle jsonb)
      where t.id = v.id and ${idAmong(
        't',
        startedOnly.map(({ task }) => task.id),
      )} and t.status = 'QUEUED'`,
      undefined,
      true,
    );
    for (const { task } of startedOnly) {
      written.set(task.id, 'RUNNING');
      taskStatusEvent(step, task, 'RUNNING');
    }
  }
  if (succeeded.length) {
    // Nothing below waits for its answer (the statuses it writes are passed on): the next statements follow it.
    writeBehind(
      tc,
      sql`${keepResultFiles(succeeded.map(({ task, event }) => ({ id: task.id, block: seqBlock(event.seq) })))}
      update tasks as t set status = 'SUCCEEDED', outputs = v.outputs, progress = 1, reason = v.reason, message = v.message,
        progress_message = case when v.has_progress then v.progress_message else t.progress_message end,
        exit_code = v.exit_code, finished_at = v.finished, retry_at = null, host = v.host,
        started_at = coalesce(t.started_at, v.finished - ceil(v.duration) * interval '1 millisecond'), provisioning_ms = v.provisioning, execution_ms = v.execution
      from ${jsonRows(succeeded.map(({ task, event, adopted }) => ({ id: task.id, ...successRow(event), ...progressRow(adopted ? undefined : progressOf.get(task.id)) })))}
        as v(id uuid, outputs jsonb, reason text, message text, exit_code int, finished timestamptz, host text, duration float8, provisioning int, execution int,
          has_progress boolean, progress_message text)
      where t.id = v.id and ${idAmong(
        't',
        succeeded.map(({ task }) => task.id),
      )}`,
      undefined,
      true, // prepared: one text, every value a parameter
    );
    await ctx.cache?.record(
      tx,
      succeeded
        .filter(({ task }) => task.cacheKey)
        .map(({ task, event }) => ({ taskId: task.id, outputs: event.outcome.outputs ?? {}, durationMs: event.durationMs })),
      step.at,
    );
    const writes = succeeded.filter(({ task }) => task.dataAccess && Object.keys(task.dataAccess.outputs).length);
    if (writes.length) {
      const versions = new Map(
        (
          await tx
            .select()
            .from(moduleVersions)
            .where(
              inArray(
                moduleVersions.id,
                writes.map(({ task }) => task.moduleVersionId!),
              ),
            )
        ).map((v) => [v.id, v.manifest]),
      );
      await recordDatasetWrites(
        tx,
        writes.map(({ task, event }) => ({
          taskId: task.id,
          domain: run.domain,
          createdBy: run.createdBy,
          manifest: versions.get(task.moduleVersionId!)!,
          access: task.dataAccess!,
          outputs: event.outcome.outputs ?? {},
        })),
        ctx.catalogCeiling,
      );
    }
    for (const { task, event, adopted } of succeeded) {
      step.outputs.set(outputKey(runId, task.node), event.outcome.outputs ?? {});
      // A start and its result in one batch still show the task running, so every watcher sees the same story.
      if (task.status === 'QUEUED' && !adopted) taskStatusEvent(step, task, 'RUNNING');
      written.set(task.id, 'SUCCEEDED');
      finished.push(task.node);
      taskStatusEvent(step, task, 'SUCCEEDED', event.outcome.reason ?? null, event.outcome.message ?? null);
      step.lastSuccessAt = Math.max(step.lastSuccessAt, Date.parse(event.at) || 0);
      if (event.outcome.registrations?.length)
        step.registrations.push({ taskId: task.id, runId, attempt: event.attempt, requests: event.outcome.registrations });
    }
  }
  const mapParents: string[] = [];
  for (const t of rows.values()) if (t.mapParent && isTerminal(statusOf(t)) && finished.includes(t.node)) mapParents.push(t.mapParent);
  if (mapParents.length) finished.push(...(await completeMaps(tc, run, mapParents)));
  if (started && run.status === 'QUEUED') {
    writeBehind(tc, sql`update runs set status = 'RUNNING', started_at = ${step.at.toISOString()}::timestamptz where id = ${runId}`, undefined, true);
    run.status = 'RUNNING';
    step.feed.push({ kind: 'run-status', runId, status: 'RUNNING', message: null, at: step.at.toISOString() });
  }
  // Only starts (QUEUED to RUNNING, both holding their slot): nothing ended, no slot freed, so there is nothing to settle
  // and dispatch could only find READY tasks a slot freed elsewhere let go, which the sweep's fillFreeSlots queues. Not
  // asked here: its read of the run's READY tasks was the one statement a first progress with its start waited for.
  if (!ends) return;
  // The finished nodes' statuses as just written, so settling need not read them back.
  if (tracing()) for (const e of fresh) if (e.kind === 'result') traceTaskHop('control plane: settling', e.runId, e.taskId);
  // The run's one open task, read so under its lock, has ended: what its tasks ended in, for its end without counting.
  const only = rows.size === 1 ? (rows.values().next().value as RecordedTask) : undefined;
  const ended = only?.othersEnded && isTerminal(statusOf(only)) ? [...only.othersEnded, statusOf(only)] : undefined;
  const statuses = new Map<string, RecordedTask['status']>();
  for (const t of rows.values()) statuses.set(t.node, statusOf(t));
  await settle(tc, run, finished, statuses, ended, only?.edge);
}

/** The time split of applied results that did not succeed (a success's is set by its own update). */
async function recordTimings({ tx }: TxContext, results: Result[]): Promise<void> {
  if (!results.length) return;
  await tx.execute(sql`
    update tasks as t set provisioning_ms = v.provisioning, execution_ms = v.execution
    from ${jsonRows(results.map((e) => ({ id: e.taskId, ...timings(e) })))} as v(id uuid, provisioning int, execution int)
    where t.id = v.id and ${idAmong(
      't',
      results.map((e) => e.taskId),
    )}`);
}
