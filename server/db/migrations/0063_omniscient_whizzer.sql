CREATE TABLE "task_figures_hourly" (
	"hour" timestamp with time zone NOT NULL,
	"workflow_id" uuid NOT NULL,
	"domain" text NOT NULL,
	"module_version_id" uuid,
	"executed" bigint NOT NULL,
	"execution_ms" bigint NOT NULL,
	"gpu_ms" bigint NOT NULL,
	"hits" bigint NOT NULL,
	"misses" bigint NOT NULL,
	"saved_ms" bigint NOT NULL,
	"folded" boolean DEFAULT false NOT NULL
);
--> statement-breakpoint
CREATE TABLE "task_model_costs_hourly" (
	"hour" timestamp with time zone NOT NULL,
	"workflow_id" uuid NOT NULL,
	"model" text,
	"executed" bigint NOT NULL,
	"execution_ms" bigint NOT NULL,
	"gpu_ms" bigint NOT NULL,
	"folded" boolean DEFAULT false NOT NULL
);
--> statement-breakpoint
CREATE INDEX "task_figures_hourly_hour_idx" ON "task_figures_hourly" USING btree ("hour");--> statement-breakpoint
CREATE INDEX "task_figures_hourly_unfolded_idx" ON "task_figures_hourly" USING btree ("hour") WHERE not folded;--> statement-breakpoint
CREATE INDEX "task_model_costs_hourly_hour_idx" ON "task_model_costs_hourly" USING btree ("hour");--> statement-breakpoint
CREATE INDEX "task_model_costs_hourly_unfolded_idx" ON "task_model_costs_hourly" USING btree ("hour") WHERE not folded;--> statement-breakpoint
CREATE INDEX "runs_parameters_idx" ON "runs" USING gin ("parameters");--> statement-breakpoint
-- The period figures' rollups (server/db/tables/task-figures.ts), kept in the transaction that ends a task: each
-- statement that inserts, updates or deletes tasks adds what its rows' ends changed (a row's figures as it is now,
-- less what they were), one row per hour and key. Written as the task's own row is, a change commits (or not) with
-- it, so no reader ever sees one without the other, however late the transaction commits.
CREATE FUNCTION task_figures_change() RETURNS trigger LANGUAGE plpgsql AS $$
begin
  if tg_op = 'INSERT' then
    -- most statements (dispatch, starts, heartbeats) end no task: they stop here
    if exists (select 1 from n where n.finished_at is not null) then
      with d as (
        select x.*,
          (x.kind = 'module' and x.execution_ms is not null and x.cache_source_task_id is null and x.reused_from_task_id is null) as executed,
          (x.cache_key is not null and x.status in ('SUCCEEDED', 'FAILED', 'TIMED_OUT') and x.module_version_id is not null) as looked,
          date_bin('1 hour', x.finished_at, '2000-01-01 00:00:00+00') as hour
        from (select 1 as s, n.* from n where n.finished_at is not null) x
      )
      insert into task_figures_hourly (hour, workflow_id, domain, module_version_id, executed, execution_ms, gpu_ms, hits, misses, saved_ms)
      select * from (
        select d.hour, r.workflow_id, r.domain, d.module_version_id,
          sum(case when d.executed then d.s else 0 end) as executed,
          sum(case when d.executed then d.s * d.execution_ms::bigint else 0 end) as execution_ms,
          sum(case when d.executed then d.s * d.execution_ms::bigint * d.gpus else 0 end) as gpu_ms,
          sum(case when d.looked and d.cache_source_task_id is not null then d.s else 0 end) as hits,
          sum(case when d.looked and d.cache_source_task_id is null then d.s else 0 end) as misses,
          sum(case when d.looked then d.s * coalesce(d.cache_saved_ms, 0) else 0 end) as saved_ms
        from d join runs r on r.id = d.run_id
        where r.workflow_id is not null and (d.executed or d.looked)
        group by 1, 2, 3, 4
      ) g
      where g.executed <> 0 or g.execution_ms <> 0 or g.gpu_ms <> 0 or g.hits <> 0 or g.misses <> 0 or g.saved_ms <> 0;
    end if;
    if exists (select 1 from n where n.finished_at is not null and n.models is not null) then
      with d as (
        select x.*,
          (x.kind = 'module' and x.execution_ms is not null and x.cache_source_task_id is null and x.reused_from_task_id is null) as executed,
          (x.cache_key is not null and x.status in ('SUCCEEDED', 'FAILED', 'TIMED_OUT') and x.module_version_id is not null) as looked,
          date_bin('1 hour', x.finished_at, '2000-01-01 00:00:00+00') as hour
        from (select 1 as s, n.* from n where n.finished_at is not null) x
      )
      insert into task_model_costs_hourly (hour, workflow_id, model, executed, execution_ms, gpu_ms)
      select * from (
        select d.hour, r.workflow_id, m.model, sum(d.s) as executed, sum(d.s * d.execution_ms::bigint) as execution_ms,
          sum(d.s * d.execution_ms::bigint * d.gpus) as gpu_ms
        from d join runs r on r.id = d.run_id
          cross join lateral (select distinct p.value->>'model' as model from jsonb_each(coalesce(d.models, '{}'::jsonb)) p) m
        where r.workflow_id is not null and d.executed
        group by 1, 2, 3
      ) g
      where g.executed <> 0 or g.execution_ms <> 0 or g.gpu_ms <> 0;
    end if;
  elsif tg_op = 'UPDATE' then
    -- most statements (dispatch, starts, heartbeats) end no task: they stop here
    if exists (select 1 from n where n.finished_at is not null) or exists (select 1 from o where o.finished_at is not null) then
      with d as (
        select x.*,
          (x.kind = 'module' and x.execution_ms is not null and x.cache_source_task_id is null and x.reused_from_task_id is null) as executed,
          (x.cache_key is not null and x.status in ('SUCCEEDED', 'FAILED', 'TIMED_OUT') and x.module_version_id is not null) as looked,
          date_bin('1 hour', x.finished_at, '2000-01-01 00:00:00+00') as hour
        from (select 1 as s, n.* from n where n.finished_at is not null
          union all select -1 as s, o.* from o where o.finished_at is not null) x
      )
      insert into task_figures_hourly (hour, workflow_id, domain, module_version_id, executed, execution_ms, gpu_ms, hits, misses, saved_ms)
      select * from (
        select d.hour, r.workflow_id, r.domain, d.module_version_id,
          sum(case when d.executed then d.s else 0 end) as executed,
          sum(case when d.executed then d.s * d.execution_ms::bigint else 0 end) as execution_ms,
          sum(case when d.executed then d.s * d.execution_ms::bigint * d.gpus else 0 end) as gpu_ms,
          sum(case when d.looked and d.cache_source_task_id is not null then d.s else 0 end) as hits,
          sum(case when d.looked and d.cache_source_task_id is null then d.s else 0 end) as misses,
          sum(case when d.looked then d.s * coalesce(d.cache_saved_ms, 0) else 0 end) as saved_ms
        from d join runs r on r.id = d.run_id
        where r.workflow_id is not null and (d.executed or d.looked)
        group by 1, 2, 3, 4
      ) g
      where g.executed <> 0 or g.execution_ms <> 0 or g.gpu_ms <> 0 or g.hits <> 0 or g.misses <> 0 or g.saved_ms <> 0;
    end if;
    if exists (select 1 from n where n.finished_at is not null and n.models is not null) or exists (select 1 from o where o.finished_at is not null and o.models is not null) then
      with d as (
        select x.*,
          (x.kind = 'module' and x.execution_ms is not null and x.cache_source_task_id is null and x.reused_from_task_id is null) as executed,
          (x.cache_key is not null and x.status in ('SUCCEEDED', 'FAILED', 'TIMED_OUT') and x.module_version_id is not null) as looked,
          date_bin('1 hour', x.finished_at, '2000-01-01 00:00:00+00') as hour
        from (select 1 as s, n.* from n where n.finished_at is not null
          union all select -1 as s, o.* from o where o.finished_at is not null) x
      )
      insert into task_model_costs_hourly (hour, workflow_id, model, executed, execution_ms, gpu_ms)
      select * from (
        select d.hour, r.workflow_id, m.model, sum(d.s) as executed, sum(d.s * d.execution_ms::bigint) as execution_ms,
          sum(d.s * d.execution_ms::bigint * d.gpus) as gpu_ms
        from d join runs r on r.id = d.run_id
          cross join lateral (select distinct p.value->>'model' as model from jsonb_each(coalesce(d.models, '{}'::jsonb)) p) m
        where r.workflow_id is not null and d.executed
        group by 1, 2, 3
      ) g
      where g.executed <> 0 or g.execution_ms <> 0 or g.gpu_ms <> 0;
    end if;
  elsif tg_op = 'DELETE' then
    -- most statements (dispatch, starts, heartbeats) end no task: they stop here
    if exists (select 1 from o where o.finished_at is not null) then
      with d as (
        select x.*,
          (x.kind = 'module' and x.execution_ms is not null and x.cache_source_task_id is null and x.reused_from_task_id is null) as executed,
          (x.cache_key is not null and x.status in ('SUCCEEDED', 'FAILED', 'TIMED_OUT') and x.module_version_id is not null) as looked,
          date_bin('1 hour', x.finished_at, '2000-01-01 00:00:00+00') as hour
        from (select -1 as s, o.* from o where o.finished_at is not null) x
      )
      insert into task_figures_hourly (hour, workflow_id, domain, module_version_id, executed, execution_ms, gpu_ms, hits, misses, saved_ms)
      select * from (
        select d.hour, r.workflow_id, r.domain, d.module_version_id,
          sum(case when d.executed then d.s else 0 end) as executed,
          sum(case when d.executed then d.s * d.execution_ms::bigint else 0 end) as execution_ms,
          sum(case when d.executed then d.s * d.execution_ms::bigint * d.gpus else 0 end) as gpu_ms,
          sum(case when d.looked and d.cache_source_task_id is not null then d.s else 0 end) as hits,
          sum(case when d.looked and d.cache_source_task_id is null then d.s else 0 end) as misses,
          sum(case when d.looked then d.s * coalesce(d.cache_saved_ms, 0) else 0 end) as saved_ms
        from d join runs r on r.id = d.run_id
        where r.workflow_id is not null and (d.executed or d.looked)
        group by 1, 2, 3, 4
      ) g
      where g.executed <> 0 or g.execution_ms <> 0 or g.gpu_ms <> 0 or g.hits <> 0 or g.misses <> 0 or g.saved_ms <> 0;
    end if;
    if exists (select 1 from o where o.finished_at is not null and o.models is not null) then
      with d as (
        select x.*,
          (x.kind = 'module' and x.execution_ms is not null and x.cache_source_task_id is null and x.reused_from_task_id is null) as executed,
          (x.cache_key is not null and x.status in ('SUCCEEDED', 'FAILED', 'TIMED_OUT') and x.module_version_id is not null) as looked,
          date_bin('1 hour', x.finished_at, '2000-01-01 00:00:00+00') as hour
        from (select -1 as s, o.* from o where o.finished_at is not null) x
      )
      insert into task_model_costs_hourly (hour, workflow_id, model, executed, execution_ms, gpu_ms)
      select * from (
        select d.hour, r.workflow_id, m.model, sum(d.s) as executed, sum(d.s * d.execution_ms::bigint) as execution_ms,
          sum(d.s * d.execution_ms::bigint * d.gpus) as gpu_ms
        from d join runs r on r.id = d.run_id
          cross join lateral (select distinct p.value->>'model' as model from jsonb_each(coalesce(d.models, '{}'::jsonb)) p) m
        where r.workflow_id is not null and d.executed
        group by 1, 2, 3
      ) g
      where g.executed <> 0 or g.execution_ms <> 0 or g.gpu_ms <> 0;
    end if;
  end if;
  return null;
end
$$;--> statement-breakpoint
CREATE TRIGGER task_figures_insert AFTER INSERT ON tasks REFERENCING NEW TABLE AS n FOR EACH STATEMENT EXECUTE FUNCTION task_figures_change();--> statement-breakpoint
CREATE TRIGGER task_figures_update AFTER UPDATE ON tasks REFERENCING OLD TABLE AS o NEW TABLE AS n FOR EACH STATEMENT EXECUTE FUNCTION task_figures_change();--> statement-breakpoint
CREATE TRIGGER task_figures_delete AFTER DELETE ON tasks REFERENCING OLD TABLE AS o FOR EACH STATEMENT EXECUTE FUNCTION task_figures_change();--> statement-breakpoint
-- What the tasks already stored add up to, folded: from here on the triggers above add each change.
with d as (
      select x.*,
        (x.kind = 'module' and x.execution_ms is not null and x.cache_source_task_id is null and x.reused_from_task_id is null) as executed,
        (x.cache_key is not null and x.status in ('SUCCEEDED', 'FAILED', 'TIMED_OUT') and x.module_version_id is not null) as looked,
        date_bin('1 hour', x.finished_at, '2000-01-01 00:00:00+00') as hour
      from (select 1 as s, t.* from tasks t where t.finished_at is not null) x
    )
    insert into task_figures_hourly (hour, workflow_id, domain, module_version_id, executed, execution_ms, gpu_ms, hits, misses, saved_ms, folded)
    select g.*, true from (
      select d.hour, r.workflow_id, r.domain, d.module_version_id,
        sum(case when d.executed then d.s else 0 end) as executed,
        sum(case when d.executed then d.s * d.execution_ms::bigint else 0 end) as execution_ms,
        sum(case when d.executed then d.s * d.execution_ms::bigint * d.gpus else 0 end) as gpu_ms,
        sum(case when d.looked and d.cache_source_task_id is not null then d.s else 0 end) as hits,
        sum(case when d.looked and d.cache_source_task_id is null then d.s else 0 end) as misses,
        sum(case when d.looked then d.s * coalesce(d.cache_saved_ms, 0) else 0 end) as saved_ms
      from d join runs r on r.id = d.run_id
      where r.workflow_id is not null and (d.executed or d.looked)
      group by 1, 2, 3, 4
    ) g
    where g.executed <> 0 or g.execution_ms <> 0 or g.gpu_ms <> 0 or g.hits <> 0 or g.misses <> 0 or g.saved_ms <> 0;--> statement-breakpoint
with d as (
      select x.*,
        (x.kind = 'module' and x.execution_ms is not null and x.cache_source_task_id is null and x.reused_from_task_id is null) as executed,
        (x.cache_key is not null and x.status in ('SUCCEEDED', 'FAILED', 'TIMED_OUT') and x.module_version_id is not null) as looked,
        date_bin('1 hour', x.finished_at, '2000-01-01 00:00:00+00') as hour
      from (select 1 as s, t.* from tasks t where t.finished_at is not null) x
    )
    insert into task_model_costs_hourly (hour, workflow_id, model, executed, execution_ms, gpu_ms, folded)
    select g.*, true from (
      select d.hour, r.workflow_id, m.model, sum(d.s) as executed, sum(d.s * d.execution_ms::bigint) as execution_ms,
        sum(d.s * d.execution_ms::bigint * d.gpus) as gpu_ms
      from d join runs r on r.id = d.run_id
        cross join lateral (select distinct p.value->>'model' as model from jsonb_each(coalesce(d.models, '{}'::jsonb)) p) m
      where r.workflow_id is not null and d.executed
      group by 1, 2, 3
    ) g
    where g.executed <> 0 or g.execution_ms <> 0 or g.gpu_ms <> 0;
