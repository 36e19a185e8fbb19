// One attempt's metric points on their way out: every point kept, numbered in report order, held and sent in
// events of many (see DEFAULT_METRIC_BATCH in reporter.ts). Points wait as runs of single points (from `metric`) and
// as one metric's columns (from `metricSeries`), in report order; they become the events' point objects only when
// they go out, after a burst rather than while the module runs (a packed batch read as columns costs no object per
// point on the host's event loop, which also stamps the module's exit).
import { decodeMetricValue, encodeMetricValue } from '../metric-values';
import type { MetricPointReport } from '../protocol';
import type { ReporterClock } from './reporter';

export interface MetricBufferOptions {
  /** Points per event; `ms` the longest a point waits; `holdPoints` waiting send them at once. */
  batch: { points: number; ms: number; holdPoints?: number };
  /** The number of the first point (the execution's block: see SEQ_BLOCK). */
  firstPoint: number;
  clock: ReporterClock;
  /** Sends one event's points, numbered from `firstPoint`. */
  publish(firstPoint: number, points: MetricPointReport[]): void;
  /** A line for the task's log (a metric dropped, once per name). */
  note(line: string): void;
}

export interface MetricBuffer {
  /** One point per metric; a point without a step gets its index among that metric's points. */
  metric(metrics: Record<string, unknown> | undefined, step?: number | null): void;
  /** One metric's points at once (`steps` null, or NaN at an index: none given); the same rules as `metric`. */
  metricSeries(name: string, steps: ArrayLike<number> | null, values: ArrayLike<unknown>): void;
  /** Sends every waiting point now. */
  flush(): void;
}

/** One metric's points waiting to go out, as reported at once (steps resolved: a missing one is the point's index). */
interface MetricColumns {
  name: string;
  steps: Float64Array;
  values: Float64Array;
  at: number;
}

export function createMetricBuffer(options: MetricBufferOptions): MetricBuffer {
  const { batch: metricBatch, clock, note } = options;
  let nextPoint = options.firstPoint;
  let points: MetricPointReport[] = [];
  let waiting: (MetricPointReport[] | MetricColumns)[] = [];
  let waitingPoints = 0;
  const holdPoints = metricBatch.holdPoints ?? metricBatch.points;
  let cancelTimer: (() => void) | undefined;
  const pointsPerName = new Map<string, number>();
  const warnedNames = new Set<string>();

  function flush() {
    cancelTimer?.();
    cancelTimer = undefined;
    if (points.length) waiting.push(points);
    const runs = waiting;
    points = [];
    waiting = [];
    waitingPoints = 0;
    let batch: MetricPointReport[] = [];
    const full = () => {
      options.publish(nextPoint, batch);
      nextPoint += batch.length;
      batch = [];
    };
    for (const run of runs) {
      if (Array.isArray(run)) {
        for (const point of run) {
          batch.push(point);
          if (batch.length === metricBatch.points) full();
        }
        continue;
      }
      const { name, steps, values, at } = run;
      for (let i = 0; i < values.length; i++) {
        batch.push({ name, value: encodeMetricValue(values[i]!), step: steps[i]!, at });
        if (batch.length === metricBatch.points) full();
      }
    }
    if (batch.length) full();
  }
  const waitForMore = () => {
    if (waitingPoints + points.length >= holdPoints) flush();
    else if (waitingPoints || points.length) cancelTimer ??= clock.schedule(flush, metricBatch.ms);
  };
  const drop = (name: string, raw: unknown) => {
    if (!warnedNames.has(name)) note(`[atelier] metric "${name}" dropped: ${JSON.stringify(raw)?.slice(0, 80)} is not a number (NaN and ±Infinity are kept)`);
    warnedNames.add(name);
  };

  return {
    metric(metrics, step) {
      const at = clock.now();
      for (const [name, raw] of Object.entries(metrics ?? {})) {
        const value = decodeMetricValue(raw);
        if (value === undefined) {
          drop(name, raw);
          continue;
        }
        const index = pointsPerName.get(name) ?? 0;
        pointsPerName.set(name, index + 1);
        points.push({ name, value: encodeMetricValue(value), step: typeof step === 'number' && Number.isFinite(step) ? Math.trunc(step) : index, at });
      }
      if (points.length >= metricBatch.points) {
        waiting.push(points);
        waitingPoints += points.length;
        points = [];
      }
      waitForMore();
    },

    metricSeries(name, steps, values) {
      if (steps && steps.length !== values.length) {
        note(`[atelier] metric series "${name}" dropped: ${steps.length} steps for ${values.length} values`);
        return;
      }
      const n = values.length;
      const kept = { name, steps: new Float64Array(n), values: new Float64Array(n), at: clock.now() };
      let index = pointsPerName.get(name) ?? 0;
      let k = 0;
      for (let i = 0; i < n; i++) {
        const raw = values[i];
        const value = typeof raw === 'number' ? raw : decodeMetricValue(raw);
        if (value === undefined) {
          drop(name, raw);
          continue;
        }
        const step = steps ? steps[i] : Number.NaN;
        kept.steps[k] = typeof step === 'number' && Number.isFinite(step) ? Math.trunc(step) : index;
        kept.values[k++] = value;
        index++;
      }
      if (k === 0) return;
      pointsPerName.set(name, index);
      if (points.length) {
        waiting.push(points);
        waitingPoints += points.length;
        points = [];
      }
      waiting.push(k === n ? kept : { name, steps: kept.steps.subarray(0, k), values: kept.values.subarray(0, k), at: kept.at });
      waitingPoints += k;
      waitForMore();
    },

    flush,
  };
}
