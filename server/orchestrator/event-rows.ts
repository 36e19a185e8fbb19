// The rows the recorder writes from executor events: the task event itself, a success's columns and time split,
// and the progress a batch ends with per task. Pure; record-events.ts writes them.
import type { ExecutorEvent } from '../../plugins/protocol';
import { seqBlock } from './attempts';

type Result = Extract<ExecutorEvent, { kind: 'result' }>;
type Progress = Extract<ExecutorEvent, { kind: 'progress' }>;

/** An event as task_events stores it. */
export const eventRow = (e: ExecutorEvent) => {
  const { taskId, runId, attempt, seq, kind, at, host, ...payload } = e;
  // A metric event's points live in metric_points; the event keeps where they are.
  const kept = e.kind === 'metric' ? { firstPoint: e.firstPoint, count: e.points?.length ?? 0 } : payload;
  const stored: Record<string, unknown> = { host, ...kept };
  return { taskId, runId, attempt, seq, kind, at: new Date(at), payload: stored };
};

/**
 * The task_events rows of `events` (all to be stored). A progress report whose execution's result comes after it in
 * the same batch is carried by that result's row (`payload.progress`: the latest such report) rather than stored as a
 * row of its own: progress is a level that the result ends, read later by nothing but the success's update and the live
 * feed, which both take it from the batch. One row less per short attempt. `carrier`: for each report carried, the
 * result whose row carries it, so the report is new exactly when that row is.
 */
export function eventRows(events: ExecutorEvent[]): { rows: ReturnType<typeof eventRow>[]; carrier: Map<ExecutorEvent, Result> } {
  const execution = (e: ExecutorEvent) => `${e.taskId}:${e.attempt}:${seqBlock(e.seq)}`;
  const results = new Map<string, Result>();
  for (const e of events) if (e.kind === 'result' && !results.has(execution(e))) results.set(execution(e), e);
  const carrier = new Map<ExecutorEvent, Result>();
  const carried = new Map<Result, Progress>();
  for (const e of events) {
    const result = e.kind === 'progress' ? results.get(execution(e)) : undefined;
    if (e.kind !== 'progress' || !result || result.seq < e.seq) continue;
    carrier.set(e, result);
    const latest = carried.get(result);
    if (!latest || latest.seq < e.seq) carried.set(result, e);
  }
  const rows = events
    .filter((e) => !carrier.has(e))
    .map((e) => {
      const row = eventRow(e);
      const progress = e.kind === 'result' ? carried.get(e) : undefined;
      if (progress) row.payload = { ...row.payload, progress: { seq: progress.seq, fraction: progress.fraction, message: progress.message, at: progress.at } };
      return row;
    });
  return { rows, carrier };
}

/** The applied results' time split: provisioning (when the executor reports it), the rest execution. */
export function timings(e: Result): { provisioning: number | null; execution: number } {
  const provisioning = typeof e.outcome.provisioningMs === 'number' ? Math.max(0, Math.round(e.outcome.provisioningMs)) : null;
  return { provisioning, execution: Math.max(0, Math.round(e.durationMs - (provisioning ?? 0))) };
}

/** A success's columns, as the success update reads them. */
export function successRow(event: Result) {
  const o = event.outcome;
  return {
    outputs: o.outputs ?? null,
    reason: o.reason ?? null,
    message: o.message ?? null,
    exit_code: o.exitCode ?? null,
    finished: event.at,
    host: event.host,
    started: new Date(new Date(event.at).getTime() - event.durationMs).toISOString(),
    ...timings(event),
  };
}

/** The last progress message of an attempt that succeeds in the same batch (recordAlive leaves it to the success). */
export const progressRow = (p: Progress | undefined) => ({ has_progress: !!p, progress_message: p?.message ?? null });

/** Of several progress reports per task, the one with the highest sequence number. */
export function latestPerTask<T extends { taskId: string; seq: number }>(events: T[]): T[] {
  const latest = new Map<string, T>();
  for (const e of events) {
    const prev = latest.get(e.taskId);
    if (!prev || prev.seq < e.seq) latest.set(e.taskId, e);
  }
  return [...latest.values()];
}

/**
 * What is kept of a result that came second: another execution of an attempt whose result is already recorded (or
 * comes first in the same batch) reported one too. The first result decides; this one is kept as a line in the
 * task's log, under its own sequence number (so a redelivery of it adds nothing), saying it was ignored and why.
 */
export function ignoredResultNote(e: Result, winner: number | undefined): ExecutorEvent {
  const { outcome } = e;
  const why = [outcome.state, outcome.reason, outcome.message].filter(Boolean).join(': ');
  const first = winner === undefined ? '' : ` (execution ${winner})`;
  return {
    taskId: e.taskId,
    runId: e.runId,
    attempt: e.attempt,
    seq: e.seq,
    at: e.at,
    host: e.host,
    kind: 'log',
    stream: 'stderr',
    lines: [
      `[atelier] ignored the result of execution ${seqBlock(e.seq)} of attempt ${e.attempt} on ${e.host} (${why}): the attempt already has the result of another execution${first}`,
    ],
  };
}
