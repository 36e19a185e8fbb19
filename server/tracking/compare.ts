// compareRuns: up to 100 runs side by side: the params that differ (or all), each metric's summary per run, and its
// series per run downsampled on the server to buckets that share their step boundaries across runs, so curves
// overlay. Only runs whose data the caller may read take part; any other id is reported missing, like an unknown one.
import { and, asc, inArray, isNull, type SQL, sql } from 'drizzle-orm';
import { type Db, queryRows } from '../db/client';
import { type Run, runs } from '../db/tables/runs';
import { loggedParams, metricSummaries } from '../db/tables/tracking';
import { badInput } from '../errors';
import type { Domain } from '../vocabulary';
import type { MetricCell } from './queries';
import { floats, nullableFloats, ROLLUP_SHIFTS, rollupShiftFor } from './rollups';

export const MAX_COMPARED_RUNS = 100;
export const MAX_COMPARED_METRICS = 50;
export const DEFAULT_MAX_POINTS = 200;
export const MAX_POINTS = 5_000;

export type { MetricCell };
export interface SeriesPoint {
  step: number;
  value: number;
}
export interface Comparison {
  runs: Run[];
  /** Ids given that name no run the caller may read (unknown, deleted, or of a domain not granted). */
  missing: string[];
  params: { key: string; values: (string | null)[]; differs: boolean }[];
  metrics: { name: string; values: (MetricCell | null)[] }[];
  series: { runId: string; metric: string; points: SeriesPoint[] }[];
}

const asText = (v: unknown): string => (typeof v === 'string' ? v : JSON.stringify(v));

export async function compareRuns(
  db: Db,
  readable: Domain[],
  input: { ids: readonly string[]; metrics?: readonly string[] | null; maxPoints?: number | null; allParams?: boolean | null },
): Promise<Comparison> {
  const ids = [...new Set(input.ids)];
  if (!ids.length) throw badInput('ids must name at least one run.');
  if (ids.length > MAX_COMPARED_RUNS)
    throw badInput(`compareRuns takes at most ${MAX_COMPARED_RUNS} runs; got ${ids.length}. Compare fewer (e.g. the top ones of a search).`);
  const maxPoints = input.maxPoints ?? DEFAULT_MAX_POINTS;
  if (!Number.isInteger(maxPoints) || maxPoints < 2 || maxPoints > MAX_POINTS) throw badInput(`maxPoints must be 2 to ${MAX_POINTS}; got ${maxPoints}.`);
  if (input.metrics && input.metrics.length > MAX_COMPARED_METRICS)
    throw badInput(`metrics names at most ${MAX_COMPARED_METRICS}; got ${input.metrics.length}.`);

  const found = readable.length
    ? await db
        .select()
        .from(runs)
        .where(and(inArray(runs.id, ids), inArray(runs.domain, readable), isNull(runs.deletedAt)))
    : [];
  const byId = new Map(found.map((r) => [r.id, r]));
  const compared = ids.filter((id) => byId.has(id)).map((id) => byId.get(id)!);
  const missing = ids.filter((id) => !byId.has(id));
  const runIds = compared.map((r) => r.id);
  if (!runIds.length) return { runs: [], missing, params: [], metrics: [], series: [] };
  const position = new Map(runIds.map((id, i) => [id, i]));

  // Params: declared at the start, else logged by a task (the least value if tasks disagree, as search does).
  const logged = await db
    .select({ runId: loggedParams.runId, key: loggedParams.key, value: sql<string>`min(${loggedParams.value})` })
    .from(loggedParams)
    .where(inArray(loggedParams.runId, runIds))
    .groupBy(loggedParams.runId, loggedParams.key);
  const params = new Map<string, (string | null)[]>();
  const cell = (key: string) => {
    let row = params.get(key);
    if (!row) params.set(key, (row = runIds.map(() => null)));
    return row;
  };
  for (const l of logged) cell(l.key)[position.get(l.runId)!] = l.value;
  for (const run of compared) for (const [key, value] of Object.entries(run.parameters)) cell(key)[position.get(run.id)!] = asText(value);
  const paramRows = [...params.entries()]
    .map(([key, values]) => ({ key, values, differs: new Set(values).size > 1 }))
    .filter((p) => input.allParams || p.differs)
    .sort((a, b) => a.key.localeCompare(b.key));

  // Summaries per run: the last most recently reported by any task, the least min and the greatest max.
  const s = metricSummaries;
  const summaries = await db
    .select({
      runId: s.runId,
      name: s.name,
      last: sql<number>`(array_agg(${s.last} order by ${s.lastAt} desc, ${s.taskId} desc))[1]`.mapWith(Number),
      lastStep: sql<number>`(array_agg(${s.lastStep} order by ${s.lastAt} desc, ${s.taskId} desc))[1]`.mapWith(Number),
      min: sql<number | null>`min(${s.min})`,
      minStep: sql<number | null>`(array_agg(${s.minStep} order by ${s.min} asc) filter (where ${s.min} is not null))[1]`,
      max: sql<number | null>`max(${s.max})`,
      maxStep: sql<number | null>`(array_agg(${s.maxStep} order by ${s.max} desc) filter (where ${s.max} is not null))[1]`,
      count: sql<number>`sum(${s.count})`.mapWith(Number),
    })
    .from(s)
    .where(and(inArray(s.runId, runIds), input.metrics ? inArray(s.name, [...input.metrics]) : undefined))
    .groupBy(s.runId, s.name)
    .orderBy(asc(s.name));
  const metricNames = input.metrics ? [...input.metrics] : [...new Set(summaries.map((m) => m.name))].slice(0, MAX_COMPARED_METRICS);
  const metrics = metricNames.map((name) => ({ name, values: runIds.map((): MetricCell | null => null) }));
  const metricIndex = new Map(metricNames.map((n, i) => [n, i]));
  for (const m of summaries) {
    const i = metricIndex.get(m.name);
    if (i === undefined) continue;
    const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));
    metrics[i]!.values[position.get(m.runId)!] = {
      last: Number(m.last),
      lastStep: m.lastStep,
      min: num(m.min),
      minStep: num(m.minStep),
      max: num(m.max),
      maxStep: num(m.maxStep),
      count: m.count,
    };
  }
  const series = metricNames.length ? await downsampled(db, runIds, metricNames, maxPoints) : [];
  return { runs: compared, missing, params: paramRows, metrics: metrics.filter((m) => m.values.some((v) => v !== null)), series };
}

/**
 * Each run's series of each metric (the points of each task's latest attempt, by step), cut into maxPoints/2 buckets
 * of steps that start and end at the same steps for every run of a metric; each bucket keeps its lowest and highest
 * point (NaN only where a bucket has nothing else), so spikes survive and curves overlay. A metric whose steps span
 * enough is read from its step rollups (rollups.ts): each rollup bucket falls whole into the bucket its first step
 * belongs to, so the bounds stay shared across runs (of equal values, the first or last in order is kept, not the first step).
 */
async function downsampled(db: Db, runIds: string[], names: string[], maxPoints: number): Promise<Comparison['series']> {
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
        where task_id = s.task_id and name = s.name and attempt = s.last_attempt and axis = 'step' and shift = ${coarsest}::smallint
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
  const list: Record<string, unknown>[] = [];
  if (rolled.length) {
    // Per series, the rollup pages of the chosen level (a few rows each, read from the primary key); the shared buckets
    // are folded here (foldRollups): grouping them in SQL (array min/max per bucket, a sort per series and per array)
    // was most of the statement's time.
    const level = new Map(rolled.map((r) => [r.name, r]));
    const pages = await queryRows<Record<string, unknown>>(
      db,
      sql`
    with levels(name, shift) as (values ${sql.join(
      rolled.map((r) => sql`(${r.name}, ${r.shift}::smallint)`),
      sql`, `,
    )})
    select s.run_id::text as run_id, s.task_id::text as task_id, s.name, p.buckets as b, p.lo_value as lo_v, p.lo_seq as lo_q, p.lo_step as lo_t,
      p.hi_value as hi_v, p.hi_seq as hi_q, p.hi_step as hi_t, p.first_key as f
    from metric_summaries s join levels l on l.name = s.name
      join metric_rollup_pages p on p.task_id = s.task_id and p.name = s.name and p.attempt = s.last_attempt and p.axis = 'step' and p.shift = l.shift
    where ${inRuns}`,
    );
    const bySeries = new Map<string, { run_id: unknown; name: unknown; pages: Record<string, unknown>[] }>();
    for (const p of pages) {
      const key = `${p.task_id}\u0000${p.name}`;
      const entry = bySeries.get(key);
      if (entry) entry.pages.push(p);
      else bySeries.set(key, { run_id: p.run_id, name: p.name, pages: [p] });
    }
    for (const r of bySeries.values()) list.push({ run_id: r.run_id, name: r.name, ...foldRollups(r.pages, level.get(String(r.name))!, buckets) });
  }
  if (raw.length)
    list.push(
      ...(await queryRows<Record<string, unknown>>(
        db,
        perSeries(sql`
    with pts as (
      select p.run_id, p.name, p.step, p.value
      from metric_points p
      join metric_summaries s on s.task_id = p.task_id and s.name = p.name and p.attempt = s.last_attempt
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
      )),
    );
  const out: { runId: string; metric: string; points: SeriesPoint[] }[] = [];
  for (const r of list) {
    const [loValue, loStep, hiValue, hiStep, firstStep] = [r.lo_v, r.lo_s, r.hi_v, r.hi_s, r.first_step].map((v) => floats(v) ?? []) as [
      number[],
      number[],
      number[],
      number[],
      number[],
    ];
    const points: SeriesPoint[] = [];
    for (let i = 0; i < firstStep.length; i++) {
      // NaN for lo: a bucket of NaN alone (lo is a number wherever the bucket has one).
      if (Number.isNaN(loValue[i]!)) {
        points.push({ step: firstStep[i]!, value: Number.NaN });
        continue;
      }
      const low = { step: loStep[i]!, value: loValue[i]! };
      const high = { step: -hiStep[i]!, value: hiValue[i]! };
      if (low.step === high.step) points.push(low);
      else points.push(...(low.step < high.step ? [low, high] : [high, low]));
    }
    out.push({ runId: String(r.run_id), metric: String(r.name), points });
  }
  const order = new Map(runIds.map((id, i) => [id, i]));
  return out.sort((a, b) => order.get(a.runId)! - order.get(b.runId)! || a.metric.localeCompare(b.metric));
}

/** A rollup extreme as [value, seq, step]: compared as Postgres compares the float8[] arrays (none of them NaN). */
type Extreme = [number, number, number];
const below = (a: Extreme, b: Extreme) => a[0] < b[0] || (a[0] === b[0] && (a[1] < b[1] || (a[1] === b[1] && a[2] < b[2])));

/**
 * One series' rollup pages (arrays b, lo_*, hi_*, f as the rolled query reads them) folded into the shared buckets:
 * each rollup bucket falls whole into the bucket its first step belongs to; per bucket the lowest and highest extreme
 * (as min/max of the float8[] arrays would pick them) and the least first step. The same columns perSeries gives.
 */
function foldRollups(pages: readonly Record<string, unknown>[], level: { lo: number; hi: number; shift: number }, buckets: number) {
  const width = 2 ** level.shift;
  const span = Math.max(1, level.hi - level.lo + 1);
  const folded = new Map<number, { lo: Extreme | null; hi: Extreme | null; first: number }>();
  for (const page of pages) {
    const [b, loV, loQ, loT, hiV, hiQ, hiT, f] = [page.b, page.lo_v, page.lo_q, page.lo_t, page.hi_v, page.hi_q, page.hi_t, page.f].map((v) =>
      nullableFloats(v),
    );
    for (let i = 0; i < b!.length; i++) {
      const bucket = Math.min(buckets - 1, Math.floor(((Math.max(level.lo, b![i]! * width) - level.lo) * buckets) / span));
      const lo: Extreme | null = loV![i] === null ? null : [loV![i]!, loQ![i]!, loT![i]!];
      const hi: Extreme | null = hiV![i] === null ? null : [hiV![i]!, hiQ![i]!, hiT![i]!];
      const cell = folded.get(bucket);
      if (!cell) {
        folded.set(bucket, { lo, hi, first: f![i]! });
        continue;
      }
      if (lo && (!cell.lo || below(lo, cell.lo))) cell.lo = lo;
      if (hi && (!cell.hi || below(cell.hi, hi))) cell.hi = hi;
      cell.first = Math.min(cell.first, f![i]!);
    }
  }
  const cells = [...folded.entries()].sort((x, y) => x[0] - y[0]).map(([, c]) => c);
  return {
    lo_v: cells.map((c) => c.lo?.[0] ?? Number.NaN),
    lo_s: cells.map((c) => c.lo?.[2] ?? 0),
    hi_v: cells.map((c) => c.hi?.[0] ?? Number.NaN),
    hi_s: cells.map((c) => -(c.hi?.[2] ?? 0)),
    first_step: cells.map((c) => c.first),
  };
}

/**
 * One row per series from rows per (run_id, name, bucket) with lo = [lowest value, its step], hi = [highest value,
 * its step negated] and first_step: each as an array in bucket order (tens of thousands of rows become hundreds).
 */
const perSeries = (buckets: SQL) => sql`with bk as (${buckets})
  select run_id, name, array_agg(coalesce(lo[1], 'NaN'::float8) order by bucket) as lo_v, array_agg(coalesce(lo[2], 0) order by bucket) as lo_s,
    array_agg(coalesce(hi[1], 'NaN'::float8) order by bucket) as hi_v, array_agg(coalesce(hi[2], 0) order by bucket) as hi_s,
    array_agg(first_step::float8 order by bucket) as first_step
  from bk group by run_id, name`;
