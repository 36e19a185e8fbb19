// A rollout's gates, measured: each gate's metric aggregated over the observations of the NEW revision's model
// version since its step began, then judged by the monitors' own pure rule (server/monitoring/rules.ts
// evaluateRule). A REGRESSION gate's baseline is the version's evaluation metric (EVALUATION) or, for TRAILING, the
// same aggregate over the OLD revision's version in the same window (the canary against what it replaces). A gate
// with no observations in its window is reported missing; the policy's `noData` decides (rollout.ts). A `serving.*`
// metric is what this deployment's router measured of that revision, recorded by the control plane (serving.ts): the
// same version served by another deployment (another domain's, one whose traffic anyone could send) never counts.
import { and, eq, gte, isNull, lte, type SQL, sql } from 'drizzle-orm';
import type { Db, Tx } from '../db/client';
import type { GateResult, RolloutGate } from '../db/tables/deployments';
import { observations } from '../db/tables/monitoring';
import { type ModelVersion, modelVersions } from '../db/tables/registry';
import { metricSummaries } from '../db/tables/tracking';
import { evaluateRule, type MonitorRule } from '../monitoring/rules';
import { metricValues } from '../registry/lineage';
import { isServingMetric } from '../vocabulary';
import type { GateVerdict } from './rollout';

/** Whose observations a gate reads: the revision's model version, and for a serving metric that revision's own. */
interface Measured {
  versionId: string;
  deployment: string;
  revision: number;
}

function scope(of: Measured, metric: string): SQL | undefined {
  if (!isServingMetric(metric)) return eq(observations.versionId, of.versionId);
  return and(
    eq(observations.versionId, of.versionId),
    isNull(observations.recordedBy),
    sql`${observations.dimensions}->>'deployment' = ${of.deployment}`,
    sql`${observations.dimensions}->>'revision' = ${String(of.revision)}`,
  );
}

async function aggregate(db: Db | Tx, of: Measured, metric: string, rule: MonitorRule, from: Date, to: Date): Promise<number | null> {
  const [row] = await db
    .select({
      count: sql<number>`count(*)::int`,
      mean: sql<number | null>`avg(${observations.value})::float8`,
      min: sql<number | null>`min(${observations.value})`,
      max: sql<number | null>`max(${observations.value})`,
      last: sql<number | null>`(array_agg(${observations.value} order by ${observations.at} desc))[1]`,
    })
    .from(observations)
    .where(and(scope(of, metric), eq(observations.metric, metric), gte(observations.at, from), lte(observations.at, to)));
  if (!row || row.count === 0) return null;
  const value = { MEAN: row.mean, MIN: row.min, MAX: row.max, LAST: row.last, COUNT: row.count }[rule.aggregate];
  return value === null || value === undefined ? null : Number(value);
}

async function evaluationBaseline(db: Db | Tx, version: ModelVersion, metric: string): Promise<number | null> {
  const metrics = await db.select().from(metricSummaries).where(eq(metricSummaries.runId, version.runId));
  const value = metricValues(version, metrics).get(metric);
  return value === undefined || !Number.isFinite(value) ? null : value;
}

/** The gates' verdict for the new version since `since` (the first breach names the gate and why). */
export async function measureGates(
  db: Db | Tx,
  gates: RolloutGate[],
  input: {
    /** The deployment's name and the revisions the rollout moves from and to (serving metrics are theirs only). */
    deployment: string;
    newRevision: number;
    oldRevision: number | null;
    newVersionId: string;
    oldVersionId: string | null;
    since: Date;
    now: Date;
    step: number;
  },
): Promise<GateVerdict> {
  if (!gates.length) return { breach: null, missing: [], results: [] };
  const missing: string[] = [];
  // Every gate is measured (not only up to the first breach), so people see each one's verdict beside the decision.
  const results: GateResult[] = [];
  let breach: string | null = null;
  const result = (gate: RolloutGate, rule: MonitorRule, r: Pick<GateResult, 'status' | 'value' | 'baseline' | 'message'>) =>
    results.push({ metric: gate.metric, rule: rule.id, step: input.step, measuredAt: input.now.toISOString(), ...r });
  const [version] = await db.select().from(modelVersions).where(eq(modelVersions.id, input.newVersionId));
  for (const gate of gates) {
    const rule = gate.rule as unknown as MonitorRule;
    const current = await aggregate(
      db,
      { versionId: input.newVersionId, deployment: input.deployment, revision: input.newRevision },
      gate.metric,
      rule,
      input.since,
      input.now,
    );
    if (current === null) {
      missing.push(gate.metric);
      result(gate, rule, { status: 'NO_DATA', value: null, baseline: null, message: `no observations of ${gate.metric} from the new revision in the window` });
      continue;
    }
    let baseline: number | null = null;
    if (rule.kind === 'REGRESSION')
      baseline =
        rule.baseline === 'EVALUATION'
          ? version
            ? await evaluationBaseline(db, version, rule.evaluationMetric ?? gate.metric)
            : null
          : input.oldVersionId && input.oldRevision !== null
            ? await aggregate(
                db,
                { versionId: input.oldVersionId, deployment: input.deployment, revision: input.oldRevision },
                gate.metric,
                rule,
                input.since,
                input.now,
              )
            : null;
    const verdict = evaluateRule({ ...rule, consecutive: 1 }, { current, baseline }, undefined);
    if (verdict.status === 'BREACH') {
      breach ??= `${gate.metric} (${rule.id}): ${verdict.message}`;
      result(gate, rule, { status: 'BREACH', value: current, baseline, message: verdict.message });
    } else result(gate, rule, { status: verdict.status === 'NO_DATA' ? 'NO_DATA' : 'PASS', value: current, baseline, message: null });
  }
  return { breach, missing, results };
}
