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

/** One rollup row as a batch contributes it, before it is merged with the stored one. */
export interface RollupRow {
  taskId: string;
  name: string;
  attempt: number;
  axis: RollupAxis;
  shift: number;
  bucket: number;
  n: number;
  /** [value, seq, step] of the lowest and highest number (null while only NaN). */
  lo: [number, number, number] | null;
  hi: [number, number, number] | null;
  /** [key, seq, step, value] of the first and last point by key, then seq. */
  first: [number, number, number, number];
  last: [number, number, number, number];
}

/**
 * The rollup rows a batch of new points contributes, per series, at every level of both axes: the same fold as
 * rollupCtes, computed here rather than as SQL aggregates over every point (the fine level's GROUP BY of 2,000 points × 2
 * axes with array min/max was ~60 of ~410 ms of the statement on PGlite; this is a few ms).
 * Bucket of a key: floor(key / 2^shift), as Postgres' `>>` on bigint (arithmetic, so negative steps floor too).
 */
export function rollupRows(
  series: readonly { taskId: string; name: string; attempt: number; points: readonly { seq: number; step: number; value: number }[] }[],
): RollupRow[] {
  const out: RollupRow[] = [];
  for (const s of series) {
    // Per level, the series' rows by bucket (numbers as keys: no string built per point and level). Extremes are kept
    // as indexes into the points and compared as scalars (the order of the float8[] arrays, spelled out), and made
    // arrays once per row at the end: an array per point and level was most of this function's time and garbage.
    const pts = s.points;
    for (const axis of ['seq', 'step'] as const) {
      for (const shift of ROLLUP_SHIFTS[axis]) {
        const width = 2 ** shift;
        const cells = new Map<number, { bucket: number; n: number; lo: number; hi: number; first: number; last: number }>();
        for (let i = 0; i < pts.length; i++) {
          const p = pts[i]!;
          const key = axis === 'seq' ? p.seq : p.step;
          const bucket = Math.floor(key / width);
          const nan = Number.isNaN(p.value);
          const cell = cells.get(bucket);
          if (!cell) {
            cells.set(bucket, { bucket, n: 1, lo: nan ? -1 : i, hi: nan ? -1 : i, first: i, last: i });
            continue;
          }
          cell.n++;
          if (!nan) {
            if (cell.lo < 0 || extremeBefore(p, pts[cell.lo]!)) cell.lo = i;
            if (cell.hi < 0 || extremeBefore(pts[cell.hi]!, p)) cell.hi = i;
          }
          if (keyedBefore(axis, p, pts[cell.first]!)) cell.first = i;
          if (keyedBefore(axis, pts[cell.last]!, p)) cell.last = i;
        }
        const ext = (i: number): [number, number, number] | null => (i < 0 ? null : [pts[i]!.value, pts[i]!.seq, pts[i]!.step]);
        const keyed = (i: number): [number, number, number, number] => {
          const p = pts[i]!;
          return [axis === 'seq' ? p.seq : p.step, p.seq, p.step, p.value];
        };
        for (const c of cells.values())
          out.push({
            taskId: s.taskId,
            name: s.name,
            attempt: s.attempt,
            axis,
            shift,
            bucket: c.bucket,
            n: c.n,
            lo: ext(c.lo),
            hi: ext(c.hi),
            first: keyed(c.first),
            last: keyed(c.last),
          });
      }
    }
  }
  return out;
}

type RolledPoint = { seq: number; step: number; value: number };
/** [value, seq, step] of `a` below that of `b` (values that are numbers, not NaN). */
const extremeBefore = (a: RolledPoint, b: RolledPoint) => a.value < b.value || (a.value === b.value && (a.seq < b.seq || (a.seq === b.seq && a.step < b.step)));
/** [key, seq, step, value] of `a` below that of `b`, as Postgres orders float8[] arrays (element by element, NaN above every number). */
function keyedBefore(axis: RollupAxis, a: RolledPoint, b: RolledPoint): boolean {
  const ka = axis === 'seq' ? a.seq : a.step;
  const kb = axis === 'seq' ? b.seq : b.step;
  if (ka !== kb) return ka < kb;
  if (a.seq !== b.seq) return a.seq < b.seq;
  if (a.step !== b.step) return a.step < b.step;
  if (a.value === b.value || Number.isNaN(a.value)) return false;
  return Number.isNaN(b.value) || a.value < b.value;
}

/** A CTE (to follow `with ` or a comma), `rolled`, that merges `rows` into metric_rollups as rollupCtes does. */
export function rollupUpsertCte(rows: readonly RollupRow[], array: (values: readonly (string | number | null)[], quote?: boolean) => string): SQL {
  const col = (f: (r: RollupRow) => string | number | null, quote = false) => array(rows.map(f), quote);
  const num = (v: number | undefined | null) => (v === undefined || v === null ? null : String(v));
  return sql`rolled as (
      insert into metric_rollups as r (task_id, name, attempt, axis, shift, bucket, n, lo, hi, first, last)
      select task_id, name, attempt, axis, shift, bucket, n,
        case when lo_v is null then null else array[lo_v, lo_s, lo_t] end, case when hi_v is null then null else array[hi_v, hi_s, hi_t] end,
        array[f_k, f_s, f_t, f_v], array[l_k, l_s, l_t, l_v]
      from unnest(${col((r) => r.taskId)}::uuid[], ${col((r) => r.name, true)}::text[], ${col((r) => r.attempt)}::int[], ${col((r) => r.axis)}::text[],
        ${col((r) => r.shift)}::smallint[], ${col((r) => r.bucket)}::bigint[], ${col((r) => r.n)}::bigint[],
        ${col((r) => num(r.lo?.[0]))}::float8[], ${col((r) => num(r.lo?.[1]))}::float8[], ${col((r) => num(r.lo?.[2]))}::float8[],
        ${col((r) => num(r.hi?.[0]))}::float8[], ${col((r) => num(r.hi?.[1]))}::float8[], ${col((r) => num(r.hi?.[2]))}::float8[],
        ${col((r) => String(r.first[0]))}::float8[], ${col((r) => String(r.first[1]))}::float8[], ${col((r) => String(r.first[2]))}::float8[], ${col((r) => String(r.first[3]))}::float8[],
        ${col((r) => String(r.last[0]))}::float8[], ${col((r) => String(r.last[1]))}::float8[], ${col((r) => String(r.last[2]))}::float8[], ${col((r) => String(r.last[3]))}::float8[])
        as u(task_id, name, attempt, axis, shift, bucket, n, lo_v, lo_s, lo_t, hi_v, hi_s, hi_t, f_k, f_s, f_t, f_v, l_k, l_s, l_t, l_v)
      on conflict (task_id, name, attempt, axis, shift, bucket) do update set
        n = r.n + excluded.n, lo = least(r.lo, excluded.lo), hi = greatest(r.hi, excluded.hi),
        first = least(r.first, excluded.first), last = greatest(r.last, excluded.last)
      returning 1
    )`;
}
