CREATE OR REPLACE FUNCTION task_figures_row_change() RETURNS trigger LANGUAGE plpgsql AS $$
declare
  t tasks;
  s int;
  executed boolean;
  looked boolean;
begin
  for i in 1..2 loop
    if i = 1 then t := new; s := 1; else t := old; s := -1; end if;
    continue when t.finished_at is null;
    executed := t.kind = 'module' and t.execution_ms is not null and t.cache_source_task_id is null and t.reused_from_task_id is null;
    looked := t.cache_key is not null and t.status in ('SUCCEEDED', 'FAILED', 'TIMED_OUT') and t.module_version_id is not null;
    continue when not (executed or looked);
    insert into task_figures_hourly (hour, workflow_id, domain, module_version_id, executed, execution_ms, gpu_ms, hits, misses, saved_ms)
    select date_bin('1 hour', t.finished_at, '2000-01-01 00:00:00+00'), r.workflow_id, r.domain, t.module_version_id,
      case when executed then s else 0 end, case when executed then s * t.execution_ms::bigint else 0 end,
      case when executed then s * t.execution_ms::bigint * t.gpus else 0 end,
      case when looked and t.cache_source_task_id is not null then s else 0 end,
      case when looked and t.cache_source_task_id is null then s else 0 end,
      case when looked then s * coalesce(t.cache_saved_ms, 0) else 0 end
    from runs r where r.id = t.run_id and r.workflow_id is not null;
  end loop;
  return null;
end
$$;
CREATE TRIGGER task_figures_insert AFTER INSERT ON tasks FOR EACH ROW WHEN (new.finished_at is not null) EXECUTE FUNCTION task_figures_row_change();
CREATE TRIGGER task_figures_update AFTER UPDATE ON tasks FOR EACH ROW
  WHEN ((old.finished_at is not null or new.finished_at is not null) and
    (old.run_id, old.finished_at, old.kind, old.status, old.module_version_id, old.execution_ms, old.gpus, old.cache_key, old.cache_source_task_id, old.cache_saved_ms, old.reused_from_task_id)
    is distinct from (new.run_id, new.finished_at, new.kind, new.status, new.module_version_id, new.execution_ms, new.gpus, new.cache_key, new.cache_source_task_id, new.cache_saved_ms, new.reused_from_task_id))
  EXECUTE FUNCTION task_figures_row_change();
CREATE TRIGGER task_figures_delete AFTER DELETE ON tasks FOR EACH ROW WHEN (old.finished_at is not null) EXECUTE FUNCTION task_figures_row_change();
