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

/**
 * One metric's points waiting to go out, as reported at once. A step that is missing (NaN, or no steps at all) is
 * resolved when the points go out, to the point's index among the metric's points: `firstIndex + i`.
 */
interface MetricColumns {
  name: string;
  steps: Float64Array | null;
  values: Float64Array;
  firstIndex: number;
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
      const { name, steps, values, firstIndex, at } = run;
      for (let i = 0; i < values.length; i++) {
        const step = steps ? steps[i]! : Number.NaN;
        batch.push({ name, value: encodeMetricValue(values[i]!), step: Number.isFinite(step) ? Math.trunc(step) : firstIndex + i, at });
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
      const firstIndex = pointsPerName.get(name) ?? 0;
      let columns: MetricColumns;
      if (values instanceof Float64Array && (!steps || steps instanceof Float64Array)) {
        // Numbers all (a packed series, as the host reads it): copied as they are, nothing looked at per point.
        columns = { name, steps: steps ? new Float64Array(steps) : null, values: new Float64Array(values), firstIndex, at: clock.now() };
      } else {
        columns = { name, steps: new Float64Array(values.length), values: new Float64Array(values.length), firstIndex, at: clock.now() };
        let k = 0;
        for (let i = 0; i < values.length; i++) {
          const raw = values[i];
          const value = typeof raw === 'number' ? raw : decodeMetricValue(raw);
          if (value === undefined) {
            drop(name, raw);
            continue;
          }
          const step = steps?.[i];
          // A missing step is the point's index among those kept, as `metric` numbers them.
          columns.steps![k] = typeof step === 'number' && Number.isFinite(step) ? step : firstIndex + k;
          columns.values[k++] = value;
        }
        if (k < values.length) columns = { ...columns, steps: columns.steps!.subarray(0, k), values: columns.values.subarray(0, k) };
      }
      const n = columns.values.length;
      if (n === 0) return;
      pointsPerName.set(name, firstIndex + n);
      if (points.length) {
        waiting.push(points);
        waitingPoints += points.length;
        points = [];
      }
      waiting.push(columns);
      waitingPoints += n;
      waitForMore();
    },

    flush,
  };
}
