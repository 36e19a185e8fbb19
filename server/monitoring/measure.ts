// What a rule needs measured, in SQL: the window's aggregate of the monitor's metric, and the rule's baseline (the
// same aggregate over the trailing window, leaving out windows people annotated as one-off events; or the model
// version's evaluation metric, from the run that produced it).
import { and, eq, type SQL, sql } from 'drizzle-orm';
import { type Db, queryRows, type Tx } from '../db/client';
import type { Monitor } from '../db/tables/monitoring';
import { modelAliases, modelVersions } from '../db/tables/registry';
import { metricSummaries } from '../db/tables/tracking';
import { metricValues } from '../registry/lineage';
import type { Aggregate, Measured, MonitorRule } from './rules';
import { observationsOf } from './series';

const aggregateSql: Record<Aggregate, SQL> = {
  MEAN: sql`avg(value)`,
  MIN: sql`min(value)`,
  MAX: sql`max(value)`,
  LAST: sql`(array_agg(value order by at desc, id desc))[1]`,
  COUNT: sql`count(*)`,
};

async function aggregate(db: Db | Tx, monitor: Monitor, rule: MonitorRule, from: Date, to: Date, excludeAnnotated: boolean): Promise<number | null> {
  const target = { kind: monitor.targetKind, id: monitor.targetId, alias: monitor.alias };
  const annotated = excludeAnnotated
    ? sql`and not exists (select 1 from monitor_events e where e.monitor_id = ${monitor.id}::uuid and e.kind = 'ANNOTATED'
        and o.at >= (e.details ->> 'from')::timestamptz and o.at < (e.details ->> 'to')::timestamptz)`
    : sql``;
  const [row] = await queryRows<{ v: number | string | null }>(
    db,
    sql`select ${aggregateSql[rule.aggregate]} as v from observations o
        where ${observationsOf(target)} and metric = ${monitor.metric} and at >= ${from.toISOString()}::timestamptz and at < ${to.toISOString()}::timestamptz ${annotated}`,
  );
  return row?.v === null || row?.v === undefined ? null : Number(row.v);
}

/** The model version's evaluation metric (for an alias: of the version it points at now). */
async function evaluationMetric(db: Db | Tx, monitor: Monitor, metric: string): Promise<number | null> {
  let versionId: string | null = monitor.targetKind === 'MODEL_VERSION' ? monitor.targetId : null;
  if (monitor.targetKind === 'ALIAS' && monitor.alias) {
    const [alias] = await db
      .select({ versionId: modelAliases.versionId })
      .from(modelAliases)
      .where(and(eq(modelAliases.modelId, monitor.targetId), eq(modelAliases.alias, monitor.alias)));
    versionId = alias?.versionId ?? null;
  }
  if (!versionId) return null;
  const [version] = await db.select().from(modelVersions).where(eq(modelVersions.id, versionId));
  if (!version) return null;
  const metrics = await db.select().from(metricSummaries).where(eq(metricSummaries.runId, version.runId));
  const value = metricValues(version, metrics).get(metric);
  return value === undefined || !Number.isFinite(value) ? null : value;
}

/** The rule's measurement at `now`. */
export async function measure(db: Db | Tx, monitor: Monitor, rule: MonitorRule, now: Date): Promise<Measured> {
  const windowStart = new Date(now.getTime() - rule.windowSeconds * 1000);
  const current = await aggregate(db, monitor, rule, windowStart, now, false);
  if (rule.kind !== 'REGRESSION') return { current, baseline: null };
  if (rule.baseline === 'EVALUATION') return { current, baseline: await evaluationMetric(db, monitor, rule.evaluationMetric ?? monitor.metric) };
  const trailingStart = new Date(windowStart.getTime() - (rule.trailingSeconds ?? 0) * 1000);
  return { current, baseline: await aggregate(db, monitor, rule, trailingStart, windowStart, true) };
}
