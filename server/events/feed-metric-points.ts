// A metric event's points in the stored feed: the row keeps where they are (the task, attempt and seq range of
// metric_blocks, written in the same transaction as the event) instead of a second copy as JSONB, and a read of the
// feed takes them back from there. Copying every point into run_events cost 0.6–0.9 s per 100,000 points stored
// (bench/tracking-metrics.ts); live subscribers get the points from the published event, as before.
import { sql } from 'drizzle-orm';
import { encodeMetricValue } from '../../plugins/metric-values';
import { type Db, queryRows } from '../db/client';
import type { FeedEvent, FeedEventBody } from './feed';

type MetricEvent = Extract<FeedEventBody, { kind: 'task-metric' }>;
type MetricPoint = MetricEvent['points'][number];

/** A metric event as run_events stores it: its points are those of its task and attempt with a seq in `pointSeqs`. */
type StoredMetricEvent = Omit<MetricEvent, 'points'> & { pointSeqs: [number, number] };

/**
 * The form an event is stored in: a metric event's points replaced by their seq range. Every point of a metric event
 * is stored with it (the recorder and the logging routes publish only points they stored), and a (task, attempt, seq)
 * holds one point, so the range reads back exactly them.
 */
export function storedForm(event: FeedEventBody): FeedEventBody | StoredMetricEvent {
  if (event.kind !== 'task-metric' || !event.points.length) return event;
  const { points, ...rest } = event;
  let lo = points[0]!.seq;
  let hi = lo;
  for (const p of points) {
    if (p.seq < lo) lo = p.seq;
    if (p.seq > hi) hi = p.seq;
  }
  return { ...rest, pointSeqs: [lo, hi] };
}

/** Gives back their points, read from metric_blocks in seq order, to the metric events among `events` stored as references. */
export async function withStoredPoints(db: Db, events: FeedEvent[]): Promise<FeedEvent[]> {
  const refs = events.filter((e): e is FeedEvent & StoredMetricEvent => e.kind === 'task-metric' && Array.isArray((e as Partial<StoredMetricEvent>).pointSeqs));
  if (!refs.length) return events;
  const list = (f: (e: StoredMetricEvent) => string | number) => `{${refs.map(f).join(',')}}`;
  const rows = await queryRows<{ i: string | number; seq: string | number; name: string; step: string | number; value: string }>(
    db,
    sql`select v.i, u.seq, b.name, u.step, u.value::text as value
      from unnest(${list((e) => e.taskId)}::uuid[], ${list((e) => e.attempt)}::int[], ${list((e) => e.pointSeqs[0])}::bigint[],
          ${list((e) => e.pointSeqs[1])}::bigint[]) with ordinality as v(task_id, attempt, lo, hi, i)
        join metric_blocks b on b.task_id = v.task_id and b.attempt = v.attempt and b.seq_hi >= v.lo and b.seq_lo <= v.hi
        cross join lateral unnest(b.seqs, b.steps, b.vals) as u(seq, step, value)
      where u.seq between v.lo and v.hi
      order by v.i, u.seq`,
  );
  const points = refs.map((): MetricPoint[] => []);
  // float8's text (NaN, Infinity, -Infinity, or the shortest exact form of a number) read as a number, then as on the wire.
  for (const r of rows) points[Number(r.i) - 1]!.push({ name: r.name, value: encodeMetricValue(Number(r.value)), step: Number(r.step), seq: Number(r.seq) });
  const found = new Map(refs.map((e, i) => [e, points[i]!]));
  return events.map((e) => {
    const got = found.get(e as FeedEvent & StoredMetricEvent);
    if (!got) return e;
    const { pointSeqs: _, ...rest } = e as FeedEvent & StoredMetricEvent;
    return { ...rest, points: got } as FeedEvent;
  });
}
