// What one attempt reports on the bus: numbers its events, batches its logs, coalesces its progress, folds what
// comes within a few milliseconds into one message, and publishes its result with retries. The attempt lifecycle
// (attempt.ts) hands reports in; this file decides when they go out.
import { randomBytes } from 'node:crypto';
import { DEFAULT_MAX_PAYLOAD_BYTES } from '../bus/payload-limit';
import type { Bus } from '../bus/types';
import { permanentFailure } from '../outcomes';
import { type ExecutorEvent, SEQ_BLOCK, type TaskMessage, type TaskOutcome } from '../protocol';
import { traceHop, traceTaskHop, tracing } from '../trace';
import { bundleJson, fits } from './bundle';
import { createMetricBuffer, type MetricBuffer } from './metric-buffer';

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
/** An event as its producer writes it; the reporter adds the attempt's identity, sequence number and time. */
export type EventBody = DistributiveOmit<ExecutorEvent, 'taskId' | 'runId' | 'attempt' | 'seq' | 'at' | 'host'>;

type Stream = 'stdout' | 'stderr';

const TRUNCATED_WHY = (max: number) => `an attempt's log keeps its first ${max} bytes (ATELIER_MAX_LOG_BYTES)`;
const TRUNCATED_SEE = "write bulk output to a file and log it as an artifact (see the README's ATELIER_MAX_LOG_BYTES)";

/** Time as the reporter sees it: injectable so tests step through batching and coalescing without waiting. */
export interface ReporterClock {
  now(): number;
  /** Runs `fn` after `ms`; the returned function cancels it. */
  schedule(fn: () => void, ms: number): () => void;
}

export const systemClock: ReporterClock = {
  now: () => Date.now(),
  schedule(fn, ms) {
    const timer = setTimeout(fn, ms);
    return () => clearTimeout(timer);
  },
};

export interface ReporterOptions {
  bus: Pick<Bus, 'publishEvent' | 'publishEvents' | 'maxPayloadBytes'>;
  task: TaskMessage;
  host: string;
  /**
   * Deliveries of this attempt before this one: the block this execution numbers its events from when the control
   * plane gave it no execution number (`task.execution`, protocol 4), which is the block otherwise.
   */
  redeliveryCount: number;
  /** Log lines go out once a stream holds this many bytes, or this long after the first one arrived. */
  logBatch: { bytes: number; ms: number };
  /** Most log bytes published per attempt; past it one truncation notice is logged and the rest dropped. */
  maxLogBytes: number;
  /**
   * Metric points go out in events of `points`, `ms` after the first one arrived, or at once when `holdPoints` wait
   * (and before any other event but a heartbeat, to keep their order with it).
   */
  metricBatch?: { points: number; ms: number; holdPoints?: number };
  warn: (message: string) => void;
  clock?: ReporterClock;
  /** How long events wait to be folded with the ones after them into one bus message (protocol 2). Default FOLD_MS. */
  foldMs?: number;
}

export interface Reporter {
  /** False once `close` ran: late reports from the executor are dropped. */
  readonly open: boolean;
  log(stream: Stream, line: string): void;
  progress(fraction: number | null | undefined, message?: string | null): void;
  /**
   * Buffers one point per metric (NaN and ±Infinity kept; a value that is no number is dropped with one line in the
   * task's log per metric name). A point without a step gets its index among that metric's points.
   */
  metric(metrics: Record<string, unknown> | undefined, step?: number | null): void;
  /**
   * Buffers one metric's points at once, as columns (`steps` null or NaN at an index: none given); the same rules as
   * `metric` point by point, and the same order among all points reported. The columns are kept as they are until
   * the points go out: a burst read while the module runs costs no object per point until then.
   */
  metricSeries(name: string, steps: ArrayLike<number> | null, values: ArrayLike<unknown>): void;
  started(handle: unknown): void;
  heartbeat(): void;
  /** A line from the host itself (`[atelier] …`) on stderr; it bypasses the per-attempt cap. */
  hostLine(line: string): void;
  /** Stops taking the executor's reports and sends what is buffered. */
  close(): void;
  /**
   * Resolves once every event handed to the bus so far has been published (or has failed). Before `close`, and
   * after the result, events still waiting to be folded go out first; between the two they wait for the result.
   */
  settled(): Promise<void>;
  /**
   * Publishes the result, retrying a little; false when it could not (the attempt is then left for redelivery).
   * Events still waiting to be folded go in the same message, before it.
   */
  publishResult(outcome: TaskOutcome, durationMs: number, giveUp: () => boolean): Promise<boolean>;
  /** Publishes one event and waits for it, ignoring a failure (a last word after the result). */
  publishNow(body: EventBody): Promise<void>;
}

export const MIN_PROGRESS_INTERVAL_MS = 100; // at most ~10 progress events a second per attempt
// Each execution numbers its events from a block of its own (see SEQ_BLOCK in the protocol).
export { SEQ_BLOCK };
export const RESULT_PUBLISH_TRIES = 5;
/**
 * Metric points travel 2,000 to an event, and wait up to 1 s (or 250,000 points, ~20 MB) to go out together: a
 * training loop's burst is stored after it rather than while it runs, so storing (on an embedded control plane, the
 * same cores and the host's own event loop) does not slow the loop or stamp its exit late. A live chart lags the
 * module by at most that second; every point is still published, in order, before the result.
 */
export const DEFAULT_METRIC_BATCH = { points: 2_000, ms: 1_000, holdPoints: 250_000 };
/**
 * Events wait this long to share one bus message with the ones after them (protocol 2). A no-op attempt's start,
 * progress and result come within well under a millisecond of each other, so they travel as one message (one
 * publish, one ack, one recording pass instead of three); 2 ms is what a start or a first progress can be late by,
 * under the 5 ms the issue sets for startRun → first progress at a subscriber.
 */
export const FOLD_MS = 2;

let lastMs = Number.NaN;
let lastIso = '';
/** An event's `at`: a busy host stamps many events in one millisecond, and formatted each anew. */
function isoAt(ms: number): string {
  if (ms !== lastMs) {
    lastMs = ms;
    lastIso = new Date(ms).toISOString();
  }
  return lastIso;
}

/** This process's random part of every execution id, drawn once: a random draw per execution was ~3% of a busy host's CPU. */
const PROCESS_ID = randomBytes(8).toString('hex');
let executions = 0;
/** An id no other execution has, in this process (its counter) or any other (its random part). */
const nextExecutionId = () => `${PROCESS_ID}${(executions++).toString(36)}`;

const errorMessage = (err: unknown) => (err instanceof Error ? err.message : String(err));

export function createReporter(options: ReporterOptions): Reporter {
  const { bus, task, host, logBatch, maxLogBytes, warn } = options;
  const clock = options.clock ?? systemClock;
  const key = `${task.taskId}:${task.attempt}`;
  // The control plane's number for this execution (protocol 4), else the bus's count of deliveries before it.
  const block = task.execution ?? options.redeliveryCount;
  let seq = block * SEQ_BLOCK;
  const pending = new Set<Promise<unknown>>();
  let publishFailures = 0;
  let closed = false;

  let resulted = false;

  // A copy and six assignments, not `{ ...body, taskId, … }`: spreading bodies of several shapes (started, progress,
  // result…) made V8 take its slow generic path for every event, ~10 µs each (S1's host: 7% of its CPU).
  const makeEvent = (body: EventBody): ExecutorEvent => {
    const event = Object.assign({}, body) as ExecutorEvent; // its base fields set here
    event.taskId = task.taskId;
    event.runId = task.runId;
    event.attempt = task.attempt;
    event.seq = seq++;
    event.at = isoAt(clock.now());
    event.host = host;
    event.attemptKey = task.attemptKey; // absent (undefined, left out of the JSON) where the control plane gave none
    return event;
  };
  // Ids are this execution's own: the bus drops a message whose id it saw in its dedupe window, and two executions
  // of one attempt may number their events alike (a bus that counted a redelivery as a first delivery: the chaos
  // suite saw a task's start and result dropped as repeats of its first host's heartbeats, the task left QUEUED for
  // good). A retried publish of one of this execution's events still carries the same id, and is dropped as a repeat.
  const execution = nextExecutionId();
  const msgIdOf = (event: ExecutorEvent) => `${event.taskId}:${event.attempt}:${event.seq}:${execution}`;
  /** What one bus message may carry: the bus's limit less room for its headers (a message id, JetStream's own). */
  const maxMessageBytes = (bus.maxPayloadBytes?.() ?? DEFAULT_MAX_PAYLOAD_BYTES) - 4096;
  /**
   * One bus message for `events` (in seq order): a single event as itself, several as a bundle named by the first.
   * A bundle past the bus's limit (a folded start, logs and a large result) goes as one message per event instead:
   * a message the bus refuses would be refused again on every retry.
   */
  const send = (events: ExecutorEvent[], lastJson?: string): Promise<void> => {
    if (tracing() && events.some((e) => e.kind === 'progress')) traceHop('host: progress event sent', task.runId);
    if (events.length === 1) return bus.publishEvent(events[0]!, msgIdOf(events[0]!));
    if (bus.publishEvents) {
      // Serialized once: its size decides, and the bus sends these bytes (S1's host spent ~7% of its CPU doing it twice).
      const payload = bundleJson(events, lastJson);
      if (fits(payload, maxMessageBytes)) return bus.publishEvents(events, msgIdOf(events[0]!), payload);
    }
    return Promise.all(events.map((e) => bus.publishEvent(e, msgIdOf(e)))).then(() => undefined);
  };
  // Events are published without waiting for the previous one (the bus keeps publish order per connection);
  // they are awaited together before the result.
  const publishMessage = (events: ExecutorEvent[]) => {
    const p = send(events).catch((err) => {
      if (publishFailures++ === 0) warn(`publishing ${events.map((e) => e.kind).join('+')} event of ${key} failed: ${errorMessage(err)}`);
    });
    pending.add(p);
    void p.finally(() => pending.delete(p));
  };

  // Folding (protocol 2, when the control plane announced it in the claim's answer and the bus can bundle): events
  // wait up to foldMs for the ones after them, and whatever waits when the result comes goes with the result.
  const folds = !!bus.publishEvents && (task.protocol ?? 1) >= 2;
  const foldMs = options.foldMs ?? FOLD_MS;
  let folding: ExecutorEvent[] = [];
  let cancelFoldTimer: (() => void) | undefined;
  const flushFolded = () => {
    cancelFoldTimer?.();
    cancelFoldTimer = undefined;
    if (!folding.length) return;
    const events = folding;
    folding = [];
    publishMessage(events);
  };
  const publish = (body: EventBody) => {
    // Held metric points go first: no other event overtakes them (a heartbeat says nothing of their order).
    if (body.kind !== 'metric' && body.kind !== 'heartbeat') flushMetrics();
    const event = makeEvent(body);
    if (!folds) return publishMessage([event]);
    folding.push(event);
    cancelFoldTimer ??= clock.schedule(flushFolded, foldMs);
  };

  // Logs: batched per stream, capped per attempt.
  const logBuffers: Record<Stream, { lines: string[]; bytes: number }> = {
    stdout: { lines: [], bytes: 0 },
    stderr: { lines: [], bytes: 0 },
  };
  let cancelLogTimer: (() => void) | undefined;
  let logBytes = 0;
  let logTruncated = false;
  /** Bytes of the executor's lines dropped past the cap: said in the log when the attempt's reports end. */
  let droppedBytes = 0;
  const flushStream = (stream: Stream) => {
    const buffer = logBuffers[stream];
    if (buffer.lines.length === 0) return;
    publish({ kind: 'log', stream, lines: buffer.lines });
    logBuffers[stream] = { lines: [], bytes: 0 };
  };
  const flushLogs = () => {
    cancelLogTimer?.();
    cancelLogTimer = undefined;
    flushStream('stdout');
    flushStream('stderr');
  };
  const appendLog = (stream: Stream, line: string) => {
    const buffer = logBuffers[stream];
    buffer.lines.push(line);
    buffer.bytes += Buffer.byteLength(line) + 1;
    if (buffer.bytes >= logBatch.bytes) flushStream(stream);
    else cancelLogTimer ??= clock.schedule(flushLogs, logBatch.ms);
  };

  // Metrics: every point kept, numbered in report order, held and sent in events of many (metric-buffer.ts). Made at
  // the first point: most attempts report none, and its closures and maps were garbage the host collected per attempt.
  let metrics: MetricBuffer | undefined;
  const metricBuffer = () =>
    (metrics ??= createMetricBuffer({
      batch: options.metricBatch ?? DEFAULT_METRIC_BATCH,
      firstPoint: block * SEQ_BLOCK,
      clock,
      publish: (firstPoint, points) => publish({ kind: 'metric', firstPoint, points }),
      note: (line) => appendLog('stderr', line),
    }));
  const flushMetrics = () => metrics?.flush();

  // Progress: coalesced so a chatty module costs at most ~10 events a second; the latest value wins.
  let lastProgressAt = 0;
  let pendingProgress: { fraction: number | null; message: string | null } | undefined;
  let cancelProgressTimer: (() => void) | undefined;
  const flushProgress = () => {
    cancelProgressTimer?.();
    cancelProgressTimer = undefined;
    if (!pendingProgress) return;
    publish({ kind: 'progress', ...pendingProgress });
    pendingProgress = undefined;
    lastProgressAt = clock.now();
  };

  return {
    get open() {
      return !closed;
    },

    log(stream, line) {
      if (closed) return;
      const s: Stream = stream === 'stderr' ? 'stderr' : 'stdout';
      const text = String(line);
      const bytes = Buffer.byteLength(text) + 1;
      if (logTruncated) {
        droppedBytes += bytes;
        return;
      }
      logBytes += bytes;
      if (logBytes > maxLogBytes) {
        logTruncated = true;
        droppedBytes += bytes;
        appendLog('stderr', `[atelier] log output truncated: ${TRUNCATED_WHY(maxLogBytes)}; the bytes dropped are counted when the attempt ends`);
        return;
      }
      appendLog(s, text);
    },

    progress(fraction, message) {
      if (closed) return;
      traceHop('host: progress reported', task.runId);
      const f = typeof fraction === 'number' && Number.isFinite(fraction) ? Math.min(1, Math.max(0, fraction)) : null;
      pendingProgress = { fraction: f, message: message ?? null };
      const wait = lastProgressAt + MIN_PROGRESS_INTERVAL_MS - clock.now();
      if (wait <= 0) flushProgress();
      else cancelProgressTimer ??= clock.schedule(flushProgress, wait);
    },

    metric(values, step) {
      if (!closed) metricBuffer().metric(values, step);
    },

    metricSeries(name, steps, values) {
      if (!closed) metricBuffer().metricSeries(name, steps, values);
    },

    started(handle) {
      traceTaskHop('host: module started', task.runId, task.taskId);
      publish({ kind: 'started', handle: handle ?? null });
    },

    heartbeat() {
      publish({ kind: 'heartbeat' });
    },

    hostLine(line) {
      if (closed) publish({ kind: 'log', stream: 'stderr', lines: [`[atelier] ${line}`] });
      else appendLog('stderr', `[atelier] ${line}`);
    },

    close() {
      if (droppedBytes && !closed)
        appendLog('stderr', `[atelier] log output truncated: ${droppedBytes} bytes dropped (${TRUNCATED_WHY(maxLogBytes)}); ${TRUNCATED_SEE}`);
      closed = true;
      flushMetrics();
      flushProgress();
      flushLogs();
    },

    async settled() {
      // Between close and the result, what waits is kept for the result's message (see publishResult).
      if (!closed || resulted) flushFolded();
      await Promise.all([...pending]);
    },

    async publishResult(outcome, durationMs, giveUp) {
      flushMetrics(); // held points before the result, whatever closed or not
      resulted = true;
      cancelFoldTimer?.();
      cancelFoldTimer = undefined;
      let result = makeEvent({ kind: 'result', outcome, durationMs });
      // Serialized once: its size decides, and the bundle it ends is made of these bytes (see bundleJson).
      let resultJson: string | undefined = JSON.stringify(result);
      // A result the bus cannot carry would be refused on every retry, and the attempt redelivered to end the same
      // way: it fails for good instead, saying why, with the event's own number.
      if (!fits(resultJson, maxMessageBytes)) {
        const bytes = Buffer.byteLength(resultJson);
        resultJson = undefined;
        result = {
          ...result,
          outcome: permanentFailure(
            'result-too-large',
            `the task's result is ${bytes} bytes, over the ${maxMessageBytes} a bus message may carry (nats-server max_payload less room for headers): outputs travel inline, so write a large value as an artifact or a dataset and output its digest (or raise max_payload)`,
          ),
        } as ExecutorEvent;
      }
      const events = [...folding, result];
      folding = [];
      // Earlier messages first: the result must not overtake the logs it concludes.
      if (pending.size) await Promise.all([...pending]);
      const event = events.at(-1) as Extract<ExecutorEvent, { kind: 'result' }>;
      for (let attempt = 1; ; attempt++) {
        try {
          traceTaskHop('host: result sent', task.runId, task.taskId);
          await send(events, resultJson);
          traceTaskHop('host: result published', task.runId, task.taskId);
          return true;
        } catch (err) {
          if (attempt >= RESULT_PUBLISH_TRIES || giveUp()) {
            warn(`publishing the result of ${event.taskId}:${event.attempt} failed (${errorMessage(err)}); leaving it for redelivery`);
            return false;
          }
          await new Promise<void>((resolve) => clock.schedule(resolve, 100 * 2 ** attempt));
        }
      }
    },

    async publishNow(body) {
      flushFolded();
      const event = makeEvent(body);
      await bus.publishEvent(event, msgIdOf(event)).catch(() => undefined);
    },
  };
}
