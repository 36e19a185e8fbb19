// What an attempt's reporter is to the attempt lifecycle (attempt.ts): the calls it takes, the options it is made
// with, and the clock it schedules by. The reporter itself is reporter.ts.
import type { Bus } from '../bus/types';
import type { ExecutorEvent, TaskMessage, TaskOutcome } from '../protocol';
import type { EventCombiner } from './event-combiner';
import { hostTimers, type TimerLanes } from './timer-lanes';

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
/** An event as its producer writes it; the reporter adds the attempt's identity, sequence number and time. */
export type EventBody = DistributiveOmit<ExecutorEvent, 'taskId' | 'runId' | 'attempt' | 'seq' | 'at' | 'host'>;

export type Stream = 'stdout' | 'stderr';

/** Time as the reporter sees it: injectable so tests step through batching and coalescing without waiting. */
export interface ReporterClock {
  now(): number;
  /** Runs `fn` after `ms`; the returned function cancels it. */
  schedule(fn: () => void, ms: number): () => void;
  /**
   * The host's timer lanes, where the clock is the system's: the wait every attempt makes for its fold (a few ms) is a
   * link there instead of a timer and two closures of its own, made and cleared within a millisecond.
   */
  lanes?: TimerLanes;
}

export const systemClock: ReporterClock = {
  now: () => Date.now(),
  schedule(fn, ms) {
    const timer = setTimeout(fn, ms);
    return () => clearTimeout(timer);
  },
  lanes: hostTimers,
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
  /**
   * The host's combiner of event messages (event-combiner.ts): used for a control plane at protocol 7 or later, whose
   * answer to the claim said so (`task.protocol`); an older one gets each attempt's messages alone.
   */
  combiner?: EventCombiner;
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
