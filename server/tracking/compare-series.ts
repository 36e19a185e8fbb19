// compareRuns' series: each run's series of each metric downsampled to buckets of steps that start and end at the same
// steps for every run of a metric, so curves overlay. Long series are folded from their step rollups (rollups.ts),
// short ones grouped from their points. A series comes back columnar (steps and values), as the API sends it.
import { type SQL, sql } from 'drizzle-orm';
import { type Db, queryRows } from '../db/client';
import { floats, ROLLUP_SHIFTS, rollupShiftFor } from './rollups';

/** A run's series of a metric, in step order: `values[i]` is the point at `steps[i]` (NaN and ±Infinity kept). */
export interface ComparedSeries {
  runId: string;
  metric: string;
  steps: number[];
  values: number[];
}

/** Per shared bucket, in bucket order: the lowest and highest point (value NaN: none but NaN) and the first step. */
interface Buckets {
  loValue: number[];
  loStep: number[];
  hiValue: number[];
  hiStep: number[];
  firstStep: number[];
}

/**
 * Each run's series of each metric (the points of each task's latest attempt, by step; a task served from cache or
 * reused has its source's, see inherit.ts), cut into maxPoints/2 buckets
 * of steps that start and end at the same steps for every run of a metric; each bucket keeps its lowest and highest
 * point (NaN only where a bucket has nothing else), so spikes survive and curves overlay. A metric whose steps span
 * enough is read from its step rollups: each rollup bucket falls whole into the bucket its first step belongs to, so
 * the bounds stay shared across runs (of equal values, the first or last in order is kept, not the first step).
 */
export async function downsampledSeries(db: Db, runIds: string[], names: string[], maxPoints: number): Promise<ComparedSeries[]> {
  const buckets = Math.max(1, Math.floor(maxPoints / 2));
  const inRuns = sql`s.run_id in (${sql.join(
    runIds.map((id) => sql`${id}::uuid`),
    sql`, `,
  )})`;
  const named = (list: string[]) =>
    sql`s.name in (${sql.join(
      list.map((n) => sql`${n}`),
      sql`, `,
    )})`;
  const coarsest = ROLLUP_SHIFTS.step[ROLLUP_SHIFTS.step.length - 1]!;
  // A series' first and last step: the first bucket's first key of its lowest page, the last bucket's last key of its highest.
  const bounds = await queryRows<{ name: string; lo: string | number; hi: string | number }>(
    db,
    sql`select s.name, min(r.lo) as lo, max(r.hi) as hi
      from metric_summaries s cross join lateral (
        select min(first_key[1]) as lo, max(last_key[array_length(last_key, 1)]) as hi from metric_rollup_pages
        where task_id = coalesce(s.source_task_id, s.task_id) and name = s.name and attempt = s.last_attempt and axis = 'step' and shift = ${coarsest}::smallint
      ) r
      where ${inRuns} and ${named(names)}
      group by s.name`,
  );
  const rolled = bounds.flatMap((b) => {
    const [lo, hi] = [Number(b.lo), Number(b.hi)];
    const shift = rollupShiftFor('step', hi - lo + 1, buckets);
    return shift === null ? [] : [{ name: b.name, lo, hi, shift }];
  });
  const raw = names.filter((n) => !rolled.some((r) => r.name === n));
  const out: ComparedSeries[] = [];
  if (rolled.length) {
    // Per series, the rollup pages of the chosen level (a few rows each, read from the primary key) as one JSON value:
    // the driver parses it natively, where float8[] text was parsed character by character (most of the read's time).
    // The shared buckets are folded here (foldRollups): grouping them in SQL was most of the statement's time.
    const level = new Map(rolled.map((r) => [r.name, r]));
    const rows = await queryRows<{ run_id: string; name: string; pages: unknown }>(
      db,
      sql`
    with levels(name, shift) as (values ${sql.join(
      rolled.map((r) => sql`(${r.name}, ${r.shift}::smallint)`),
      sql`, `,
    )})
    select s.run_id::text as run_id, s.name,
      (select json_agg(json_build_array(p.buckets, p.lo_value, p.lo_seq, p.lo_step, p.hi_value, p.hi_seq, p.hi_step, p.first_key))
        from metric_rollup_pages p
        where p.task_id = coalesce(s.source_task_id, s.task_id) and p.name = s.name and p.attempt = s.last_attempt and p.axis = 'step' and p.shift = l.shift) as pages
    from metric_summaries s join levels l on l.name = s.name
    where ${inRuns}`,
    );
    for (const r of rows) {
      const pages = (typeof r.pages === 'string' ? JSON.parse(r.pages) : r.pages) as PageJson[] | null;
      if (pages) out.push(seriesOf(String(r.run_id), String(r.name), foldRollups(pages, level.get(String(r.name))!, buckets)));
    }
  }
  if (raw.length) {
    const rows = await queryRows<Record<string, unknown>>(
      db,
      perSeries(sql`
    with pts as (
      select s.run_id, p.name, p.step, p.value
      from metric_points p
      join metric_summaries s on coalesce(s.source_task_id, s.task_id) = p.task_id and s.name = p.name and p.attempt = s.last_attempt
      where ${inRuns} and ${named(raw)}
    ), bounds as (
      select name, min(step) as lo, max(step) as hi from pts group by name
    ), bucketed as (
      select pts.*, least(${buckets - 1}, floor((pts.step - b.lo)::float8 * ${buckets} / greatest(1, b.hi - b.lo + 1)))::int as bucket
      from pts join bounds b on b.name = pts.name
    )
    select run_id::text as run_id, name, bucket,
      min(array[value, step::float8]) filter (where value <> 'NaN'::float8) as lo,
      max(array[value, -step::float8]) filter (where value <> 'NaN'::float8) as hi,
      min(step) as first_step
    from bucketed
    group by run_id, name, bucket`),
    );
    for (const r of rows) {
      const [loValue, loStep, hiValue, hiStep, firstStep] = [r.lo_v, r.lo_s, r.hi_v, r.hi_s, r.first_step].map((v) => floats(v) ?? []) as [
        number[],
        number[],
        number[],
        number[],
        number[],
      ];
      out.push(seriesOf(String(r.run_id), String(r.name), { loValue, loStep, hiValue, hiStep: hiStep.map((t) => -t), firstStep }));
    }
  }
  const order = new Map(runIds.map((id, i) => [id, i]));
  return out.sort((a, b) => order.get(a.runId)! - order.get(b.runId)! || a.metric.localeCompare(b.metric));
}

/** A series from its buckets: per bucket its lowest and highest point in step order (one where they are the same point). */
function seriesOf(runId: string, metric: string, b: Buckets): ComparedSeries {
  const steps: number[] = [];
  const values: number[] = [];
  for (let i = 0; i < b.firstStep.length; i++) {
    const [loValue, loStep, hiValue, hiStep] = [b.loValue[i]!, b.loStep[i]!, b.hiValue[i]!, b.hiStep[i]!];
    // NaN for lo: a bucket of NaN alone (lo is a number wherever the bucket has one).
    if (Number.isNaN(loValue)) {
      steps.push(b.firstStep[i]!);
      values.push(Number.NaN);
    } else if (loStep === hiStep) {
      steps.push(loStep);
      values.push(loValue);
    } else if (loStep < hiStep) {
      steps.push(loStep, hiStep);
      values.push(loValue, hiValue);
    } else {
      steps.push(hiStep, loStep);
      values.push(hiValue, loValue);
    }
  }
  return { runId, metric, steps, values };
}

/** A rollup page as the rolled query reads it: buckets, lo value/seq/step, hi value/seq/step, first keys (±Infinity as strings). */
type PageJson = [number[], ...(number | string | null)[][]];

/** A JSON number, or "Infinity"/"-Infinity" as Postgres writes non-finite float8 in JSON. */
const num = (v: number | string | null | undefined): number => (typeof v === 'number' ? v : Number(v));

/**
 * One series' rollup pages folded into the shared buckets: each rollup bucket falls whole into the bucket its first
 * step belongs to; per bucket the lowest and highest extreme (ordered by value, then seq, then step, as min/max of the
 * float8[] arrays [value, seq, step] would pick them) and the least first step.
 */
function foldRollups(pages: readonly PageJson[], level: { lo: number; hi: number; shift: number }, buckets: number): Buckets {
  const width = 2 ** level.shift;
  const span = Math.max(1, level.hi - level.lo + 1);
  // Per shared bucket: lo value, seq, step, hi value, seq, step (NaN: none yet), first step (Infinity: no rollup bucket).
  const cells = new Float64Array(buckets * 7).fill(Number.NaN);
  for (let c = 0; c < buckets; c++) cells[c * 7 + 6] = Number.POSITIVE_INFINITY;
  for (const [b, loV, loQ, loT, hiV, hiQ, hiT, f] of pages) {
    for (let i = 0; i < b.length; i++) {
      const at = 7 * Math.min(buckets - 1, Math.floor(((Math.max(level.lo, b[i]! * width) - level.lo) * buckets) / span));
      if (loV![i] !== null) {
        const v = num(loV![i]);
        const q = num(loQ![i]);
        const t = num(loT![i]);
        const cv = cells[at]!;
        const cq = cells[at + 1]!;
        if (Number.isNaN(cv) || v < cv || (v === cv && (q < cq || (q === cq && t < cells[at + 2]!)))) {
          cells[at] = v;
          cells[at + 1] = q;
          cells[at + 2] = t;
        }
      }
      if (hiV![i] !== null) {
        const v = num(hiV![i]);
        const q = num(hiQ![i]);
        const t = num(hiT![i]);
        const cv = cells[at + 3]!;
        const cq = cells[at + 4]!;
        if (Number.isNaN(cv) || v > cv || (v === cv && (q > cq || (q === cq && t > cells[at + 5]!)))) {
          cells[at + 3] = v;
          cells[at + 4] = q;
          cells[at + 5] = t;
        }
      }
      cells[at + 6] = Math.min(cells[at + 6]!, num(f![i]));
    }
  }
  const out: Buckets = { loValue: [], loStep: [], hiValue: [], hiStep: [], firstStep: [] };
  for (let at = 0; at < cells.length; at += 7) {
    if (cells[at + 6] === Number.POSITIVE_INFINITY) continue;
    out.loValue.push(cells[at]!);
    out.loStep.push(Number.isNaN(cells[at]!) ? 0 : cells[at + 2]!);
    out.hiValue.push(cells[at + 3]!);
    out.hiStep.push(Number.isNaN(cells[at + 3]!) ? 0 : cells[at + 5]!);
    out.firstStep.push(cells[at + 6]!);
  }
  return out;
}

/**
 * One row per series from rows per (run_id, name, bucket) with lo = [lowest value, its step], hi = [highest value,
 * its step negated] (of equal values, the first step) and first_step: each as an array in bucket order (tens of thousands of rows become hundreds).
 */
const perSeries = (buckets: SQL) => sql`with bk as (${buckets})
  select run_id, name, array_agg(coalesce(lo[1], 'NaN'::float8) order by bucket) as lo_v, array_agg(coalesce(lo[2], 0) order by bucket) as lo_s,
    array_agg(coalesce(hi[1], 'NaN'::float8) order by bucket) as hi_v, array_agg(coalesce(hi[2], 0) order by bucket) as hi_s,
    array_agg(first_step::float8 order by bucket) as first_step
  from bk group by run_id, name`;
