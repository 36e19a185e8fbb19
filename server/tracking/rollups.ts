// Metric rollups: each series summarised in fixed buckets at a few widths, kept by the statement that stores its
// points (storeMetricPoints), so that a long series is downsampled from a few thousand rollup rows instead of
// every point. Two axes: `seq` (the points' order, for Task.metricHistory) and `step` (shared bucket bounds across
// runs, for compareRuns' overlays). A bucket's extremes are float8 arrays merged with least/greatest, so batches in
// any order (late, concurrent) add up to the same rows; a redelivered batch stores no point and so adds nothing.
import { type SQL, sql } from 'drizzle-orm';

export type RollupAxis = 'seq' | 'step';

/** Each axis's bucket widths as shifts (a bucket holds keys `bucket << shift` to `((bucket + 1) << shift) - 1`), finest first. */
export const ROLLUP_SHIFTS: Record<RollupAxis, readonly number[]> = { seq: [4, 8, 12], step: [3, 6, 9, 12, 15] };

const levels = Object.entries(ROLLUP_SHIFTS).flatMap(([axis, shifts]) => shifts.map((shift) => `('${axis}', ${shift}, ${shifts[0]})`));

/**
 * CTEs (to follow `with ` or a comma) that fold the points of `source` (a relation with task_id, name, attempt, seq,
 * step, value) into metric_rollups: the finest level of each axis from the points, the coarser ones from those.
 * The last CTE, `rolled`, returns one row per rollup row written.
 */
export function rollupCtes(source: SQL): SQL {
  return sql`roll_fine as (
      select p.task_id, p.name, p.attempt, a.axis, a.shift, k.key >> a.shift as bucket, count(*) as n,
        min(array[p.value, p.seq::float8, p.step::float8]) filter (where p.value <> 'NaN'::float8) as lo,
        max(array[p.value, p.seq::float8, p.step::float8]) filter (where p.value <> 'NaN'::float8) as hi,
        min(array[k.key::float8, p.seq::float8, p.step::float8, p.value]) as first,
        max(array[k.key::float8, p.seq::float8, p.step::float8, p.value]) as last
      from ${source} p
        cross join (values ('seq', ${sql.raw(String(ROLLUP_SHIFTS.seq[0]))}), ('step', ${sql.raw(String(ROLLUP_SHIFTS.step[0]))})) as a(axis, shift)
        cross join lateral (select case when a.axis = 'seq' then p.seq else p.step end as key) k
      group by 1, 2, 3, 4, 5, 6
    ), rolled as (
      insert into metric_rollups as r (task_id, name, attempt, axis, shift, bucket, n, lo, hi, first, last)
      select f.task_id, f.name, f.attempt, f.axis, l.shift, f.bucket >> (l.shift - l.fine), sum(f.n), min(f.lo), max(f.hi), min(f.first), max(f.last)
      from roll_fine f join (values ${sql.raw(levels.join(', '))}) as l(axis, shift, fine) on l.axis = f.axis
      group by 1, 2, 3, 4, 5, 6
      on conflict (task_id, name, attempt, axis, shift, bucket) do update set
        n = r.n + excluded.n, lo = least(r.lo, excluded.lo), hi = greatest(r.hi, excluded.hi),
        first = least(r.first, excluded.first), last = greatest(r.last, excluded.last)
      returning 1
    )`;
}

/** Folds points already in metric_points (selected by `where`) into the rollups: for seeding, as the migration backfills. */
export const rollupStoredPoints = (where: SQL): SQL =>
  sql`with ${rollupCtes(sql`(select task_id, name, attempt, seq, step, value from metric_points where ${where})`)} select count(*) as n from rolled`;

/**
 * The coarsest shift of `axis` whose buckets are at most `span / want` keys wide (so a series spanning `span` keys
 * fills at least `want` buckets), or null where even the finest is too coarse (read the points themselves).
 */
export function rollupShiftFor(axis: RollupAxis, span: number, want: number): number | null {
  const fitting = ROLLUP_SHIFTS[axis].filter((shift) => 2 ** shift * want <= span);
  return fitting.length ? fitting[fitting.length - 1]! : null;
}

/** A float8[] as the driver gives it (an array, or Postgres text like `{0.5,-3}` from PGlite's raw rows). */
export function floats(v: unknown): number[] | null {
  if (v === null || v === undefined) return null;
  if (Array.isArray(v)) return v.map(Number);
  return String(v).replace(/[{}]/g, '').split(',').map(Number);
}
