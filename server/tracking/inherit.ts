// A task served from cache, or reused by a rerun, executes nothing and reports nothing: its metrics are its source's.
// Its run still holds them: the source task's summary rows are copied under the task's own id (marked with the
// source's id; the points stay with the source, which metricHistory and compareRuns' series follow), and folded into
// the run's summaries. So every reader by run sees the run as its tasks made it — searchRuns' filters and order,
// compareRuns, a model version's lineage and its promotion and deployment gates, monitors, the MLflow routes —
// without each having to follow a task to its source (before, a run whose training task was cached had no `loss`
// there at all, and a promotion gate on it found nothing to check).
import { sql } from 'drizzle-orm';
import { queryRows, type Tx } from '../db/client';

/**
 * In the transaction that marks `tasks` of run `runId` as served by their sources. Run inside the run's lock (the
 * orchestrator's), so the run's summaries are written in the recorder's order: by name, after the run's row.
 */
export async function inheritMetricSummaries(tx: Tx, runId: string, tasks: readonly { id: string; source: string }[]): Promise<void> {
  if (!tasks.length) return;
  await queryRows(
    tx,
    sql`with copied as (
        insert into metric_summaries (task_id, run_id, name, count, last, last_step, last_at, last_attempt, last_seq, min, min_step, max, max_step, source_task_id)
        select v.id, ${runId}::uuid, s.name, s.count, s.last, s.last_step, s.last_at, s.last_attempt, s.last_seq, s.min, s.min_step, s.max, s.max_step,
          coalesce(s.source_task_id, s.task_id)
        from json_to_recordset(${JSON.stringify(tasks)}::json) as v(id uuid, source uuid)
        join metric_summaries s on s.task_id = v.source
        on conflict (task_id, name) do nothing
        returning task_id, name, last, last_at, min, max
      ), fresh as (
        select distinct on (name) name, nullif(last, 'NaN'::float8) as last, last_at, task_id as last_task,
          min(min) over w as min, max(max) over w as max
        from copied window w as (partition by name)
        order by name, last_at desc, task_id desc
      ), run_summed as (
        insert into run_metric_summaries as r (run_id, name, last, last_at, last_task, min, max)
        select ${runId}::uuid, name, last, last_at, last_task, min, max from fresh order by name
        on conflict (run_id, name) do update set
          last = case when (excluded.last_at, excluded.last_task) > (r.last_at, r.last_task) then excluded.last else r.last end,
          last_task = case when (excluded.last_at, excluded.last_task) > (r.last_at, r.last_task) then excluded.last_task else r.last_task end,
          last_at = greatest(r.last_at, excluded.last_at),
          min = least(r.min, excluded.min),
          max = greatest(r.max, excluded.max)
        returning 1
      )
      select (select count(*) from copied) as copied, (select count(*) from run_summed) as runs`,
  );
}
