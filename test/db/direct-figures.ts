// The period figures as the tasks alone give them: the queries of server/runs/costs.ts and server/cache/stats.ts as they
// were before the hourly rollups (session 28), kept to check the rollups against (test/db/period-figures.test.ts) and
// to time them beside (bench/period-figures.ts).
import type postgres from 'postgres';
import type { CostGrouping, CostViewer } from '../../server/runs/costs';
import type { Domain } from '../../server/vocabulary';

const HOUR = 3_600_000;

export async function directCosts(sql: postgres.Sql, since: Date, groupBy: CostGrouping, viewer: CostViewer) {
  const group = { team: `coalesce(tm.name, '(no team)')`, workflow: 'w.name', model: 'mm.model' }[groupBy];
  const models =
    groupBy === 'model'
      ? `cross join lateral (select p.value->>'model' as model from jsonb_each(coalesce(t.models, '{}'::jsonb)) p
          union select rm.namespace || '/' || rm.name from model_versions mv join registered_models rm on rm.id = mv.model_id where mv.task_id = t.id) mm`
      : '';
  const visible = viewer.admin ? 'true' : `w.team_id in (select team_id from team_members where identity_id = '${viewer.identityId}')`;
  const rows = await sql.unsafe(
    `select ${group} as "group", count(*)::int as tasks, sum(t.execution_ms) as execution_ms, sum(t.execution_ms::bigint * t.gpus) as gpu_ms
     from tasks t join runs r on r.id = t.run_id join workflows w on w.id = r.workflow_id left join teams tm on tm.id = w.team_id ${models}
     where t.kind = 'module' and t.execution_ms is not null and t.finished_at >= $1::timestamptz
       and t.cache_source_task_id is null and t.reused_from_task_id is null and ${visible}
     group by 1 order by 1`,
    [since.toISOString()],
  );
  return rows.map((r) => ({ group: r.group, tasks: r.tasks, executionHours: Number(r.execution_ms ?? 0) / HOUR, gpuHours: Number(r.gpu_ms ?? 0) / HOUR }));
}

const counted = (readable: Domain[]) => `from tasks t join module_versions mv on mv.id = t.module_version_id join modules m on m.id = mv.module_id
  join runs r on r.id = t.run_id join workflows w on w.id = r.workflow_id left join teams tm on tm.id = w.team_id
  where t.cache_key is not null and t.status in ('SUCCEEDED', 'FAILED', 'TIMED_OUT') and r.domain in (${readable.map((d) => `'${d}'`).join(', ')})`;

export async function directCacheStats(sql: postgres.Sql, since: Date, groupBy: 'team' | 'workflow' | 'module', readable: Domain[]) {
  if (!readable.length) return [];
  const group = { team: `coalesce(tm.name, '(no team)')`, workflow: 'w.name', module: `m.namespace || '/' || m.name` }[groupBy];
  const rows = await sql.unsafe(
    `select ${group} as "group", count(*) filter (where t.cache_source_task_id is not null)::int as hits,
       count(*) filter (where t.cache_source_task_id is null)::int as misses, sum(t.cache_saved_ms) as saved_ms
     ${counted(readable)} and t.finished_at >= $1::timestamptz group by 1 order by 1`,
    [since.toISOString()],
  );
  return rows.map((r) => ({
    group: r.group,
    hits: r.hits,
    misses: r.misses,
    hitRate: r.hits + r.misses ? r.hits / (r.hits + r.misses) : 0,
    savedHours: Number(r.saved_ms ?? 0) / HOUR,
  }));
}

export async function directOverTime(sql: postgres.Sql, boundaries: Date[], readable: Domain[]) {
  const buckets = boundaries.slice(0, -1).map((start, i) => ({ start, end: boundaries[i + 1]!, hits: 0, misses: 0, savedHours: 0 }));
  if (!readable.length) return buckets;
  const rows = await sql.unsafe(
    `select width_bucket(t.finished_at, $1::timestamptz[]) as bucket, count(*) filter (where t.cache_source_task_id is not null)::int as hits,
       count(*) filter (where t.cache_source_task_id is null)::int as misses, sum(t.cache_saved_ms) as saved_ms
     ${counted(readable)} and t.finished_at >= $2::timestamptz and t.finished_at < $3::timestamptz group by 1`,
    [`{${boundaries.map((b) => b.toISOString()).join(',')}}`, boundaries[0]!.toISOString(), boundaries.at(-1)!.toISOString()],
  );
  for (const r of rows) Object.assign(buckets[r.bucket - 1]!, { hits: r.hits, misses: r.misses, savedHours: Number(r.saved_ms ?? 0) / HOUR });
  return buckets;
}
