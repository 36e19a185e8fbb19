// Reads of stored metrics for the API: a task's latest values, a series downsampled in SQL, and a run's per-task
// summaries. A task served from cache answers with the points of the task it reused (its source), marked so.
import { and, eq, inArray, type SQL, sql } from 'drizzle-orm';
import { encodeMetricValue, type WireMetricValue } from '../../plugins/metric-values';
import type { Db } from '../db/client';
import { queryRows } from '../db/client';
import { tasks } from '../db/tables/runs';
import { metricSummaries } from '../db/tables/tracking';
import { badInput } from '../errors';
import { nullableFloats, ROLLUP_SHIFTS, rollupShiftFor } from './rollups';

export type LatestMetrics = Record<string, { value: WireMetricValue; step: number | null }>;

/** Where a task's metrics live: itself, or the task a cache hit reused. */
async function sourcesOf(db: Db, taskIds: string[]): Promise<Map<string, { id: string; attempt: number; fromCache: boolean }>> {
  const rows = await db.select({ id: tasks.id, attempt: tasks.attempt, source: tasks.cacheSourceTaskId }).from(tasks).where(inArray(tasks.id, taskIds));
  const sourceIds = rows.flatMap((r) => (r.source ? [r.source] : []));
  const sources = new Map(
    sourceIds.length
      ? (await db.select({ id: tasks.id, attempt: tasks.attempt }).from(tasks).where(inArray(tasks.id, sourceIds))).map((s) => [s.id, s.attempt])
      : [],
  );
  return new Map(
    rows.map((r) => [
      r.id,
      r.source ? { id: r.source, attempt: sources.get(r.source) ?? 1, fromCache: true } : { id: r.id, attempt: r.attempt, fromCache: false },
    ]),
  );
}

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
 * Null where the series is short enough to read its points (or has no rollups). The level's pages are read whole
 * (a few dozen rows for 1,000,000 points) and grouped here.
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
  const pages = await queryRows<Record<string, unknown>>(
    db,
    sql`select ns, lo_value, lo_seq, lo_step, hi_value, hi_seq, hi_step, first_seq, first_step, first_value, last_seq, last_step, last_value
      from metric_rollup_pages where ${series} and axis = 'seq' and shift = ${shift}::smallint order by page`,
  );
  // Groups of rollup buckets by the points before them; per group its lowest and highest number ([value, seq, step]:
  // the lowest and highest value, then the first and last seq) or, with none, its first point; then the series' first
  // and last point. Buckets of the seq axis do not overlap, so a group's first point is its first bucket's.
  const picked = new Map<number, HistoryPoint>();
  const pick = (seq: number, step: number, value: number) => picked.set(seq, { seq, step, value });
  let before = 0;
  let group: { id: number; lo: Extreme | null; hi: Extreme | null; first: Extreme } | null = null;
  const close = () => {
    if (!group) return;
    if (group.lo && group.hi) {
      pick(group.lo[1], group.lo[2], group.lo[0]);
      pick(group.hi[1], group.hi[2], group.hi[0]);
    } else pick(group.first[1], group.first[2], group.first[0]);
  };
  let last: Extreme | null = null;
  for (const page of pages) {
    const c = Object.fromEntries(Object.entries(page).map(([k, v]) => [k, nullableFloats(v) ?? []]));
    for (let i = 0; i < c.ns!.length; i++) {
      const id = Math.floor((before * buckets) / total);
      before += c.ns![i]!;
      const lo: Extreme | null = c.lo_value![i] === null ? null : [c.lo_value![i]!, c.lo_seq![i]!, c.lo_step![i]!];
      const hi: Extreme | null = c.hi_value![i] === null ? null : [c.hi_value![i]!, c.hi_seq![i]!, c.hi_step![i]!];
      const first: Extreme = [c.first_value![i]!, c.first_seq![i]!, c.first_step![i]!];
      last = [c.last_value![i]!, c.last_seq![i]!, c.last_step![i]!];
      if (!picked.size) pick(first[1], first[2], first[0]);
      if (!group || group.id !== id) {
        close();
        group = { id, lo, hi, first };
        continue;
      }
      if (lo && (!group.lo || below(lo, group.lo))) group.lo = lo;
      if (hi && (!group.hi || below(group.hi, hi))) group.hi = hi;
    }
  }
  close();
  if (last) pick(last[1], last[2], last[0]);
  return { total, points: [...picked.values()].sort((a, b) => a.seq - b.seq) };
}

/** A rollup extreme as [value, seq, step]: compared as Postgres compares the float8[] arrays (none of them NaN). */
type Extreme = [number, number, number];
const below = (a: Extreme, b: Extreme) => a[0] < b[0] || (a[0] === b[0] && (a[1] < b[1] || (a[1] === b[1] && a[2] < b[2])));

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
