// A task served from cache, or reused by a rerun, executes nothing and reports nothing: its metrics are its source's.
// Its run still holds them: the source task's summary rows are copied under the task's own id (marked with the
// source's id; the points stay with the source, which metricHistory and compareRuns' series follow), and folded into
// the run's summaries. So every reader by run sees the run as its tasks made it — searchRuns' filters and order,
// compareRuns, a model version's lineage and its promotion and deployment gates, monitors, the MLflow routes —
// without each having to follow a task to its source (before, a run whose training task was cached had no `loss`
// there at all, and a promotion gate on it found nothing to check).
//
// A source may gain points after it was copied: the late words of the execution that ended it (a metric batch
// redelivered after its result), or a metric its run's creator logs into the finished run over MLflow. Those reach
// every copy, down chains of reuse (refreshCopies). The copy and the refresh take the source task's row (shared, and
// exclusive), so one of the two always sees the other's work: a copy made while the points were being stored waits
// for them, or the refresh waits for the copy and then brings it up to date.
import { sql } from 'drizzle-orm';
import { arrayOf } from '../db/arrays';
import { queryRows, type Tx } from '../db/client';
import { runSummaryFold } from './metrics';

/**
 * In the transaction that marks `tasks` of run `runId` as served by their sources. Run inside the run's lock (the
 * orchestrator's), so the run's summaries are written in the recorder's order: by name, after the run's row.
 */
export async function inheritMetricSummaries(tx: Tx, runId: string, tasks: readonly { id: string; source: string }[]): Promise<void> {
  if (!tasks.length) return;
  // The tasks that reported the points (a reused task may itself be a copy: its chain is followed up), held against a
  // refresh until this commits. A statement of its own: the copy below must read what a refresh it waited for wrote.
  await tx.execute(sql`
    with recursive up(id, source) as (
      select id, coalesce(cache_source_task_id, reused_from_task_id) from tasks where id = any(${arrayOf(
        tasks.map((t) => t.source),
        'uuid',
      )})
      union
      select t.id, coalesce(t.cache_source_task_id, t.reused_from_task_id) from tasks t join up on t.id = up.source
    )
    select t.id from tasks t where t.id in (select id from up where source is null) order by t.id for share of t`);
  await queryRows(
    tx,
    sql`with copied as (
        insert into metric_summaries (task_id, run_id, name, count, last, last_step, last_at, last_attempt, last_seq, min, min_step, max, max_step, source_task_id)
        select v.id, ${runId}::uuid, s.name, s.count, s.last, s.last_step, s.last_at, s.last_attempt, s.last_seq, s.min, s.min_step, s.max, s.max_step,
          coalesce(s.source_task_id, s.task_id)
        from json_to_recordset(${JSON.stringify(tasks)}::json) as v(id uuid, source uuid)
        join metric_summaries s on s.task_id = v.source
        on conflict (task_id, name) do nothing
        returning task_id, run_id, name, last, last_at, min, max
      ), ${runSummaryFold('copied')}
      select (select count(*) from copied) as copied, (select count(*) from run_summed) as runs`,
  );
}

/**
 * After points were stored for `taskIds` (tasks that ran and already succeeded, so copies of them may exist): every
 * copy of their summaries — tasks served from cache by them, reused from them, or reused from such a copy, at any
 * depth — made equal to the source's rows again, and folded into the copies' runs. Only rows that are copies change (a
 * copy's own metrics, logged into it over MLflow, stay its own). Idempotent: a redelivery refreshes to the same rows.
 */
export async function refreshCopies(tx: Tx, taskIds: readonly string[]): Promise<void> {
  if (!taskIds.length) return;
  const ids = arrayOf([...new Set(taskIds)].sort(), 'uuid');
  // Taken before the copies are looked for: a copy being made now (inheritMetricSummaries holds its source shared)
  // is waited for, and found.
  await tx.execute(sql`select id from tasks where id = any(${ids}) order by id for no key update`);
  await queryRows(
    tx,
    sql`with recursive copies(id, run_id, origin) as (
        select t.id, t.run_id, v.origin from unnest(${ids}) as v(origin)
          join tasks t on t.cache_source_task_id = v.origin or t.reused_from_task_id = v.origin
        union
        select t.id, t.run_id, c.origin from copies c
          join tasks t on t.cache_source_task_id = c.id or t.reused_from_task_id = c.id
      ), copied as (
        insert into metric_summaries as m (task_id, run_id, name, count, last, last_step, last_at, last_attempt, last_seq, min, min_step, max, max_step, source_task_id)
        select c.id, c.run_id, s.name, s.count, s.last, s.last_step, s.last_at, s.last_attempt, s.last_seq, s.min, s.min_step, s.max, s.max_step, s.task_id
        from copies c join metric_summaries s on s.task_id = c.origin
        order by c.id, s.name
        on conflict (task_id, name) do update set
          count = excluded.count, last = excluded.last, last_step = excluded.last_step, last_at = excluded.last_at,
          last_attempt = excluded.last_attempt, last_seq = excluded.last_seq, min = excluded.min, min_step = excluded.min_step,
          max = excluded.max, max_step = excluded.max_step, source_task_id = excluded.source_task_id
        where m.source_task_id is not null
          and (m.count, m.last_attempt, m.last_seq, m.min, m.max) is distinct from (excluded.count, excluded.last_attempt, excluded.last_seq, excluded.min, excluded.max)
        returning m.task_id, m.run_id, m.name, m.last, m.last_at, m.min, m.max
      ), ${runSummaryFold('copied')}
      select (select count(*) from copied) as copied, (select count(*) from run_summed) as runs`,
  );
}
