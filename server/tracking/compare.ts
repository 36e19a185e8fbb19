// compareRuns: up to 100 runs side by side: the params that differ (or all), each metric's summary per run, and its
// series per run downsampled on the server to buckets that share their step boundaries across runs, so curves
// overlay (compare-series.ts). Only runs whose data the caller may read take part; any other id is reported missing,
// like an unknown one.
import { and, asc, inArray, isNull, sql } from 'drizzle-orm';
import type { Db } from '../db/client';
import { type Run, runs } from '../db/tables/runs';
import { loggedParams, metricSummaries } from '../db/tables/tracking';
import { badInput } from '../errors';
import type { Domain } from '../vocabulary';
import { type ComparedSeries, downsampledSeries } from './compare-series';
import type { MetricCell } from './queries';

export const MAX_COMPARED_RUNS = 100;
export const MAX_COMPARED_METRICS = 50;
export const DEFAULT_MAX_POINTS = 200;
export const MAX_POINTS = 5_000;

export type { ComparedSeries, MetricCell };
export interface Comparison {
  runs: Run[];
  /** Ids given that name no run the caller may read (unknown, deleted, or of a domain not granted). */
  missing: string[];
  params: { key: string; values: (string | null)[]; differs: boolean }[];
  metrics: { name: string; values: (MetricCell | null)[] }[];
  series: ComparedSeries[];
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
  const series = metricNames.length ? await downsampledSeries(db, runIds, metricNames, maxPoints) : [];
  return { runs: compared, missing, params: paramRows, metrics: metrics.filter((m) => m.values.some((v) => v !== null)), series };
}
