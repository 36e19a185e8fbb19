// The metric points a metric event carries, decoded for storage. Numbering: the event's own `firstPoint` on (the
// reporter's per-delivery counter); an event from a host older than batching (`{metrics, step}`) numbers its points
// from its own seq × LEGACY_POINTS_PER_EVENT, so a redelivery of it is recognised as well.
import { decodeMetricValue } from '../../plugins/metric-values';
import type { ExecutorEvent } from '../../plugins/protocol';
import type { MetricPointInput } from './metrics';

const LEGACY_POINTS_PER_EVENT = 1024;

type LegacyMetricEvent = { metrics?: Record<string, unknown>; step?: number | null };

/** The points of a metric event (none for any other kind); values that are no number are dropped with a warning. */
export function pointsOf(e: ExecutorEvent): MetricPointInput[] {
  if (e.kind !== 'metric') return [];
  const base = { taskId: e.taskId, runId: e.runId, attempt: e.attempt };
  const out: MetricPointInput[] = [];
  let dropped = 0;
  if (Array.isArray(e.points)) {
    const eventAt = new Date(e.at);
    const { taskId, runId, attempt } = e;
    for (let i = 0; i < e.points.length; i++) {
      const p = e.points[i]!;
      const value = decodeMetricValue(p.value);
      if (value === undefined || typeof p.name !== 'string' || !Number.isSafeInteger(p.step)) dropped++;
      else out.push({ taskId, runId, attempt, seq: e.firstPoint + i, name: p.name, step: p.step, value, at: Number.isFinite(p.at) ? new Date(p.at) : eventAt });
    }
  } else {
    const legacy = e as unknown as LegacyMetricEvent;
    Object.entries(legacy.metrics ?? {}).forEach(([name, raw], i) => {
      const value = decodeMetricValue(raw);
      if (value === undefined || i >= LEGACY_POINTS_PER_EVENT) dropped++;
      else out.push({ ...base, seq: e.seq * LEGACY_POINTS_PER_EVENT + i, name, step: Math.trunc(legacy.step ?? 0), value, at: new Date(e.at) });
    });
  }
  if (dropped) console.warn(`[atelier] dropped ${dropped} metric point(s) of task ${e.taskId} attempt ${e.attempt} (event ${e.seq}): not numbers`);
  return out;
}
