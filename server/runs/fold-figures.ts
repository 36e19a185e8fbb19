// Folds the hourly rollups' changes (server/db/tables/task-figures.ts): the triggers on `tasks` add a row per key for
// each statement that ends tasks, never updating one (two transactions ending tasks of one workflow would otherwise
// wait on each other's row, and could deadlock); a fold replaces a key's rows with their sum, in one statement, so a
// reader sees the rows before or the sum after, never both. A change committed after the fold began stays a row of
// its own until the next fold. Any hour may be folded at any time: nothing here waits for an hour to close.
import { sql } from 'drizzle-orm';
import { type Db, queryRows } from '../db/client';

/** Keys folded at most per table and pass (the oldest hours first): a long backlog takes several passes. */
const FOLD_BATCH = 5000;

export interface Folded {
  figures: number;
  modelCosts: number;
}

/** One pass over both rollups: each key with a change not yet folded becomes one row. */
export async function foldTaskFigures(db: Db): Promise<Folded> {
  const [figures] = await queryRows<{ n: number }>(
    db,
    sql`with keys as (
          select distinct hour, workflow_id, domain, module_version_id from task_figures_hourly where not folded order by hour limit ${FOLD_BATCH}
        ), gone as (
          delete from task_figures_hourly f using keys k
          where f.hour = k.hour and f.workflow_id = k.workflow_id and f.domain = k.domain and f.module_version_id is not distinct from k.module_version_id
          returning f.*
        ), added as (
          insert into task_figures_hourly (hour, workflow_id, domain, module_version_id, executed, execution_ms, gpu_ms, hits, misses, saved_ms, folded)
          select * from (
            select hour, workflow_id, domain, module_version_id, sum(executed) as executed, sum(execution_ms) as execution_ms, sum(gpu_ms) as gpu_ms,
              sum(hits) as hits, sum(misses) as misses, sum(saved_ms) as saved_ms, true
            from gone group by 1, 2, 3, 4
          ) g
          where g.executed <> 0 or g.execution_ms <> 0 or g.gpu_ms <> 0 or g.hits <> 0 or g.misses <> 0 or g.saved_ms <> 0
          returning 1
        )
        select (select count(*) from keys)::int as n`,
  );
  const [modelCosts] = await queryRows<{ n: number }>(
    db,
    sql`with keys as (
          select distinct hour, workflow_id, model from task_model_costs_hourly where not folded order by hour limit ${FOLD_BATCH}
        ), gone as (
          delete from task_model_costs_hourly f using keys k
          where f.hour = k.hour and f.workflow_id = k.workflow_id and f.model is not distinct from k.model
          returning f.*
        ), added as (
          insert into task_model_costs_hourly (hour, workflow_id, model, executed, execution_ms, gpu_ms, folded)
          select * from (
            select hour, workflow_id, model, sum(executed) as executed, sum(execution_ms) as execution_ms, sum(gpu_ms) as gpu_ms, true
            from gone group by 1, 2, 3
          ) g
          where g.executed <> 0 or g.execution_ms <> 0 or g.gpu_ms <> 0
          returning 1
        )
        select (select count(*) from keys)::int as n`,
  );
  return { figures: figures?.n ?? 0, modelCosts: modelCosts?.n ?? 0 };
}
