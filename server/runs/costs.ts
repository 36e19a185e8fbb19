// Cost figures over a period, from the tasks themselves: each module task that executed counts its last attempt's
// execution time, and that time × the GPUs it asked for (a CPU-only task: GPU-seconds 0, execution seconds still).
// Tasks completed from cache or reused executed nothing and count nothing. Grouped by the team owning the run's
// workflow, the workflow, or the model the task served (its model inputs) or registered; a task of two models
// counts in both. A team's members see its own figures; admins see every team's. Read from the hourly rollups and,
// for the hour the period starts inside, from the tasks (figure-hours.ts).
import { type SQL, sql } from 'drizzle-orm';
import { type Db, queryRows } from '../db/client';
import { type PeriodHours, periodHours, splitHourTasks, wholeHours } from './figure-hours';

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
  model: sql`f.model`,
} as const;

/** A task that executed: the figures count it (a cache hit or a reused result executed nothing). */
const executed = sql`t.kind = 'module' and t.execution_ms is not null and t.cache_source_task_id is null and t.reused_from_task_id is null`;

const modelInputs = sql`cross join lateral (select distinct p.value->>'model' as model from jsonb_each(coalesce(t.models, '{}'::jsonb)) p) mm`;

/** Each counted task (once, or once per model: a task of two models counts in both) with its workflow and figures. */
function counted(groupBy: CostGrouping, p: PeriodHours): SQL {
  const figures = sql`1 as executed, t.execution_ms::bigint as execution_ms, t.execution_ms::bigint * t.gpus as gpu_ms`;
  if (groupBy !== 'model')
    return sql`select h.workflow_id, h.executed, h.execution_ms, h.gpu_ms from task_figures_hourly h
        where ${wholeHours('h', p)} and (h.executed <> 0 or h.execution_ms <> 0 or h.gpu_ms <> 0)
      union all
      select r.workflow_id, ${figures} ${splitHourTasks(p)} and ${executed}`;
  // The models it served (pinned model inputs), kept by hour too; the models it registered, read from their versions
  // (registering one can come after the task ended), leaving out those it also took as an input.
  return sql`select h.workflow_id, h.model, h.executed, h.execution_ms, h.gpu_ms from task_model_costs_hourly h where ${wholeHours('h', p)}
    union all
    select r.workflow_id, mm.model, ${figures} ${splitHourTasks(p, modelInputs)} and ${executed}
    union all
    select r.workflow_id, reg.model, ${figures}
    from (select distinct mv.task_id, rm.namespace || '/' || rm.name as model
          from model_versions mv join registered_models rm on rm.id = mv.model_id) reg
      join tasks t on t.id = reg.task_id
      join runs r on r.id = t.run_id
    where t.finished_at >= ${p.start.toISOString()}::timestamptz and ${executed}
      and not exists (select 1 from jsonb_each(coalesce(t.models, '{}'::jsonb)) p where p.value->>'model' = reg.model)`;
}

export async function costFigures(db: Db, since: Date, groupBy: CostGrouping, viewer: CostViewer): Promise<CostRow[]> {
  const visible = viewer.admin ? sql`true` : sql`w.team_id in (select team_id from team_members where identity_id = ${viewer.identityId})`;
  const rows = await queryRows<{ group: string; tasks: number; execution_ms: string | number | null; gpu_ms: string | number | null }>(
    db,
    sql`select ${groupExpr[groupBy]} as "group", sum(f.executed)::int as tasks, sum(f.execution_ms) as execution_ms, sum(f.gpu_ms) as gpu_ms
        from (${counted(groupBy, periodHours([since], true))}) f
        join workflows w on w.id = f.workflow_id
        left join teams tm on tm.id = w.team_id
        where ${visible}
        group by 1 having sum(f.executed) > 0 order by 1`,
  );
  return rows.map((r) => ({
    group: r.group,
    tasks: r.tasks,
    executionHours: Number(r.execution_ms ?? 0) / 3_600_000,
    gpuHours: Number(r.gpu_ms ?? 0) / 3_600_000,
  }));
}
