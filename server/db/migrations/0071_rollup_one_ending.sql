-- The rollups' statement-level trigger on task updates (0064, 0070) writes an ended task's figures with one statement
-- of its own, read straight from the transition tables. Before, a statement that ended tasks built their figures into
-- an array and handed it through two more PL/pgSQL functions (task_figures_apply, task_figures_add) to an insert that
-- unnested and grouped it: six SQL statements in three functions for one ended task, each with its executor start and
-- end, its array parameter planned anew five times a session, and a hash aggregate set up for one row. A chain's edge
-- ends one task a statement; its ending cost ~0.13 ms of Postgres' time in task_figures_add and ~0.08 in the rest
-- (docs/performance.md, "The rollups' ending, cut").
--  * One guard statement tells apart what the statement did to ended rows: nothing (most updates: the enqueue, a
--    claim, a start, a heartbeat, the counting statement; as in 0070, it returns at once), one task ended and no ended
--    row changed otherwise (a task's end, one at a time), or anything else (S1's batches of ends, an end moved, figures
--    changed after an end, a task un-ended). The same statement asks whether any of those rows has model inputs.
--  * One task ended: its figures are inserted as one row, ungrouped (a single change is its own sum, and one that
--    adds nothing, neither executed nor looked up, is left out by the same condition as in the grouped insert).
--  * Anything else: the grouped insert of task_figures_add, from the transition tables instead of an array.
--  * What a row version adds is still task_figure_change alone. The subqueries that call it are kept from being
--    pulled up (`offset 0`): pulled up, every field read of its result inlines the function anew, and planning the
--    insert took ~0.75 ms against ~0.15 ms so, once per session and after each invalidation.
--  * Model inputs (rare) and deletions (retention) keep the array functions of 0064: task_model_costs_add, task_figures_apply.
CREATE OR REPLACE FUNCTION task_figures_statement_change() RETURNS trigger LANGUAGE plpgsql AS $$
declare
  -- 0: no ended row, before or after; 1: one task ended and no ended row changed otherwise; 2: anything else
  shape int;
  modelled boolean;
begin
  if tg_op = 'DELETE' then
    if exists (select from o where o.finished_at is not null) then
      perform task_figures_apply(array(select task_figure_change(o, -1) from o where o.finished_at is not null));
    end if;
    return null;
  end if;
  select s.shape, s.shape > 0 and (exists (select from n where n.finished_at is not null and n.models is not null)
      or exists (select from o where o.finished_at is not null and o.models is not null))
    into shape, modelled
    from (select case
        when exists (select from o where o.finished_at is not null) then 2
        when not exists (select from n where n.finished_at is not null) then 0
        when exists (select from n where n.finished_at is not null offset 1) then 2
        else 1 end as shape
      offset 0) s;
  if shape = 0 then
    return null;
  elsif shape = 1 then
    insert into task_figures_hourly (hour, workflow_id, domain, module_version_id, executed, execution_ms, gpu_ms, hits, misses, saved_ms)
    select (c).hour, r.workflow_id, r.domain, (c).module_version_id,
      case when (c).executed then 1 else 0 end,
      case when (c).executed then (c).execution_ms else 0 end,
      case when (c).executed then (c).execution_ms * (c).gpus else 0 end,
      case when (c).looked and (c).hit then 1 else 0 end,
      case when (c).looked and not (c).hit then 1 else 0 end,
      case when (c).looked then coalesce((c).saved_ms, 0) else 0 end
    from (select task_figure_change(n, 1) as c from n where n.finished_at is not null offset 0) x
      join runs r on r.id = (c).run_id
    where r.workflow_id is not null and ((c).executed or (c).looked);
  else
    insert into task_figures_hourly (hour, workflow_id, domain, module_version_id, executed, execution_ms, gpu_ms, hits, misses, saved_ms)
    select * from (
      select (c).hour, r.workflow_id, r.domain, (c).module_version_id,
        sum(case when (c).executed then (c).sign else 0 end) as executed,
        sum(case when (c).executed then (c).sign * (c).execution_ms else 0 end) as execution_ms,
        sum(case when (c).executed then (c).sign * (c).execution_ms * (c).gpus else 0 end) as gpu_ms,
        sum(case when (c).looked and (c).hit then (c).sign else 0 end) as hits,
        sum(case when (c).looked and not (c).hit then (c).sign else 0 end) as misses,
        sum(case when (c).looked then (c).sign * coalesce((c).saved_ms, 0) else 0 end) as saved_ms
      from (select task_figure_change(n, 1) as c from n where n.finished_at is not null
        union all select task_figure_change(o, -1) from o where o.finished_at is not null offset 0) x
        join runs r on r.id = (c).run_id
      where r.workflow_id is not null and ((c).executed or (c).looked)
      group by 1, 2, 3, 4
    ) g
    where g.executed <> 0 or g.execution_ms <> 0 or g.gpu_ms <> 0 or g.hits <> 0 or g.misses <> 0 or g.saved_ms <> 0;
  end if;
  if modelled then
    perform task_model_costs_add(array(select task_figure_change(n, 1) from n where n.finished_at is not null
      union all select task_figure_change(o, -1) from o where o.finished_at is not null));
  end if;
  return null;
end
$$;
