// The rows the recorder writes from executor events: the task event itself, a success's columns and time split,
// the progress a batch ends with per task, and the live events of its notes. Pure; record-events.ts writes them.
import { encodeMetricValue } from '../../plugins/metric-values';
import type { ExecutorEvent } from '../../plugins/protocol';
import type { FeedEventBody } from '../events/feed';
import { pointsOf } from '../tracking/metric-events';
import type { MetricPointInput } from '../tracking/metrics';
import { seqBlock } from './attempts';
import { rowKey } from './report-checks';

type Result = Extract<ExecutorEvent, { kind: 'result' }>;
type Progress = Extract<ExecutorEvent, { kind: 'progress' }>;
type Started = Extract<ExecutorEvent, { kind: 'started' }>;

/**
 * An event as task_events stores it, keyed by column name as `json_populate_recordset` reads it (recordEvents' insert):
 * built once, with the host's `at` as it came (ISO 8601, read by Postgres), not through a Date and back per row.
 */
export const eventRow = (e: ExecutorEvent) => {
  // The payload is the event less its columns: copied field by field, in the event's order, into one object (a rest
  // pattern and a spread after it made two, ~1 µs an event on a throughput batch).
  const stored: Record<string, unknown> = { host: e.host };
  // A metric event's points live in metric_points; the event keeps where they are.
  if (e.kind === 'metric') {
    stored.firstPoint = e.firstPoint;
    stored.count = e.points?.length ?? 0;
  } else for (const key in e) if (!isColumn(key)) stored[key] = e[key as keyof typeof e];
  // `attempt_key` is no column: the early insert checks it (event-insert.ts) and no row keeps it.
  return { task_id: e.taskId, run_id: e.runId, attempt: e.attempt, seq: e.seq, kind: e.kind, at: e.at, payload: stored, attempt_key: rowKey(e) };
};

/** The event's fields its row keeps in columns (or, `attemptKey`, nowhere), so not in its payload. */
const isColumn = (key: string) =>
  key === 'taskId' || key === 'runId' || key === 'attempt' || key === 'seq' || key === 'kind' || key === 'at' || key === 'host' || key === 'attemptKey';

/**
 * The task_events rows of `events` (all to be stored). A start, and a progress report, whose execution's result comes
 * after it in the same batch are carried by that result's row rather than stored as rows of their own: the start as
 * `payload.started` (its `seq`, `at`, and its handle and host where it has them: what a task's attempts show), the
 * progress as `payload.progress` (the latest such report: a level that the result ends, read later by nothing but the
 * success's update and the live feed, which both take it from the batch). One row per short attempt, not three.
 * `carrier`: for each report carried, the result whose row carries it, so the report is new exactly when that row is.
 */
export function eventRows(events: ExecutorEvent[]): { rows: ReturnType<typeof eventRow>[]; carrier: Map<ExecutorEvent, Result> } {
  // Each execution's first result: by task (one execution's result a task, the usual batch), and those of its other
  // executions (rare) by `taskId:attempt:block`, so the usual batch builds no key string an event.
  const firsts = new Map<string, Result>();
  let others: Map<string, Result> | undefined;
  const execution = (e: ExecutorEvent) => `${e.taskId}:${e.attempt}:${seqBlock(e.seq)}`;
  const same = (a: ExecutorEvent, b: ExecutorEvent) => a.attempt === b.attempt && seqBlock(a.seq) === seqBlock(b.seq);
  for (const e of events) {
    if (e.kind !== 'result') continue;
    const first = firsts.get(e.taskId);
    if (!first) firsts.set(e.taskId, e);
    else if (!same(first, e)) {
      others ??= new Map();
      const key = execution(e);
      if (!others.has(key)) others.set(key, e);
    }
  }
  const resultOf = (e: ExecutorEvent): Result | undefined => {
    const first = firsts.get(e.taskId);
    return first && same(first, e) ? first : others?.get(execution(e));
  };
  const carrier = new Map<ExecutorEvent, Result>();
  const carried = new Map<Result, Progress>();
  const starts = new Map<Result, Started>();
  if (firsts.size)
    for (const e of events) {
      if (e.kind !== 'progress' && e.kind !== 'started') continue;
      const result = resultOf(e);
      if (!result || result.seq < e.seq) continue;
      carrier.set(e, result);
      const latest = e.kind === 'progress' ? carried.get(result) : starts.get(result);
      if (latest && (e.kind === 'progress' ? latest.seq > e.seq : latest.seq < e.seq)) continue;
      if (e.kind === 'progress') carried.set(result, e);
      else starts.set(result, e);
    }
  const rows: ReturnType<typeof eventRow>[] = [];
  for (const e of events) {
    if (carrier.size && carrier.has(e)) continue;
    const row = eventRow(e);
    rows.push(row);
    if (e.kind !== 'result') continue;
    const progress = carried.get(e);
    const start = starts.get(e);
    if (progress) row.payload.progress = { seq: progress.seq, fraction: progress.fraction, message: progress.message, at: progress.at };
    if (start) row.payload.started = startedPart(start, e);
  }
  return { rows, carrier };
}

/** A start as its result's row carries it: its host and handle only where it has them (its result names the same host). */
function startedPart(start: Started, result: Result): Record<string, unknown> {
  const part: Record<string, unknown> = { seq: start.seq, at: start.at };
  if (start.handle !== undefined && start.handle !== null) part.handle = start.handle;
  if (start.host !== result.host) part.host = start.host;
  return part;
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
    // Its start, if none was recorded, is `finished` less this (in the update: no Date parsed and formatted per task).
    duration: event.durationMs,
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

/** The live events of newly recorded progress, logs and metrics. */
export function liveEventsOf(fresh: ExecutorEvent[], known: Map<string, { node: string }>, decoded: Map<ExecutorEvent, MetricPointInput[]>): FeedEventBody[] {
  const out: FeedEventBody[] = [];
  for (const e of fresh) {
    const node = known.get(e.taskId)!.node;
    if (e.kind === 'progress') out.push({ kind: 'task-progress', runId: e.runId, taskId: e.taskId, node, fraction: e.fraction, message: e.message, at: e.at });
    else if (e.kind === 'log') out.push({ kind: 'task-log', runId: e.runId, taskId: e.taskId, node, stream: e.stream, lines: e.lines, at: e.at });
    else if (e.kind === 'metric') {
      const points = (decoded.get(e) ?? pointsOf(e)).map((p) => ({ name: p.name, value: encodeMetricValue(p.value), step: p.step, seq: p.seq }));
      if (!points.length) continue;
      const metrics = Object.fromEntries(points.map((p) => [p.name, p.value]));
      out.push({ kind: 'task-metric', runId: e.runId, taskId: e.taskId, node, attempt: e.attempt, points, metrics, step: points.at(-1)!.step, at: e.at });
    }
  }
  return out;
}
