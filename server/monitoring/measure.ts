// What a rule needs measured, in SQL: the window's aggregate of the monitor's metric, and the rule's baseline (the
// same aggregate over the trailing window, leaving out windows people annotated as one-off events; or the model
// version's evaluation metric, from the run that produced it).
import { eq, sql } from 'drizzle-orm';
import { type Db, queryRows, type Tx } from '../db/client';
import type { Monitor } from '../db/tables/monitoring';
import { modelVersions } from '../db/tables/registry';
import { metricSummaries } from '../db/tables/tracking';
import { metricValues } from '../registry/lineage';
import { measureDrift } from './drift-rule';
import { arrayLiteral } from './observations';
import type { Aggregate, Measured, MonitorRule } from './rules';
import { monitoredVersionId } from './targets';

/** The model version's evaluation metric (for an alias: of the version it points at now). */
async function evaluationMetric(db: Db | Tx, monitor: Monitor, metric: string): Promise<number | null> {
  const versionId = await monitoredVersionId(db, monitor);
  if (!versionId) return null;
  const [version] = await db.select().from(modelVersions).where(eq(modelVersions.id, versionId));
  if (!version) return null;
  const metrics = await db.select().from(metricSummaries).where(eq(metricSummaries.runId, version.runId));
  const value = metricValues(version, metrics).get(metric);
  return value === undefined || !Number.isFinite(value) ? null : value;
}

interface Window {
  monitor: Monitor;
  from: Date;
  to: Date;
  excludeAnnotated: boolean;
}

interface Aggregates {
  count: number;
  mean: number | null;
  min: number | null;
  max: number | null;
  last: number | null;
}

/**
 * Every window's aggregates in ONE statement: the windows travel as array parameters, and each is measured by a
 * lateral subquery that uses the observations' index (by version for a model version, by target otherwise).
 */
async function aggregateWindows(db: Db | Tx, windows: Window[]): Promise<Aggregates[]> {
  if (!windows.length) return [];
  const col = (f: (w: Window) => string | null) => arrayLiteral(windows.map(f));
  const rows = await queryRows<{
    i: string | number;
    count: string | number;
    mean: number | null;
    min: number | null;
    max: number | null;
    last: number | null;
  }>(
    db,
    sql`select w.i, a.count, a.mean, a.min, a.max, a.last
        from unnest(${col((w) => w.monitor.targetKind)}::text[], ${col((w) => w.monitor.targetId)}::uuid[], ${col((w) => w.monitor.alias)}::text[],
          ${col((w) => w.monitor.metric)}::text[], ${col((w) => w.from.toISOString())}::timestamptz[], ${col((w) => w.to.toISOString())}::timestamptz[],
          ${col((w) => w.monitor.id)}::uuid[], ${col((w) => String(w.excludeAnnotated))}::boolean[]) with ordinality as w(k, tid, al, m, f, t, mid, ex, i)
        cross join lateral (
          select count(*) as count, avg(o.value) as mean, min(o.value) as min, max(o.value) as max, (array_agg(o.value order by o.at desc, o.id desc))[1] as last
          from observations o
          where ((w.k = 'MODEL_VERSION' and o.version_id = w.tid) or (w.k <> 'MODEL_VERSION' and o.target_kind = w.k and o.target_id = w.tid and o.alias is not distinct from w.al))
            and o.metric = w.m and o.at >= w.f and o.at < w.t
            and (not w.ex or not exists (select 1 from monitor_events e where e.monitor_id = w.mid and e.kind = 'ANNOTATED'
              and o.at >= (e.details ->> 'from')::timestamptz and o.at < (e.details ->> 'to')::timestamptz))
        ) a order by w.i`,
  );
  const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));
  return rows.map((r) => ({ count: Number(r.count), mean: num(r.mean), min: num(r.min), max: num(r.max), last: num(r.last) }));
}

const pick = (a: Aggregates | undefined, aggregate: Aggregate): number | null =>
  !a ? null : aggregate === 'COUNT' ? a.count : aggregate === 'MEAN' ? a.mean : aggregate === 'MIN' ? a.min : aggregate === 'MAX' ? a.max : a.last;

/** Each rule's measurement at `now`: the windows of all of them in one statement, evaluation metrics looked up. */
export async function measureAll(db: Db | Tx, items: readonly { monitor: Monitor; rule: MonitorRule }[], now: Date): Promise<Measured[]> {
  const windows: Window[] = [];
  const slots = items.map(({ monitor, rule }) => {
    // A DRIFT rule measures profiles, not observations (drift-rule.ts): no window.
    if (rule.kind === 'DRIFT') return { current: -1, trailing: null };
    const windowStart = new Date(now.getTime() - rule.windowSeconds * 1000);
    const current = windows.push({ monitor, from: windowStart, to: now, excludeAnnotated: false }) - 1;
    let trailing: number | null = null;
    if (rule.kind === 'REGRESSION' && rule.baseline === 'TRAILING') {
      const from = new Date(windowStart.getTime() - (rule.trailingSeconds ?? 0) * 1000);
      trailing = windows.push({ monitor, from, to: windowStart, excludeAnnotated: true }) - 1;
    }
    return { current, trailing };
  });
  const aggregates = await aggregateWindows(db, windows);
  const measured: Measured[] = [];
  for (const [i, { monitor, rule }] of items.entries()) {
    const slot = slots[i]!;
    if (rule.kind === 'DRIFT') {
      measured.push(await measureDrift(db, monitor, rule));
      continue;
    }
    const current = pick(aggregates[slot.current], rule.aggregate);
    let baseline: number | null = null;
    if (slot.trailing !== null) baseline = pick(aggregates[slot.trailing], rule.aggregate);
    else if (rule.kind === 'REGRESSION') baseline = await evaluationMetric(db, monitor, rule.evaluationMetric ?? monitor.metric);
    measured.push({ current, baseline });
  }
  return measured;
}

/** One rule's measurement at `now`. */
export async function measure(db: Db | Tx, monitor: Monitor, rule: MonitorRule, now: Date): Promise<Measured> {
  return (await measureAll(db, [{ monitor, rule }], now))[0]!;
}
