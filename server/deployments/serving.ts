// Serving observations: what a deployer's router measured of each revision's traffic (DeploymentStatus.serving,
// counters since the router's epoch) is recorded, once a window (ATELIER_DEPLOYMENT_STATS_MS) for each revision that
// had traffic in it, as observations of the revision's model version (of the alias a deployment follows, that version
// named): `serving.requests`, `serving.error_rate`,
// `serving.latency_p50_ms`, `serving.latency_p99_ms`, with the deployment and revision as dimensions. A rollout's
// gates and monitors read them as any other observation, so a canary gated on its error rate or latency needs nothing
// from the model. Differences are taken against the counters this replica last recorded (in memory): a replica that
// takes a deployment over starts from what it first sees; a router started again (a new epoch) counts from zero; a
// window whose insert failed is counted in the next one (or found written after all), never lost nor written twice.
import { sql } from 'drizzle-orm';
import { bucketBoundMs, type DeploymentStatus, type ServingStats } from '../../plugins/deployer-sdk';
import { arrayOf } from '../db/arrays';
import { type Db, queryRows } from '../db/client';
import type { DeploymentRevisionRow, DeploymentRow } from '../db/tables/deployments';
import { observations } from '../db/tables/monitoring';
import { SERVING_METRICS } from '../vocabulary';

type Counters = ServingStats['revisions'][number];

interface Seen {
  epoch: string;
  /** When these counters were recorded up to (ms since the epoch of Date). */
  at: number;
  revisions: ServingStats['revisions'];
  /**
   * A window whose insert failed: it may have committed all the same (Postgres went away before answering). Looked
   * up before the next window: recorded, its counters are the base; not, the next window takes its requests in.
   */
  unsure?: Seen & { versionId: string };
}

/** The latency below which a share `q` of the histogram's requests fall: its bucket's upper bound, in ms. */
export function percentile(buckets: readonly number[], q: number, shape: Pick<ServingStats, 'firstMs' | 'growth' | 'boundsMs'>): number {
  const total = buckets.reduce((s, n) => s + n, 0);
  let seen = 0;
  for (let i = 0; i < buckets.length; i++) {
    seen += buckets[i]!;
    if (seen >= q * total && seen > 0) return Math.round(bucketBoundMs(shape, i, buckets.length) * 1000) / 1000;
  }
  return 0;
}

const minus = (now: Counters, before: Counters | undefined): Counters => ({
  requests: now.requests - (before?.requests ?? 0),
  errors: now.errors - (before?.errors ?? 0),
  buckets: now.buckets.map((n, i) => n - (before?.buckets[i] ?? 0)),
});

/**
 * A recorder for one replica's reconciler: `record` is given each deployment's status as a pass reads it, and writes
 * the observations of a window once it has passed (returning how many); `forget` drops a deleted deployment's counters.
 */
export function createServingRecorder(db: Db, windowMs: number) {
  const seen = new Map<string, Seen>();
  const forget = (deploymentId: string) => void seen.delete(deploymentId);
  async function record(d: DeploymentRow, revisions: DeploymentRevisionRow[], status: DeploymentStatus | null, now: Date): Promise<number> {
    const stats = status?.serving;
    if (!stats) return 0;
    const before = await settled(d, seen.get(d.id));
    const at = now.getTime();
    // First sight on this replica: what came before may have been recorded elsewhere; count from here.
    if (!before) {
      seen.set(d.id, { epoch: stats.epoch, at, revisions: stats.revisions });
      return 0;
    }
    if (before.epoch === stats.epoch && at - before.at < windowMs) return 0;
    const base = before.epoch === stats.epoch ? before.revisions : {}; // a new router counts from zero
    const next: Seen = { epoch: stats.epoch, at, revisions: stats.revisions };
    const versionOf = new Map(revisions.map((r) => [r.number, r.modelVersionId]));
    const rows: (typeof observations.$inferInsert)[] = [];
    for (const [number, counters] of Object.entries(stats.revisions)) {
      const versionId = versionOf.get(Number(number));
      const window = minus(counters, base[Number(number)]);
      if (!versionId || window.requests <= 0 || window.buckets.some((n) => n < 0)) continue;
      const values: Record<(typeof SERVING_METRICS)[number], number> = {
        'serving.requests': window.requests,
        'serving.error_rate': Math.min(1, Math.max(0, window.errors) / window.requests),
        'serving.latency_p50_ms': percentile(window.buckets, 0.5, stats),
        'serving.latency_p99_ms': percentile(window.buckets, 0.99, stats),
      };
      // A deployment following an alias serves the alias: its monitors see the traffic too (gates read the version).
      for (const metric of SERVING_METRICS)
        rows.push({
          targetKind: d.alias ? 'ALIAS' : 'MODEL_VERSION',
          targetId: d.alias ? d.modelId : versionId,
          alias: d.alias,
          versionId,
          teamId: d.teamId,
          metric,
          value: values[metric],
          at: now,
          dimensions: { deployment: d.name, revision: number },
          recordedBy: null,
        });
    }
    // Only a window that was written moves the base on: one whose insert failed (Postgres restarting) was lost before.
    if (rows.length)
      await db
        .insert(observations)
        .values(rows)
        .catch((error) => {
          seen.set(d.id, { ...before, unsure: { ...next, versionId: rows[0]!.versionId! } });
          throw error;
        });
    seen.set(d.id, next);
    return rows.length;
  }
  /** `before` with its unsure window (if any) found written or not; throws while the database cannot say. */
  async function settled(d: DeploymentRow, before: Seen | undefined): Promise<Seen | undefined> {
    if (!before?.unsure) return before;
    const { unsure, ...rest } = before;
    const [written] = await queryRows<{ one: number }>(
      db,
      sql`select 1 as one from observations where version_id = ${unsure.versionId}::uuid and metric = 'serving.requests'
        and at = ${new Date(unsure.at).toISOString()}::timestamptz and dimensions->>'deployment' = ${d.name} limit 1`,
    );
    const now: Seen = written ? { epoch: unsure.epoch, at: unsure.at, revisions: unsure.revisions } : rest;
    seen.set(d.id, now);
    return now;
  }
  return { record, forget };
}

export type ServingRecorder = ReturnType<typeof createServingRecorder>;

/** A revision's last recorded window of serving observations. */
export interface RevisionServing {
  at: Date;
  requests: number;
  errorRate: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
}

/** The last window recorded for revision `number` of deployment `deploymentId` (its version's), or null: no traffic yet. */
export async function lastServingWindow(db: Db, deploymentId: string, number: number, versionId: string): Promise<RevisionServing | null> {
  const rows = await queryRows<{ metric: string; value: number; at: Date }>(
    db,
    // Each metric's newest row, read backwards down (version, metric, at) and stopped at the first of this revision's:
    // a DISTINCT ON over the version's rows read every window ever recorded (a week of 10 s windows: ~1 s a revision,
    // each time a page or `deploy show` asks, times every alias of a query).
    sql`select m.metric, o.value, o.at from deployments d cross join unnest(${arrayOf(SERVING_METRICS, 'text')}) as m(metric)
      cross join lateral (
        select o.value, o.at from observations o
        where o.version_id = ${versionId}::uuid and o.metric = m.metric and o.recorded_by is null
          and o.dimensions->>'deployment' = d.name and o.dimensions->>'revision' = ${String(number)}
        order by o.at desc limit 1
      ) o
      where d.id = ${deploymentId}::uuid`,
  );
  const of = new Map(rows.map((r) => [r.metric, r]));
  const requests = of.get('serving.requests');
  if (!requests) return null;
  const value = (metric: (typeof SERVING_METRICS)[number]) => of.get(metric)?.value ?? 0;
  return {
    at: new Date(requests.at),
    requests: requests.value,
    errorRate: value('serving.error_rate'),
    latencyP50Ms: value('serving.latency_p50_ms'),
    latencyP99Ms: value('serving.latency_p99_ms'),
  };
}
