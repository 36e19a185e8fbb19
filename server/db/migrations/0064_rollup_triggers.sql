-- The hourly rollups' triggers again (0063 made them; server/db/tables/task-figures.ts says what the rollups are), with
-- what each row adds written once and each rollup's insert written once, and nothing run for the tasks a statement
-- inserts without an end (every run's start inserts all its tasks so).
--  * task_figure_change(task, sign): what one row version adds to the figures (sign 1) or takes back (sign -1).
--  * task_figures_add / task_model_costs_add: one rollup's rows for a set of changes, one row per hour and key.
--  * Updates and deletes keep statement-level triggers with transition tables: measured against row-level triggers
--    with WHEN conditions (docs/performance.md, "The rollup triggers by design"), one set-based insert per statement
--    costs the batches of ends that S1 sends 4-6 times less than a trigger call per ended row, and copying the rows
--    into the transition tables costs little CPU. Such a statement's trigger reads each transition table once.
--  * Inserts get a row-level trigger whose WHEN skips every task not yet ended: only copies and restores of ended
--    tasks (rare) run it.
DROP TRIGGER task_figures_insert ON tasks;--> statement-breakpoint
DROP TRIGGER task_figures_update ON tasks;--> statement-breakpoint
DROP TRIGGER task_figures_delete ON tasks;--> statement-breakpoint
DROP FUNCTION task_figures_change();--> statement-breakpoint
CREATE TYPE task_figure_change AS (
  sign int, run_id uuid, hour timestamptz, module_version_id uuid, executed boolean, looked boolean, hit boolean,
  execution_ms bigint, gpus int, saved_ms bigint, models jsonb
);--> statement-breakpoint
-- Executed: ran a module here (the cost figures). Looked: its cache key was looked up and it ended as a lookup can
-- (the savings figures); a hit if served from cache. Hour: its end, rounded down to the hour (UTC).
CREATE FUNCTION task_figure_change(t tasks, sign int) RETURNS task_figure_change LANGUAGE sql STABLE AS $$
  select row(sign, t.run_id, date_bin('1 hour', t.finished_at, '2000-01-01 00:00:00+00'), t.module_version_id,
    t.kind = 'module' and t.execution_ms is not null and t.cache_source_task_id is null and t.reused_from_task_id is null,
    t.cache_key is not null and t.status in ('SUCCEEDED', 'FAILED', 'TIMED_OUT') and t.module_version_id is not null,
    t.cache_source_task_id is not null, t.execution_ms, t.gpus, t.cache_saved_ms, t.models)::task_figure_change
$$;--> statement-breakpoint
-- A row per key whose sums moved: an update that leaves a task's figures as they were adds nothing.
CREATE FUNCTION task_figures_add(changes task_figure_change[]) RETURNS void LANGUAGE plpgsql AS $$
begin
  insert into task_figures_hourly (hour, workflow_id, domain, module_version_id, executed, execution_ms, gpu_ms, hits, misses, saved_ms)
  select * from (
    select c.hour, r.workflow_id, r.domain, c.module_version_id,
      sum(case when c.executed then c.sign else 0 end) as executed,
      sum(case when c.executed then c.sign * c.execution_ms else 0 end) as execution_ms,
      sum(case when c.executed then c.sign * c.execution_ms * c.gpus else 0 end) as gpu_ms,
      sum(case when c.looked and c.hit then c.sign else 0 end) as hits,
      sum(case when c.looked and not c.hit then c.sign else 0 end) as misses,
      sum(case when c.looked then c.sign * coalesce(c.saved_ms, 0) else 0 end) as saved_ms
    from unnest(changes) c join runs r on r.id = c.run_id
    where r.workflow_id is not null and (c.executed or c.looked)
    group by 1, 2, 3, 4
  ) g
  where g.executed <> 0 or g.execution_ms <> 0 or g.gpu_ms <> 0 or g.hits <> 0 or g.misses <> 0 or g.saved_ms <> 0;
end
$$;--> statement-breakpoint
CREATE FUNCTION task_model_costs_add(changes task_figure_change[]) RETURNS void LANGUAGE plpgsql AS $$
begin
  insert into task_model_costs_hourly (hour, workflow_id, model, executed, execution_ms, gpu_ms)
  select * from (
    select c.hour, r.workflow_id, m.model, sum(c.sign) as executed, sum(c.sign * c.execution_ms) as execution_ms,
      sum(c.sign * c.execution_ms * c.gpus) as gpu_ms
    from unnest(changes) c join runs r on r.id = c.run_id
      cross join lateral (select distinct p.value->>'model' as model from jsonb_each(c.models) p) m
    where r.workflow_id is not null and c.executed and c.models is not null
    group by 1, 2, 3
  ) g
  where g.executed <> 0 or g.execution_ms <> 0 or g.gpu_ms <> 0;
end
$$;--> statement-breakpoint
CREATE FUNCTION task_figures_apply(changes task_figure_change[]) RETURNS void LANGUAGE plpgsql AS $$
begin
  perform task_figures_add(changes);
  if exists (select from unnest(changes) c where c.models is not null) then
    perform task_model_costs_add(changes);
  end if;
end
$$;--> statement-breakpoint
-- An update's or a deletion's ended rows, as they were (taken back) and as they are (added); most updates (dispatch,
-- starts, heartbeats) end no task and stop after one pass over each transition table.
CREATE FUNCTION task_figures_statement_change() RETURNS trigger LANGUAGE plpgsql AS $$
declare
  changes task_figure_change[];
begin
  if tg_op = 'UPDATE' then
    changes := array(select task_figure_change(n, 1) from n where n.finished_at is not null
      union all select task_figure_change(o, -1) from o where o.finished_at is not null);
  else
    changes := array(select task_figure_change(o, -1) from o where o.finished_at is not null);
  end if;
  if cardinality(changes) > 0 then
    perform task_figures_apply(changes);
  end if;
  return null;
end
$$;--> statement-breakpoint
CREATE FUNCTION task_figures_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
begin
  perform task_figures_apply(array[task_figure_change(new, 1)]);
  return null;
end
$$;--> statement-breakpoint
CREATE TRIGGER task_figures_insert AFTER INSERT ON tasks FOR EACH ROW WHEN (new.finished_at is not null) EXECUTE FUNCTION task_figures_inserted();--> statement-breakpoint
CREATE TRIGGER task_figures_update AFTER UPDATE ON tasks REFERENCING OLD TABLE AS o NEW TABLE AS n FOR EACH STATEMENT EXECUTE FUNCTION task_figures_statement_change();--> statement-breakpoint
CREATE TRIGGER task_figures_delete AFTER DELETE ON tasks REFERENCING OLD TABLE AS o FOR EACH STATEMENT EXECUTE FUNCTION task_figures_statement_change();
