// Cache savings over a period, from the tasks themselves: every looked-up task that ended is a hit (completed from
// cache, saving its source's execution time) or a miss (it executed). "team" is the team owning the run's workflow,
// as in the cost figures (server/runs/costs.ts), so both pages' teams are the same teams. Counts are derived from
// runs, so they count only runs of the domains whose outputs the caller may read: another domain's workflows and
// their activity do not show. Read from the hourly rollup and, for the hours a boundary lies inside, from the tasks.
import { type SQL, sql } from 'drizzle-orm';
import { type Db, queryRows } from '../db/client';
import { badInput } from '../errors';
import { NO_TEAM } from '../runs/costs';
import { boundaryArray, type PeriodHours, periodHours, splitHourTasks, wholeHours } from '../runs/figure-hours';
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

/** A looked-up task that ended (a hit completed from cache, or a miss that executed). */
const lookedUp = sql`t.cache_key is not null and t.module_version_id is not null and t.status in ('SUCCEEDED', 'FAILED', 'TIMED_OUT')`;

/**
 * The period's hits, misses and saved ms by workflow, domain and module version (and `bucket`, for `boundaries`): its
 * whole hours from the rollup, the hours a boundary lies inside from the tasks (runs/figure-hours.ts).
 */
function counted(p: PeriodHours, boundaries?: Date[]): SQL {
  const bucket = (at: SQL) => (boundaries ? sql`width_bucket(${at}, ${boundaryArray(boundaries)}) as bucket,` : sql``);
  return sql`select ${bucket(sql`h.hour`)} h.workflow_id, h.domain, h.module_version_id, h.hits, h.misses, h.saved_ms
      from task_figures_hourly h where ${wholeHours('h', p)} and (h.hits <> 0 or h.misses <> 0 or h.saved_ms <> 0)
    union all
    select ${bucket(sql`t.finished_at`)} r.workflow_id, r.domain, t.module_version_id, (t.cache_source_task_id is not null)::int,
      (t.cache_source_task_id is null)::int, t.cache_saved_ms
    ${splitHourTasks(p)} and ${lookedUp}`;
}

/** The counted figures' runs: of a workflow, in a domain the caller may read, of a module. */
const readableOf = (readable: Domain[]) => sql`join workflows w on w.id = f.workflow_id
        left join teams tm on tm.id = w.team_id
        join module_versions mv on mv.id = f.module_version_id
        join modules m on m.id = mv.module_id
        where f.domain in (${sql.join(
          readable.map((d) => sql`${d}`),
          sql`, `,
        )})`;

export async function cacheStats(db: Db, since: Date, groupBy: CacheGrouping, readable: Domain[]): Promise<CacheStatsRow[]> {
  if (!readable.length) return [];
  const rows = await queryRows<{ group: string; hits: number; misses: number; saved_ms: string | number | null }>(
    db,
    sql`select ${groupExpr[groupBy]} as "group",
          sum(f.hits)::int as hits, sum(f.misses)::int as misses, sum(f.saved_ms) as saved_ms
        from (${counted(periodHours([since], true))}) f
        ${readableOf(readable)}
        group by 1 having sum(f.hits) + sum(f.misses) > 0 order by 1`,
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
  // width_bucket over the sorted boundaries: 1 for the first bucket (the period ends at the last boundary).
  const rows = await queryRows<{ bucket: number; hits: number; misses: number; saved_ms: string | number | null }>(
    db,
    sql`select f.bucket, sum(f.hits)::int as hits, sum(f.misses)::int as misses, sum(f.saved_ms) as saved_ms
        from (${counted(periodHours(boundaries, false), boundaries)}) f
        ${readableOf(readable)}
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
