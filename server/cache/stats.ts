// Cache savings over a period, from the tasks themselves: every looked-up task that ended is a hit (completed from
// cache, saving its source's execution time) or a miss (it executed). "team" is the team owning the run's workflow,
// as in the cost figures (server/runs/costs.ts), so both pages' teams are the same teams. Counts are derived from
// runs, so they count only runs of the domains whose outputs the caller may read: another domain's workflows and
// their activity do not show.
import { sql } from 'drizzle-orm';
import { type Db, queryRows } from '../db/client';
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

export async function cacheStats(db: Db, since: Date, groupBy: CacheGrouping, readable: Domain[]): Promise<CacheStatsRow[]> {
  if (!readable.length) return [];
  const rows = await queryRows<{ group: string; hits: number; misses: number; saved_ms: string | number | null }>(
    db,
    sql`select ${groupExpr[groupBy]} as "group",
          count(*) filter (where t.cache_source_task_id is not null)::int as hits,
          count(*) filter (where t.cache_source_task_id is null)::int as misses,
          sum(t.cache_saved_ms) as saved_ms
        from tasks t
        join module_versions mv on mv.id = t.module_version_id
        join modules m on m.id = mv.module_id
        join runs r on r.id = t.run_id
        join workflows w on w.id = r.workflow_id
        left join teams tm on tm.id = w.team_id
        where t.cache_key is not null and t.finished_at >= ${since.toISOString()}::timestamptz
          and t.status in ('SUCCEEDED', 'FAILED', 'TIMED_OUT')
          and r.domain in (${sql.join(
            readable.map((d) => sql`${d}`),
            sql`, `,
          )})
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
