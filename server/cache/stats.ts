// Cache savings over a period, from the tasks themselves: every looked-up task that ended is a hit (completed from
// cache, saving its source's execution time) or a miss (it executed). "team" is the team owning the run's workflow,
// as in the cost figures (server/runs/costs.ts), so both pages' teams are the same teams. Counts are derived from
// runs, so they count only runs of the domains whose outputs the caller may read: another domain's workflows and
// their activity do not show.
import { sql } from 'drizzle-orm';
import { type Db, queryRows } from '../db/client';
import { badInput } from '../errors';
import { NO_TEAM } from '../runs/costs';
import type { Domain } from '../vocabulary';

export const cacheGroupings = ['team', 'workflow', 'module'] as const;
export type CacheGrouping = (typeof cacheGroupings)[number];

export interface CacheStatsRow {
  group: string;
  hits: number;
  misses: number;
  hitRate: number;
  savedHours: number;
}

const groupExpr = {
  team: sql`coalesce(tm.name, ${NO_TEAM})`,
  module: sql`m.namespace || '/' || m.name`,
  workflow: sql`w.name`,
} as const;

/** The tasks counted, from the same joins and conditions for both reads below. */
const counted = (readable: Domain[], from: Date) => sql`from tasks t
        join module_versions mv on mv.id = t.module_version_id
        join modules m on m.id = mv.module_id
        join runs r on r.id = t.run_id
        join workflows w on w.id = r.workflow_id
        left join teams tm on tm.id = w.team_id
        where t.cache_key is not null and t.finished_at >= ${from.toISOString()}::timestamptz
          and t.status in ('SUCCEEDED', 'FAILED', 'TIMED_OUT')
          and r.domain in (${sql.join(
            readable.map((d) => sql`${d}`),
            sql`, `,
          )})`;

export async function cacheStats(db: Db, since: Date, groupBy: CacheGrouping, readable: Domain[]): Promise<CacheStatsRow[]> {
  if (!readable.length) return [];
  const rows = await queryRows<{ group: string; hits: number; misses: number; saved_ms: string | number | null }>(
    db,
    sql`select ${groupExpr[groupBy]} as "group",
          count(*) filter (where t.cache_source_task_id is not null)::int as hits,
          count(*) filter (where t.cache_source_task_id is null)::int as misses,
          sum(t.cache_saved_ms) as saved_ms
        ${counted(readable, since)}
        group by 1 order by 1`,
  );
  return rows.map((r) => ({
    group: r.group,
    hits: r.hits,
    misses: r.misses,
    hitRate: r.hits + r.misses ? r.hits / (r.hits + r.misses) : 0,
    savedHours: Number(r.saved_ms ?? 0) / 3_600_000,
  }));
}

export interface SavingsBucket {
  start: Date;
  end: Date;
  hits: number;
  misses: number;
  savedHours: number;
}

/** The most buckets one read answers: a year of days, a fortnight of hours. */
export const MAX_BUCKETS = 400;

/**
 * Hits, misses and hours saved between consecutive boundaries (the caller's: local days, whole hours), in one read of
 * the period's tasks; a chart of N buckets asked N reads of everything since each boundary before.
 */
export async function cacheSavingsOverTime(db: Db, boundaries: Date[], readable: Domain[]): Promise<SavingsBucket[]> {
  if (boundaries.length < 2 || boundaries.length > MAX_BUCKETS + 1)
    throw badInput(`Give between 2 and ${MAX_BUCKETS + 1} boundaries (${boundaries.length} given): each bucket lies between two.`);
  if (boundaries.some((b, i) => i > 0 && b.getTime() <= boundaries[i - 1]!.getTime()))
    throw badInput('Boundaries must be in increasing order, each later than the one before.');
  const buckets = boundaries.slice(0, -1).map((start, i) => ({ start, end: boundaries[i + 1]!, hits: 0, misses: 0, savedHours: 0 }));
  if (!readable.length) return buckets;
  const last = boundaries[boundaries.length - 1]!;
  // width_bucket over the sorted boundaries: 1 for the first bucket; a task at or after the last boundary is left out.
  const rows = await queryRows<{ bucket: number; hits: number; misses: number; saved_ms: string | number | null }>(
    db,
    sql`select width_bucket(t.finished_at, ${`{${boundaries.map((b) => b.toISOString()).join(',')}}`}::timestamptz[]) as bucket,
          count(*) filter (where t.cache_source_task_id is not null)::int as hits,
          count(*) filter (where t.cache_source_task_id is null)::int as misses,
          sum(t.cache_saved_ms) as saved_ms
        ${counted(readable, boundaries[0]!)} and t.finished_at < ${last.toISOString()}::timestamptz
        group by 1`,
  );
  for (const r of rows) {
    const bucket = buckets[r.bucket - 1];
    if (!bucket) continue;
    bucket.hits = r.hits;
    bucket.misses = r.misses;
    bucket.savedHours = Number(r.saved_ms ?? 0) / 3_600_000;
  }
  return buckets;
}
