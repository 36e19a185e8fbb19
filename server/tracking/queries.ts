// Reads of stored metrics for the API: a task's latest values, a series downsampled in SQL, and a run's per-task
// summaries. A task served from cache answers with the points of the task it reused (its source), marked so.
import { and, eq, inArray, type SQL, sql } from 'drizzle-orm';
import { encodeMetricValue, type WireMetricValue } from '../../plugins/metric-values';
import type { Db } from '../db/client';
import { queryRows } from '../db/client';
import { tasks } from '../db/tables/runs';
import { metricSummaries } from '../db/tables/tracking';
import { badInput } from '../errors';
import { floats, ROLLUP_SHIFTS, rollupShiftFor } from './rollups';

export type LatestMetrics = Record<string, { value: WireMetricValue; step: number | null }>;

/**
 * Where a task's metrics live: itself, or the task whose result it is (a cache hit's source, the task a rerun reused,
 * followed to the one that ran: a rerun may reuse a task that was itself served from cache or reused).
 */
export async function sourcesOf(db: Db, taskIds: string[]): Promise<Map<string, { id: string; attempt: number; fromCache: boolean }>> {
  type Row = { id: string; attempt: number; from: string | null };
  const read = async (ids: string[]): Promise<Row[]> =>
    (
      await db
        .select({ id: tasks.id, attempt: tasks.attempt, cached: tasks.cacheSourceTaskId, reused: tasks.reusedFromTaskId })
        .from(tasks)
        .where(inArray(tasks.id, ids))
    ).map((r) => ({ id: r.id, attempt: r.attempt, from: r.cached ?? r.reused }));
  const first = await read(taskIds);
  const known = new Map(first.map((r) => [r.id, r]));
  const unread = () => [...new Set([...known.values()].flatMap((r) => (r.from && !known.has(r.from) ? [r.from] : [])))];
  for (let hop = 0, ids = unread(); ids.length && hop < MAX_HOPS; hop++, ids = unread()) for (const r of await read(ids)) known.set(r.id, r);
  const origin = (task: Row) => {
    let at = task;
    for (let hop = 0; at.from && hop < MAX_HOPS; hop++) {
      const next = known.get(at.from);
      if (!next) return { id: at.from, attempt: 1 }; // its source is gone (retention): what is left of it is under its id
      at = next;
    }
    return at;
  };
  return new Map(
    first.map((r) => {
      const o = origin(r);
      return [r.id, { id: o.id, attempt: o.attempt, fromCache: o.id !== r.id }];
    }),
  );
}

/** Reuse upon reuse: a chain longer than this is cut there (each hop is a rerun of a rerun). */
const MAX_HOPS = 16;

/** The latest value of each metric the current attempt of each task (or its cache source) reported, with its step. */
export async function latestMetricsOf(db: Db, taskIds: string[]): Promise<Map<string, LatestMetrics>> {
  const sources = await sourcesOf(db, taskIds);
  const ids = [...new Set([...sources.values()].map((s) => s.id))];
  const rows = ids.length ? await db.select().from(metricSummaries).where(inArray(metricSummaries.taskId, ids)) : [];
  const out = new Map<string, LatestMetrics>();
  for (const [taskId, source] of sources) {
    const entry: LatestMetrics = {};
    for (const r of rows)
      if (r.taskId === source.id && r.lastAttempt === source.attempt) entry[r.name] = { value: encodeMetricValue(r.last), step: r.lastStep };
    out.set(taskId, entry);
  }
  return out;
}

export interface HistoryPoint {
  seq: number;
  step: number;
  value: number;
}
export interface MetricHistory {
  name: string;
  /** The attempt the points come from (of the source task when served from cache); null when none reported. */
  attempt: number | null;
  fromCache: boolean;
  sourceTaskId: string | null;
  /** How many points the series holds; `points` has at most maxPoints of them. */
  total: number;
  points: HistoryPoint[];
}

export const MAX_HISTORY_POINTS = 10_000;

/**
 * One metric of one task as at most `maxPoints` points, downsampled in SQL: the series is cut into equal buckets
 * of points (by their order), and each bucket keeps its lowest and highest number (NaN never is one; a bucket of
 * NaN alone keeps its first point), plus the series' first and last point. `attempt` defaults to the latest one
 * that reported this metric. A long series is read from its rollups (rollups.ts) with the same rules per bucket.
 */
export async function metricHistory(db: Db, taskId: string, name: string, maxPoints: number, attempt?: number | null): Promise<MetricHistory> {
  if (!Number.isInteger(maxPoints) || maxPoints < 2 || maxPoints > MAX_HISTORY_POINTS)
    throw badInput(`maxPoints must be an integer from 2 to ${MAX_HISTORY_POINTS}; got ${maxPoints}.`, [{ path: 'maxPoints', message: 'out of range' }]);
  const source = (await sourcesOf(db, [taskId])).get(taskId);
  const base = { name, fromCache: source?.fromCache ?? false, sourceTaskId: source?.fromCache ? source.id : null };
  if (!source) return { ...base, attempt: null, total: 0, points: [] };
  const from = source.id;
  const chosen =
    attempt ??
    (
      await queryRows<{ attempt: number }>(
        db,
        sql`select attempt from metric_blocks where task_id = ${from}::uuid and name = ${name} order by attempt desc limit 1`,
      )
    )[0]?.attempt;
  if (chosen === undefined) return { ...base, attempt: null, total: 0, points: [] };
  const series = sql`task_id = ${from}::uuid and name = ${name} and attempt = ${chosen}::int`;
  const buckets = Math.floor((maxPoints - 2) / 2);
  const fromRollups = await historyFromRollups(db, series, buckets);
  if (fromRollups) return { ...base, attempt: chosen, ...fromRollups };
  const rows = await queryRows<{ seq: string | number; step: string | number; value: number | string; total: string | number }>(
    db,
    sql`
    with s as (
      select seq, value, (row_number() over (order by seq) - 1) * ${buckets}::bigint / count(*) over () as b, count(*) over () as n
      from metric_points where ${series}
    ), b as (
      select min(array[value, seq::float8]) filter (where value <> 'NaN') as lo,
             max(array[value, seq::float8]) filter (where value <> 'NaN') as hi,
             min(seq) as first, max(seq) as last, max(n) as n
      from s group by b
    ), picked as (
      select (lo[2])::bigint as seq from b where lo is not null
      union select (hi[2])::bigint from b where hi is not null
      union select first from b where lo is null
      union select min(first) from b
      union select max(last) from b
    )
    select p.seq, p.step, p.value, (select max(n) from b) as total
    from metric_points p join picked using (seq)
    where p.task_id = ${from}::uuid and p.name = ${name} and p.attempt = ${chosen}::int
    order by p.seq`,
  );
  const points = rows.map((r) => ({ seq: Number(r.seq), step: Number(r.step), value: Number(r.value) }));
  return { ...base, attempt: chosen, total: Number(rows[0]?.total ?? 0), points };
}

/**
 * The same downsampling from the series' seq rollups, where a level has buckets fine enough (at least `buckets` of
 * them): the rollup buckets, in order, are grouped into `buckets` groups of about equal point counts, and each group
 * keeps its lowest and highest number (a group of NaN alone its first point), plus the series' first and last point.
 * Null where the series is short enough to read its points (or has no rollups).
 */
async function historyFromRollups(db: Db, series: SQL, buckets: number): Promise<{ total: number; points: HistoryPoint[] } | null> {
  const coarsest = ROLLUP_SHIFTS.seq[ROLLUP_SHIFTS.seq.length - 1]!;
  const [sum] = await queryRows<{ total: string | number | null }>(
    db,
    sql`select sum(total) as total from metric_rollup_pages where ${series} and axis = 'seq' and shift = ${coarsest}::smallint`,
  );
  const total = Number(sum?.total ?? 0);
  const shift = total ? rollupShiftFor('seq', total, buckets) : null;
  if (shift === null) return null;
  // Groups of rollup buckets by the points before them; per group its lowest and highest number (lo/hi = [value, seq,
  // step]: min and max find the lowest and highest value, then the first and last seq) and its first point
  // (first/last = [seq, seq, step, value]); then the series' first and last point, as rows with no lo. The level's
  // pages (a few dozen rows for 1,000,000 points) are unnested into their buckets here, in bucket order.
  const rows = await queryRows<{ lo: unknown; hi: unknown; first: unknown }>(
    db,
    sql`with c as (
      select u.*
      from metric_rollup_pages p cross join lateral unnest(p.buckets, p.ns, p.lo_value, p.lo_seq, p.lo_step, p.hi_value, p.hi_seq, p.hi_step,
        p.first_seq, p.first_step, p.first_value, p.last_seq, p.last_step, p.last_value) as u(bucket, n, lo_v, lo_s, lo_t, hi_v, hi_s, hi_t, f_s, f_t, f_v, l_s, l_t, l_v)
      where ${series} and p.axis = 'seq' and p.shift = ${shift}::smallint
    ), r as (
      select case when lo_v is null then null else array[lo_v, lo_s, lo_t] end as lo, case when hi_v is null then null else array[hi_v, hi_s, hi_t] end as hi,
        array[f_s, f_s, f_t, f_v] as first, array[l_s, l_s, l_t, l_v] as last, sum(n) over (order by bucket) - n as before
      from c
    ), g as (
      select min(lo) as lo, max(hi) as hi, min(first) as first from r group by floor(before * ${buckets}::bigint / ${total}::bigint)
    )
    select lo, hi, first from g
    union all select null, null, (select min(first) from r)
    union all select null, null, (select max(last) from r)`,
  );
  const picked = new Map<number, HistoryPoint>();
  const pick = (seq: number, step: number, value: number) => picked.set(seq, { seq, step, value });
  for (const r of rows) {
    const [lo, hi, first] = [floats(r.lo), floats(r.hi), floats(r.first)];
    if (lo && hi) {
      pick(lo[1]!, lo[2]!, lo[0]!);
      pick(hi[1]!, hi[2]!, hi[0]!);
    } else if (first) pick(first[1]!, first[2]!, first[3]!);
  }
  return { total, points: [...picked.values()].sort((a, b) => a.seq - b.seq) };
}

/** What a metric's summary says: how many points, the last, and the extremes with their steps (NaN is never one). */
export interface MetricCell {
  count: number;
  last: number;
  lastStep: number;
  min: number | null;
  minStep: number | null;
  max: number | null;
  maxStep: number | null;
}

export interface TaskMetricSummary extends MetricCell {
  taskId: string;
  node: string;
  name: string;
  fromCache: boolean;
  sourceTaskId: string | null;
}

/** Each task's summary of each metric in a run (a cached task's from its source), by node then name. */
export async function runMetricsOf(db: Db, runId: string): Promise<TaskMetricSummary[]> {
  const runTasks = await db.select({ id: tasks.id, node: tasks.node }).from(tasks).where(eq(tasks.runId, runId));
  if (!runTasks.length) return [];
  const sources = await sourcesOf(
    db,
    runTasks.map((t) => t.id),
  );
  const ids = [...new Set([...sources.values()].map((s) => s.id))];
  const rows = await db
    .select()
    .from(metricSummaries)
    .where(and(inArray(metricSummaries.taskId, ids)));
  const out: TaskMetricSummary[] = [];
  for (const t of runTasks) {
    const source = sources.get(t.id)!;
    for (const r of rows)
      if (r.taskId === source.id)
        out.push({
          taskId: t.id,
          node: t.node,
          name: r.name,
          count: r.count,
          last: r.last,
          lastStep: r.lastStep,
          min: r.min,
          minStep: r.minStep,
          max: r.max,
          maxStep: r.maxStep,
          fromCache: source.fromCache,
          sourceTaskId: source.fromCache ? source.id : null,
        });
  }
  return out.sort((a, b) => a.node.localeCompare(b.node) || a.name.localeCompare(b.name));
}
