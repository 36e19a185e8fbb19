// Cost figures over a period, from the tasks themselves: each module task that executed counts its last attempt's
// execution time, and that time × the GPUs it asked for (a CPU-only task: GPU-seconds 0, execution seconds still).
// Tasks completed from cache or reused executed nothing and count nothing. Grouped by the team owning the run's
// workflow, the workflow, or the model the task served (its model inputs) or registered; a task of two models
// counts in both. A team's members see its own figures; admins see every team's.
import { sql } from 'drizzle-orm';
import { type Db, queryRows } from '../db/client';

export const costGroupings = ['team', 'workflow', 'model'] as const;
export type CostGrouping = (typeof costGroupings)[number];

export interface CostRow {
  group: string;
  tasks: number;
  executionHours: number;
  gpuHours: number;
}

/** Whose figures a caller sees: an admin every team's, anyone else the teams it is a member of. */
export type CostViewer = { admin: true } | { admin: false; identityId: string };

export const NO_TEAM = '(no team)';

const groupExpr = {
  team: sql`coalesce(tm.name, ${NO_TEAM})`,
  workflow: sql`w.name`,
  model: sql`mm.model`,
} as const;

// The models a task served (pinned model inputs) or registered (versions whose producing task it is).
const modelsOfTask = sql`cross join lateral (
    select p.value->>'model' as model from jsonb_each(coalesce(t.models, '{}'::jsonb)) p
    union
    select rm.namespace || '/' || rm.name from model_versions mv join registered_models rm on rm.id = mv.model_id where mv.task_id = t.id
  ) mm`;

export async function costFigures(db: Db, since: Date, groupBy: CostGrouping, viewer: CostViewer): Promise<CostRow[]> {
  const visible = viewer.admin ? sql`true` : sql`w.team_id in (select team_id from team_members where identity_id = ${viewer.identityId})`;
  const rows = await queryRows<{ group: string; tasks: number; execution_ms: string | number | null; gpu_ms: string | number | null }>(
    db,
    sql`select ${groupExpr[groupBy]} as "group", count(*)::int as tasks,
          sum(t.execution_ms) as execution_ms, sum(t.execution_ms::bigint * t.gpus) as gpu_ms
        from tasks t
        join runs r on r.id = t.run_id
        join workflows w on w.id = r.workflow_id
        left join teams tm on tm.id = w.team_id
        ${groupBy === 'model' ? modelsOfTask : sql``}
        where t.kind = 'module' and t.execution_ms is not null and t.finished_at >= ${since.toISOString()}::timestamptz
          and t.cache_source_task_id is null and t.reused_from_task_id is null and ${visible}
        group by 1 order by 1`,
  );
  return rows.map((r) => ({
    group: r.group,
    tasks: r.tasks,
    executionHours: Number(r.execution_ms ?? 0) / 3_600_000,
    gpuHours: Number(r.gpu_ms ?? 0) / 3_600_000,
  }));
}
