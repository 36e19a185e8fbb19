// Metric rollups: each series summarised in fixed buckets at a few widths, kept by the statement that stores its
// points (storeMetricPoints), so that a long series is downsampled from a few rollup pages instead of every point.
// Two axes: `seq` (the points' order, for Task.metricHistory) and `step` (shared bucket bounds across runs, for
// compareRuns' overlays). Buckets are stored packed, a page of up to 32 per row (metric_rollup_pages); a page written
// again is merged bucket by bucket in the upsert (counts added, extremes compared as float8 arrays), so batches in any
// order (late, concurrent) add up to the same pages; a redelivered batch stores no point and so adds nothing.
import { type SQL, sql } from 'drizzle-orm';

export type RollupAxis = 'seq' | 'step';

/** Each axis's bucket widths as shifts (a bucket holds keys `bucket << shift` to `((bucket + 1) << shift) - 1`), finest first. */
export const ROLLUP_SHIFTS: Record<RollupAxis, readonly number[]> = { seq: [4, 8, 12], step: [3, 6, 9, 12, 15] };

/** Buckets per page row: a page holds buckets `page << ROLLUP_PAGE_SHIFT` to `((page + 1) << ROLLUP_PAGE_SHIFT) - 1` (migration 0045 too). */
export const ROLLUP_PAGE_SHIFT = 5;

/** A page's per-bucket columns, in the order of RollupRow's [lo, hi, first, last] arrays. */
const CELL_COLUMNS = [
  'lo_value',
  'lo_seq',
  'lo_step',
  'hi_value',
  'hi_seq',
  'hi_step',
  'first_key',
  'first_seq',
  'first_step',
  'first_value',
  'last_key',
  'last_seq',
  'last_step',
  'last_value',
] as const;
/**
 * A page's per-bucket columns (CELL_COLUMNS' order) aggregated from bucket rows whose cells are the arrays named
 * `lo`, `hi` (value, seq, step) and `first`, `last` (key, seq, step, value): one array per column, in bucket order.
 */
const cellAggregates = (lo: string, hi: string, first: string, last: string) =>
  [...[lo, hi].flatMap((a) => [1, 2, 3].map((i) => `${a}[${i}]`)), ...[first, last].flatMap((a) => [1, 2, 3, 4].map((i) => `${a}[${i}]`))]
    .map((e) => `array_agg(${e} order by bucket)`)
    .join(', ');
const PAGE_COLUMNS = `task_id, name, attempt, axis, shift, page, total, buckets, ns, ${CELL_COLUMNS.join(', ')}`;

/**
 * Merges a page written again with the stored one, bucket by bucket: counts added, lo and first the least, hi and last
 * the greatest as float8 arrays compare (NaN above every number; lo and hi over numbers only, null while none). A
 * batch that only adds buckets after the stored ones (the usual in-order append) is concatenated, not regrouped.
 */
const MERGE_PAGES = sql.raw(`on conflict (task_id, name, attempt, axis, shift, page) do update set
        total = r.total + excluded.total,
        (buckets, ns, ${CELL_COLUMNS.join(', ')}) = (
          select r.buckets || excluded.buckets, r.ns || excluded.ns, ${CELL_COLUMNS.map((c) => `r.${c} || excluded.${c}`).join(', ')}
          where r.buckets[array_upper(r.buckets, 1)] < excluded.buckets[1]
          union all
          select array_agg(bucket order by bucket), array_agg(n order by bucket),
            ${cellAggregates('lo', 'hi', 'f', 'l')}
          from (
            select bucket, sum(n)::bigint as n, min(array[lo_v, lo_s, lo_t]) filter (where lo_v is not null) as lo,
              max(array[hi_v, hi_s, hi_t]) filter (where hi_v is not null) as hi, min(array[f_k, f_s, f_t, f_v]) as f, max(array[l_k, l_s, l_t, l_v]) as l
            from (
              select * from unnest(r.buckets, r.ns, ${CELL_COLUMNS.map((c) => `r.${c}`).join(', ')})
              union all select * from unnest(excluded.buckets, excluded.ns, ${CELL_COLUMNS.map((c) => `excluded.${c}`).join(', ')})
            ) as u(bucket, n, lo_v, lo_s, lo_t, hi_v, hi_s, hi_t, f_k, f_s, f_t, f_v, l_k, l_s, l_t, l_v)
            group by bucket
          ) as g
          having not (r.buckets[array_upper(r.buckets, 1)] < excluded.buckets[1])
        )`);

const levels = Object.entries(ROLLUP_SHIFTS).flatMap(([axis, shifts]) => shifts.map((shift) => `('${axis}', ${shift}, ${shifts[0]})`));

/**
 * CTEs (to follow `with ` or a comma) that fold the points of `source` (a relation with task_id, name, attempt, seq,
 * step, value) into metric_rollup_pages: the finest level of each axis from the points, the coarser ones from those,
 * then packed into pages. The last CTE, `rolled`, returns one row per page written.
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
    ), roll_levels as (
      select f.task_id, f.name, f.attempt, f.axis, l.shift, f.bucket >> (l.shift - l.fine) as bucket, sum(f.n) as n, min(f.lo) as lo, max(f.hi) as hi,
        min(f.first) as first, max(f.last) as last
      from roll_fine f join (values ${sql.raw(levels.join(', '))}) as l(axis, shift, fine) on l.axis = f.axis
      group by 1, 2, 3, 4, 5, 6
    ), rolled as (
      insert into metric_rollup_pages as r (${sql.raw(PAGE_COLUMNS)})
      select task_id, name, attempt, axis, shift, bucket >> ${sql.raw(String(ROLLUP_PAGE_SHIFT))}, sum(n), array_agg(bucket order by bucket), array_agg(n order by bucket),
        ${sql.raw(cellAggregates('lo', 'hi', 'first', 'last'))}
      from roll_levels group by 1, 2, 3, 4, 5, 6
      ${MERGE_PAGES}
      returning 1
    )`;
}

/** Folds points already in metric_points (selected by `where`) into the rollups: for seeding and backfills. */
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

/**
 * A CTE (to follow `with ` or a comma), `rolled`, that writes `rows` (rollupRows: one batch's buckets) as pages and
 * merges each with the stored page, as rollupCtes does. One row per page: a batch's buckets of one page go together.
 */
export function rollupUpsertCte(rows: readonly RollupRow[], array: (values: readonly (string | number | null)[], quote?: boolean) => string): SQL {
  const pages = new Map<string, RollupRow[]>();
  for (const r of rows) {
    const key = `${r.taskId}\u0000${r.name}\u0000${r.attempt}\u0000${r.axis}\u0000${r.shift}\u0000${Math.floor(r.bucket / 2 ** ROLLUP_PAGE_SHIFT)}`;
    const page = pages.get(key);
    if (page) page.push(r);
    else pages.set(key, [r]);
  }
  const num = (v: number | undefined | null) => (v === undefined || v === null ? null : String(v));
  const values = [...pages.values()].map((cells) => {
    cells.sort((a, b) => a.bucket - b.bucket);
    const [r] = cells as [RollupRow];
    const col = (f: (c: RollupRow) => number | null | undefined) => array(cells.map((c) => num(f(c))));
    const floats = (f: (c: RollupRow) => number | null | undefined) => sql`${col(f)}::float8[]`;
    return sql`(${r.taskId}::uuid, ${r.name}, ${r.attempt}::int, ${r.axis}, ${r.shift}::smallint, ${Math.floor(r.bucket / 2 ** ROLLUP_PAGE_SHIFT)}::bigint,
      ${cells.reduce((n, c) => n + c.n, 0)}::bigint, ${col((c) => c.bucket)}::bigint[], ${col((c) => c.n)}::bigint[], ${sql.join(
        [
          ...[0, 1, 2].map((i) => floats((c) => c.lo?.[i])),
          ...[0, 1, 2].map((i) => floats((c) => c.hi?.[i])),
          ...[0, 1, 2, 3].map((i) => floats((c) => c.first[i])),
          ...[0, 1, 2, 3].map((i) => floats((c) => c.last[i])),
        ],
        sql`, `,
      )})`;
  });
  return sql`rolled as (
      insert into metric_rollup_pages as r (${sql.raw(PAGE_COLUMNS)})
      values ${sql.join(values, sql`, `)}
      ${MERGE_PAGES}
      returning 1
    )`;
}

/** An array column as the driver gives it (an array, or Postgres text like `{0.5,NULL,-3}` from PGlite's raw rows), NULL as null. */
export function nullableFloats(v: unknown): (number | null)[] | null {
  if (v === null || v === undefined) return null;
  const text = Array.isArray(v) ? null : String(v).slice(1, -1);
  const list = Array.isArray(v) ? v : text ? text.split(',') : [];
  return list.map((x) => (x === null || x === 'NULL' ? null : Number(x)));
}
