// What one attempt reports on the bus: numbers its events, batches its logs, coalesces its progress, folds what
// comes within a few milliseconds into one message, and publishes its result with retries. The attempt lifecycle
// (attempt.ts) hands reports in; this file decides when they go out.
import { randomBytes } from 'node:crypto';
import { SETTLED } from '../bus/members';
import { DEFAULT_MAX_PAYLOAD_BYTES } from '../bus/payload-limit';
import { permanentFailure } from '../outcomes';
import { COMBINED_EVENTS_PROTOCOL, type ExecutorEvent, SEQ_BLOCK, type TaskMessage, type TaskOutcome } from '../protocol';
import { traceHop, traceTaskHop, tracing } from '../trace';
import { BUNDLE_WRAPPER_BYTES, bundleJson, elementsJson, fits, MESSAGE_HEADER_BYTES } from './bundle';
import type { EventCombiner } from './event-combiner';
import { createMetricBuffer, type MetricBuffer } from './metric-buffer';
import { type EventBody, type Reporter, type ReporterClock, type ReporterOptions, type Stream, systemClock } from './reporter-types';
import { CallbackTimer } from './timer-lanes';

export { type EventBody, type Reporter, type ReporterClock, type ReporterOptions, systemClock } from './reporter-types';

const TRUNCATED_WHY = (max: number) => `an attempt's log keeps its first ${max} bytes (ATELIER_MAX_LOG_BYTES)`;
const TRUNCATED_SEE = "write bulk output to a file and log it as an artifact (see the README's ATELIER_MAX_LOG_BYTES)";

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
  return new AttemptReporter(options);
}

interface LogBuffer {
  lines: string[];
  bytes: number;
}

/**
 * The reporter of one attempt. A class, its methods shared by every attempt: ~400 attempts are in flight on a busy host
 * and each outlives a scavenge, so the ~25 closures it was made of were copied and promoted with every attempt
 * (docs/performance.md, session 32). What most attempts never use (log buffers, the metric buffer, the set of
 * publishes in flight) is made when first needed.
 */
class AttemptReporter implements Reporter {
  private readonly bus: ReporterOptions['bus'];
  private readonly task: TaskMessage;
  private readonly host: string;
  private readonly logBatch: { bytes: number; ms: number };
  private readonly maxLogBytes: number;
  private readonly warn: (message: string) => void;
  private readonly clock: ReporterClock;
  private readonly metricBatch: { points: number; ms: number; holdPoints?: number } | undefined;
  /** The control plane's number for this execution (protocol 4), else the bus's count of deliveries before it. */
  private readonly block: number;
  private seq: number;
  /**
   * Ids are this execution's own: the bus drops a message whose id it saw in its dedupe window, and two executions of
   * one attempt may number their events alike (a bus that counted a redelivery as a first delivery: the chaos suite
   * saw a task's start and result dropped as repeats of its first host's heartbeats, the task left QUEUED for good).
   * A retried publish of one of this execution's events still carries the same id, and is dropped as a repeat.
   */
  private readonly execution = nextExecutionId();
  /** What one bus message may carry: the bus's limit less room for its headers (a message id, JetStream's own). */
  private readonly maxMessageBytes: number;
  private pending: Set<Promise<unknown>> | undefined;
  private publishFailures = 0;
  private closed = false;
  private resulted = false;
  /**
   * Folding (protocol 2, when the control plane announced it in the claim's answer and the bus can bundle): events
   * wait up to foldMs for the ones after them, and whatever waits when the result comes goes with the result.
   */
  private readonly folds: boolean;
  private readonly foldMs: number;
  /** The host's combiner (protocol 7, when the control plane announced it): this attempt's messages may share a run's. */
  private readonly combiner: EventCombiner | undefined;
  private folding: ExecutorEvent[] = [];
  private cancelFoldTimer: (() => void) | undefined;
  /** The fold's wait on the host's timer lanes (ReporterClock.lanes), made at the first fold. */
  private foldWait: CallbackTimer | undefined;
  // Logs: batched per stream, capped per attempt.
  private stdout: LogBuffer | undefined;
  private stderr: LogBuffer | undefined;
  private cancelLogTimer: (() => void) | undefined;
  private logBytes = 0;
  private logTruncated = false;
  /** Bytes of the executor's lines dropped past the cap: said in the log when the attempt's reports end. */
  private droppedBytes = 0;
  /** Every point kept, numbered in report order, held and sent in events of many (metric-buffer.ts); made at the first. */
  private metrics: MetricBuffer | undefined;
  // Progress: coalesced so a chatty module costs at most ~10 events a second; the latest value wins.
  private lastProgressAt = 0;
  private pendingProgress: { fraction: number | null; message: string | null } | undefined;
  private cancelProgressTimer: (() => void) | undefined;

  constructor(options: ReporterOptions) {
    this.bus = options.bus;
    this.task = options.task;
    this.host = options.host;
    this.logBatch = options.logBatch;
    this.maxLogBytes = options.maxLogBytes;
    this.warn = options.warn;
    this.clock = options.clock ?? systemClock;
    this.metricBatch = options.metricBatch;
    this.block = options.task.execution ?? options.redeliveryCount;
    this.seq = this.block * SEQ_BLOCK;
    this.maxMessageBytes = (this.bus.maxPayloadBytes?.() ?? DEFAULT_MAX_PAYLOAD_BYTES) - MESSAGE_HEADER_BYTES;
    this.folds = !!this.bus.publishEvents && (options.task.protocol ?? 1) >= 2;
    this.foldMs = options.foldMs ?? FOLD_MS;
    this.combiner = this.folds && (options.task.protocol ?? 1) >= COMBINED_EVENTS_PROTOCOL ? options.combiner : undefined;
  }

  get open() {
    return !this.closed;
  }

  // A copy and seven assignments, not `{ ...body, taskId, … }`: spreading bodies of several shapes (started, progress,
  // result…) made V8 take its slow generic path for every event, ~10 µs each (S1's host: 7% of its CPU).
  private makeEvent(body: EventBody): ExecutorEvent {
    const { task } = this;
    const event = Object.assign({}, body) as ExecutorEvent; // its base fields set here
    event.taskId = task.taskId;
    event.runId = task.runId;
    event.attempt = task.attempt;
    event.seq = this.seq++;
    event.at = isoAt(this.clock.now());
    event.host = this.host;
    event.attemptKey = task.attemptKey; // absent (undefined, left out of the JSON) where the control plane gave none
    return event;
  }

  private msgIdOf(event: ExecutorEvent) {
    return `${event.taskId}:${event.attempt}:${event.seq}:${this.execution}`;
  }

  /**
   * The publish of one bus message for `events` (in seq order), made once and called again on a retry: a single event
   * as itself, several as a bundle named by the first; from protocol 7 handed to the host's combiner, which may send
   * it with other attempts' of the run. A bundle past the bus's limit (a folded start, logs and a large result) goes
   * as one message per event instead: a message the bus refuses would be refused again on every retry.
   */
  private sender(events: ExecutorEvent[], lastJson?: string): () => Promise<void> {
    const { bus, combiner } = this;
    if (tracing() && events.some((e) => e.kind === 'progress')) traceHop('host: progress event sent', this.task.runId);
    const id = this.msgIdOf(events[0]!);
    if (events.length === 1 && !combiner) return () => bus.publishEvent(events[0]!, id);
    // Serialized once: its size decides, and the bus sends these bytes (S1's host spent ~7% of its CPU doing it twice).
    if (combiner) {
      // Its events' JSON without a bundle's wrapper, which the combiner adds once for the whole message it sends.
      const elements = elementsJson(events, lastJson);
      if (fits(elements, this.maxMessageBytes - (events.length === 1 ? 0 : BUNDLE_WRAPPER_BYTES))) {
        const message = combiner.add(this.task.runId, { events, elements, id });
        return () => message.send();
      }
    } else if (bus.publishEvents) {
      const json = bundleJson(events, lastJson);
      if (fits(json, this.maxMessageBytes)) return () => bus.publishEvents!(events, id, json);
    }
    combiner?.flush(); // what waits there goes first
    return () => Promise.all(events.map((e) => bus.publishEvent(e, this.msgIdOf(e)))).then(() => undefined);
  }

  /** Published without waiting for the previous one (the bus keeps publish order per connection); awaited together before the result. */
  private publishMessage(events: ExecutorEvent[]) {
    const p = this.sender(events)().catch((err) => {
      if (this.publishFailures++ === 0)
        this.warn(`publishing ${events.map((e) => e.kind).join('+')} event of ${this.task.taskId}:${this.task.attempt} failed: ${errorMessage(err)}`);
    });
    const pending = (this.pending ??= new Set());
    pending.add(p);
    void p.finally(() => pending.delete(p));
  }

  private armFold() {
    const { lanes } = this.clock;
    if (!lanes || !Number.isInteger(this.foldMs) || this.foldMs < 1) {
      this.cancelFoldTimer ??= this.clock.schedule(() => this.flushFolded(), this.foldMs);
      return;
    }
    const wait = (this.foldWait ??= new CallbackTimer(() => this.flushFolded()));
    if (!wait.lane) lanes.arm(wait, this.foldMs);
  }

  private disarmFold() {
    if (this.foldWait) this.clock.lanes?.disarm(this.foldWait);
    this.cancelFoldTimer?.();
    this.cancelFoldTimer = undefined;
  }

  private flushFolded() {
    this.disarmFold();
    if (!this.folding.length) return;
    const events = this.folding;
    this.folding = [];
    this.publishMessage(events);
  }

  private publish(body: EventBody) {
    // Held metric points go first: no other event overtakes them (a heartbeat says nothing of their order).
    if (body.kind !== 'metric' && body.kind !== 'heartbeat') this.metrics?.flush();
    const event = this.makeEvent(body);
    if (!this.folds) return this.publishMessage([event]);
    this.folding.push(event);
    this.armFold();
  }

  private flushStream(stream: Stream) {
    const buffer = this[stream];
    if (!buffer?.lines.length) return;
    this[stream] = undefined;
    this.publish({ kind: 'log', stream, lines: buffer.lines });
  }

  private flushLogs() {
    this.cancelLogTimer?.();
    this.cancelLogTimer = undefined;
    this.flushStream('stdout');
    this.flushStream('stderr');
  }

  private appendLog(stream: Stream, line: string) {
    const buffer = (this[stream] ??= { lines: [], bytes: 0 });
    buffer.lines.push(line);
    buffer.bytes += Buffer.byteLength(line) + 1;
    if (buffer.bytes >= this.logBatch.bytes) this.flushStream(stream);
    else this.cancelLogTimer ??= this.clock.schedule(() => this.flushLogs(), this.logBatch.ms);
  }

  private metricBuffer(): MetricBuffer {
    return (this.metrics ??= createMetricBuffer({
      batch: this.metricBatch ?? DEFAULT_METRIC_BATCH,
      firstPoint: this.block * SEQ_BLOCK,
      clock: this.clock,
      publish: (firstPoint, points) => this.publish({ kind: 'metric', firstPoint, points }),
      note: (line) => this.appendLog('stderr', line),
    }));
  }

  private flushProgress() {
    this.cancelProgressTimer?.();
    this.cancelProgressTimer = undefined;
    if (!this.pendingProgress) return;
    this.publish({ kind: 'progress', ...this.pendingProgress });
    this.pendingProgress = undefined;
    this.lastProgressAt = this.clock.now();
  }

  log(stream: Stream, line: string) {
    if (this.closed) return;
    const s: Stream = stream === 'stderr' ? 'stderr' : 'stdout';
    const text = String(line);
    const bytes = Buffer.byteLength(text) + 1;
    if (this.logTruncated) {
      this.droppedBytes += bytes;
      return;
    }
    this.logBytes += bytes;
    if (this.logBytes > this.maxLogBytes) {
      this.logTruncated = true;
      this.droppedBytes += bytes;
      this.appendLog('stderr', `[atelier] log output truncated: ${TRUNCATED_WHY(this.maxLogBytes)}; the bytes dropped are counted when the attempt ends`);
      return;
    }
    this.appendLog(s, text);
  }

  progress(fraction: number | null | undefined, message?: string | null) {
    if (this.closed) return;
    traceHop('host: progress reported', this.task.runId);
    const f = typeof fraction === 'number' && Number.isFinite(fraction) ? Math.min(1, Math.max(0, fraction)) : null;
    this.pendingProgress = { fraction: f, message: message ?? null };
    const wait = this.lastProgressAt + MIN_PROGRESS_INTERVAL_MS - this.clock.now();
    if (wait <= 0) this.flushProgress();
    else this.cancelProgressTimer ??= this.clock.schedule(() => this.flushProgress(), wait);
  }

  metric(values: Record<string, unknown> | undefined, step?: number | null) {
    if (!this.closed) this.metricBuffer().metric(values, step);
  }

  metricSeries(name: string, steps: ArrayLike<number> | null, values: ArrayLike<unknown>) {
    if (!this.closed) this.metricBuffer().metricSeries(name, steps, values);
  }

  started(handle: unknown) {
    traceTaskHop('host: module started', this.task.runId, this.task.taskId);
    this.publish({ kind: 'started', handle: handle ?? null });
  }

  heartbeat() {
    this.publish({ kind: 'heartbeat' });
  }

  hostLine(line: string) {
    if (this.closed) this.publish({ kind: 'log', stream: 'stderr', lines: [`[atelier] ${line}`] });
    else this.appendLog('stderr', `[atelier] ${line}`);
  }

  close() {
    if (this.droppedBytes && !this.closed)
      this.appendLog('stderr', `[atelier] log output truncated: ${this.droppedBytes} bytes dropped (${TRUNCATED_WHY(this.maxLogBytes)}); ${TRUNCATED_SEE}`);
    this.closed = true;
    this.metrics?.flush();
    this.flushProgress();
    this.flushLogs();
  }

  /** Not an async function: with nothing in flight (a no-op attempt, twice each) it answers the one resolved promise. */
  settled(): Promise<void> {
    // Between close and the result, what waits is kept for the result's message (see publishResult).
    if (!this.closed || this.resulted) this.flushFolded();
    if (!this.pending?.size) return SETTLED;
    return Promise.all([...this.pending]).then(() => undefined);
  }

  async publishResult(outcome: TaskOutcome, durationMs: number, giveUp: () => boolean) {
    this.metrics?.flush(); // held points before the result, whatever closed or not
    this.resulted = true;
    this.disarmFold();
    let result = this.makeEvent({ kind: 'result', outcome, durationMs });
    // Serialized once: its size decides, and the bundle it ends is made of these bytes (see bundleJson).
    let resultJson: string | undefined = JSON.stringify(result);
    // A result the bus cannot carry would be refused on every retry, and the attempt redelivered to end the same
    // way: it fails for good instead, saying why, with the event's own number.
    if (!fits(resultJson, this.maxMessageBytes)) {
      const bytes = Buffer.byteLength(resultJson);
      resultJson = undefined;
      result = {
        ...result,
        outcome: permanentFailure(
          'result-too-large',
          `the task's result is ${bytes} bytes, over the ${this.maxMessageBytes} a bus message may carry (nats-server max_payload less room for headers): outputs travel inline, so write a large value as an artifact or a dataset and output its digest (or raise max_payload)`,
        ),
      } as ExecutorEvent;
    }
    const events = this.folding;
    events.push(result);
    this.folding = [];
    // Earlier messages first: the result must not overtake the logs it concludes.
    if (this.pending?.size) await Promise.all([...this.pending]);
    const { runId, taskId } = this.task;
    // One message, made once: a retry sends it as it was, the same bytes under the same id (see EventCombiner).
    const send = this.sender(events, resultJson);
    for (let attempt = 1; ; attempt++) {
      try {
        traceTaskHop('host: result sent', runId, taskId);
        await send();
        traceTaskHop('host: result published', runId, taskId);
        return true;
      } catch (err) {
        if (attempt >= RESULT_PUBLISH_TRIES || giveUp()) {
          this.warn(`publishing the result of ${result.taskId}:${result.attempt} failed (${errorMessage(err)}); leaving it for redelivery`);
          return false;
        }
        await new Promise<void>((resolve) => this.clock.schedule(resolve, 100 * 2 ** attempt));
      }
    }
  }

  async publishNow(body: EventBody) {
    this.flushFolded();
    await this.sender([this.makeEvent(body)])().catch(() => undefined);
  }
}
