CREATE UNLOGGED TABLE IF NOT EXISTS task_figures_delta (s int, run_id uuid, finished_at timestamptz, module_version_id uuid, execution_ms int, gpus int,
  cache_saved_ms bigint, executed boolean, looked boolean, hit boolean, models jsonb);
CREATE OR REPLACE FUNCTION task_figures_delta_row() RETURNS trigger LANGUAGE plpgsql AS $$
begin
  insert into task_figures_delta
  select x.s, (x.t).run_id, (x.t).finished_at, (x.t).module_version_id, (x.t).execution_ms, (x.t).gpus, (x.t).cache_saved_ms,
    ((x.t).kind = 'module' and (x.t).execution_ms is not null and (x.t).cache_source_task_id is null and (x.t).reused_from_task_id is null),
    ((x.t).cache_key is not null and (x.t).status in ('SUCCEEDED', 'FAILED', 'TIMED_OUT') and (x.t).module_version_id is not null),
    (x.t).cache_source_task_id is not null, (x.t).models
  from (values (1, new), (-1, old)) x(s, t) where (x.t).finished_at is not null;
  return null;
end
$$;
CREATE OR REPLACE FUNCTION task_figures_delta_fold() RETURNS trigger LANGUAGE plpgsql AS $$
begin
  with d as (delete from task_figures_delta returning *)
  insert into task_figures_hourly (hour, workflow_id, domain, module_version_id, executed, execution_ms, gpu_ms, hits, misses, saved_ms)
  select * from (
    select date_bin('1 hour', d.finished_at, '2000-01-01 00:00:00+00') as hour, r.workflow_id, r.domain, d.module_version_id,
      sum(case when d.executed then d.s else 0 end) as executed,
      sum(case when d.executed then d.s * d.execution_ms::bigint else 0 end) as execution_ms,
      sum(case when d.executed then d.s * d.execution_ms::bigint * d.gpus else 0 end) as gpu_ms,
      sum(case when d.looked and d.hit then d.s else 0 end) as hits,
      sum(case when d.looked and not d.hit then d.s else 0 end) as misses,
      sum(case when d.looked then d.s * coalesce(d.cache_saved_ms, 0) else 0 end) as saved_ms
    from d join runs r on r.id = d.run_id
    where r.workflow_id is not null and (d.executed or d.looked)
    group by 1, 2, 3, 4
  ) g
  where g.executed <> 0 or g.execution_ms <> 0 or g.gpu_ms <> 0 or g.hits <> 0 or g.misses <> 0 or g.saved_ms <> 0;
  return null;
end
$$;
CREATE TRIGGER task_figures_insert AFTER INSERT ON tasks FOR EACH ROW WHEN (new.finished_at is not null) EXECUTE FUNCTION task_figures_delta_row();
CREATE TRIGGER task_figures_update AFTER UPDATE ON tasks FOR EACH ROW
  WHEN ((old.finished_at is not null or new.finished_at is not null) and
    (old.run_id, old.finished_at, old.kind, old.status, old.module_version_id, old.execution_ms, old.gpus, old.cache_key, old.cache_source_task_id, old.cache_saved_ms, old.reused_from_task_id)
    is distinct from (new.run_id, new.finished_at, new.kind, new.status, new.module_version_id, new.execution_ms, new.gpus, new.cache_key, new.cache_source_task_id, new.cache_saved_ms, new.reused_from_task_id))
  EXECUTE FUNCTION task_figures_delta_row();
CREATE TRIGGER task_figures_delete AFTER DELETE ON tasks FOR EACH ROW WHEN (old.finished_at is not null) EXECUTE FUNCTION task_figures_delta_row();
CREATE TRIGGER task_figures_fold AFTER INSERT OR UPDATE OR DELETE ON tasks FOR EACH STATEMENT EXECUTE FUNCTION task_figures_delta_fold();
