// The hourly rollups (task_figures_hourly, task_model_costs_hourly) kept by the triggers on `tasks` must equal, after
// every way a task row changes, the same sums recomputed from scratch over `tasks`: runs that run, hit the cache, are
// rerun and cancelled through the API; then, as statements, ends that change, move across hours, un-end and end again,
// figures changed after an end, a statement doing all of that at once, copies of ended tasks inserted, deleted
// (retention), restored and upserted, a transaction rolled back, and a fold. Real Postgres, the real control plane.
// Then every ending the trigger tells apart since migration 0071 (one task ended alone: a success, a failure, a cache
// hit, one that adds nothing; several in one statement; an end changed; a retry; model inputs), each checked the same way
// and by the functions it called: the trigger's own, and the model rollup's only for model inputs.
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { foldTaskFigures } from '../../server/runs/fold-figures';
import { startTestApp, type TestApp } from '../harness/app';
import { type PostgresServer, startPostgres } from '../harness/postgres';

let pg: PostgresServer;
let t: TestApp;
let sql: postgres.Sql;

beforeAll(async () => {
  pg = await startPostgres({ migrated: true, settings: { track_functions: 'pl' } });
  t = await startTestApp({ DATABASE_URL: pg.url });
  sql = postgres(pg.url, { max: 2, onnotice: () => undefined });
  for (const fixture of ['echo', 'fail', 'sleep']) await t.publishFixture(fixture);
  await t.createWorkflow({
    name: 'mix',
    tasks: [
      { name: 'a', module: 'test/echo', parameters: { message: 'a' } },
      { name: 'b', module: 'test/fail' },
      { name: 'c', module: 'test/echo', parameters: { message: 'c' }, dependsOn: ['a'] },
    ],
  });
  await t.createWorkflow({
    name: 'slow',
    tasks: [
      { name: 's1', module: 'test/sleep', parameters: { ms: 600_000 } },
      { name: 's2', module: 'test/sleep', parameters: { ms: 600_000 } },
    ],
  });
}, 120_000);

afterAll(async () => {
  await sql?.end();
  await t?.stop();
  await pg?.stop();
});

const ENDED_RUN = ['SUCCEEDED', 'FAILED', 'CANCELLED', 'TIMED_OUT'];

async function runEnded(id: string) {
  await expect
    .poll(async () => ((await sql`select status from runs where id = ${id}`) as unknown as [{ status: string }])[0].status, { timeout: 60_000, interval: 50 })
    .toSatisfy((status: string) => ENDED_RUN.includes(status));
}

/** The `n` of a one-row count. */
async function count(query: Promise<unknown>): Promise<number> {
  return ((await query) as [{ n: number }])[0].n;
}

async function startRun(workflow: string): Promise<string> {
  const { startRun } = await t.api.gql(`mutation ($w: String!) { startRun(workflow: $w) { id } }`, { w: workflow });
  return startRun.id;
}

/** What a task adds, from scratch: the definitions the rollups are read with (server/db/tables/task-figures.ts). */
const scratch = `select t.*, date_bin('1 hour', t.finished_at, '2000-01-01 00:00:00+00') as hour, r.workflow_id, r.domain,
    (t.kind = 'module' and t.execution_ms is not null and t.cache_source_task_id is null and t.reused_from_task_id is null) as executed,
    (t.cache_key is not null and t.status in ('SUCCEEDED', 'FAILED', 'TIMED_OUT') and t.module_version_id is not null) as looked
  from tasks t join runs r on r.id = t.run_id where t.finished_at is not null and r.workflow_id is not null`;

/** Both rollups, summed per key, against the same sums over `tasks`; returns how many rollup rows there are. */
async function expectExact(when: string): Promise<number> {
  const figures = (from: string) =>
    sql.unsafe(`select hour, workflow_id, domain, module_version_id, executed::bigint, execution_ms::bigint, gpu_ms::bigint, hits::bigint,
        misses::bigint, saved_ms::bigint
      from (${from}) g where executed <> 0 or execution_ms <> 0 or gpu_ms <> 0 or hits <> 0 or misses <> 0 or saved_ms <> 0
      order by 1, 2, 3, 4 nulls first`);
  const rolled = await figures(`select hour, workflow_id, domain, module_version_id, sum(executed) as executed, sum(execution_ms) as execution_ms,
      sum(gpu_ms) as gpu_ms, sum(hits) as hits, sum(misses) as misses, sum(saved_ms) as saved_ms
    from task_figures_hourly group by 1, 2, 3, 4`);
  const recomputed = await figures(`select hour, workflow_id, domain, module_version_id, count(*) filter (where executed) as executed,
      coalesce(sum(execution_ms) filter (where executed), 0) as execution_ms, coalesce(sum(execution_ms::bigint * gpus) filter (where executed), 0) as gpu_ms,
      count(*) filter (where looked and cache_source_task_id is not null) as hits, count(*) filter (where looked and cache_source_task_id is null) as misses,
      coalesce(sum(coalesce(cache_saved_ms, 0)) filter (where looked), 0) as saved_ms
    from (${scratch}) s group by 1, 2, 3, 4`);
  expect(rolled, `${when}: task_figures_hourly`).toEqual(recomputed);
  const models = (from: string) =>
    sql.unsafe(`select hour, workflow_id, model, executed::bigint, execution_ms::bigint, gpu_ms::bigint
      from (${from}) g where executed <> 0 or execution_ms <> 0 or gpu_ms <> 0 order by 1, 2, 3 nulls first`);
  const rolledModels = await models(`select hour, workflow_id, model, sum(executed) as executed, sum(execution_ms) as execution_ms, sum(gpu_ms) as gpu_ms
    from task_model_costs_hourly group by 1, 2, 3`);
  const recomputedModels = await models(`select hour, workflow_id, m.model, count(*) as executed, sum(execution_ms) as execution_ms,
      sum(execution_ms::bigint * gpus) as gpu_ms
    from (${scratch}) s cross join lateral (select distinct p.value->>'model' as model from jsonb_each(s.models) p) m
    where executed group by 1, 2, 3`);
  expect(rolledModels, `${when}: task_model_costs_hourly`).toEqual(recomputedModels);
  const [{ rows }] = (await sql`select count(*)::int as rows from task_figures_hourly`) as unknown as [{ rows: number }];
  return rows;
}

describe('the hourly rollups', () => {
  it('equal a recompute over the tasks after every way a task row changes', async () => {
    // through the control plane: a run that runs (a success, a failure), one served from cache, a rerun that reuses
    // results, a cancelled run
    const first = await startRun('mix');
    await runEnded(first);
    await expectExact('a run ran');
    const cached = await startRun('mix');
    await runEnded(cached);
    expect(await count(sql`select count(*)::int as n from tasks where run_id = ${cached} and cache_source_task_id is not null`)).toBeGreaterThan(0);
    await expectExact('a run served from cache');
    const { rerunRun } = await t.api.gql(`mutation ($id: ID!) { rerunRun(id: $id, from: FAILED) { id } }`, { id: first });
    await runEnded(rerunRun.id);
    expect(await count(sql`select count(*)::int as n from tasks where run_id = ${rerunRun.id} and reused_from_task_id is not null`)).toBeGreaterThan(0);
    await expectExact('a rerun');
    const slow = await startRun('slow');
    await expect
      .poll(async () => ((await sql`select count(*)::int as n from tasks where run_id = ${slow} and status = 'RUNNING'`) as unknown as [{ n: number }])[0].n, {
        timeout: 60_000,
        interval: 50,
      })
      .toBeGreaterThan(0);
    await t.api.gql(`mutation ($id: ID!) { cancelRun(id: $id) { id } }`, { id: slow });
    await runEnded(slow);
    expect(await count(sql`select count(*)::int as n from tasks where run_id = ${slow} and status = 'CANCELLED' and finished_at is not null`)).toBeGreaterThan(
      0,
    );
    await expectExact('a cancelled run');

    // as statements: figures of ended tasks changed, ends moved (across an hour), un-ended, ended again
    await sql`update tasks set gpus = 2, models = '{"x": {"model": "ns/m1"}, "y": {"model": "ns/m2"}, "z": {"model": "ns/m1"}}' where node in ('a', 's1')`;
    await expectExact('gpus and model inputs of ended tasks');
    expect(await count(sql`select count(*)::int as n from task_model_costs_hourly`)).toBeGreaterThan(0);
    await sql`update tasks set execution_ms = coalesce(execution_ms, 0) + 5, cache_saved_ms = cache_saved_ms + 1 where finished_at is not null`;
    await expectExact('execution ms after the end');
    await sql`update tasks set finished_at = finished_at + interval '90 minutes' where node in ('a', 'b')`;
    await expectExact('ends moved across an hour');
    await sql`update tasks set status = 'READY', finished_at = null where node = 'c'`;
    await expectExact('un-ended (a retry or a reset)');
    await sql`update tasks set status = 'SUCCEEDED', finished_at = now() - interval '3 hours', execution_ms = 17 where node = 'c'`;
    await expectExact('ended again');
    await sql`update tasks set finished_at = case when node = 'a' then null when node = 'b' then finished_at - interval '2 hours' else finished_at end,
        status = case when node = 'a' then 'RUNNING' when node = 'c' then 'FAILED' else status end,
        module_version_id = case when node = 's2' then null else module_version_id end, cache_key = case when node = 'c' then null else cache_key end`;
    await expectExact('ends, un-ends and changes in one statement');
    const before = await expectExact('before an update that changes no figure');
    await sql`update tasks set message = 'noted', outputs = outputs where finished_at is not null`;
    expect(await expectExact('an update that changes no figure')).toBe(before);

    // copies of ended tasks inserted (as a restore would), deleted (retention), restored, upserted
    await sql`create table kept as select c.* from tasks t, jsonb_populate_record(null::tasks, to_jsonb(t) || jsonb_build_object(
        'id', gen_random_uuid(), 'node', 'copy-' || t.node, 'finished_at', coalesce(t.finished_at, now()) - interval '1 day')) c`;
    await sql`insert into tasks select * from kept`;
    await expectExact('ended tasks inserted');
    await sql`delete from tasks where node like 'copy-%'`;
    await expectExact('ended tasks deleted');
    await sql`insert into tasks select * from kept`;
    await expectExact('ended tasks restored');
    await sql`insert into tasks select * from kept on conflict (id) do update set execution_ms = excluded.execution_ms + 100, finished_at = excluded.finished_at + interval '5 hours'`;
    await expectExact('ended tasks upserted');
    await sql
      .begin(async (tx) => {
        await tx`update tasks set finished_at = now(), execution_ms = 1 where node like 'copy-%'`;
        await tx`delete from tasks where node = 'copy-b'`;
        throw new Error('roll back');
      })
      .catch(() => undefined);
    await expectExact('a transaction rolled back');
    await foldTaskFigures(t.app.services.db);
    const [{ unfolded }] = (await sql`select count(*)::int as unfolded from task_figures_hourly where not folded`) as unknown as [{ unfolded: number }];
    expect(unfolded).toBe(0);
    await expectExact('folded');
  }, 180_000);

  it('run no trigger for tasks inserted without an end, and read a non-ending update once', async () => {
    const [{ run }] = (await sql`select id as run from runs limit 1`) as unknown as [{ run: string }];
    let inserted: Record<string, number> = {};
    let updated: Record<string, number> = {};
    // pg_stat_xact_user_functions: this backend's calls not yet reported, so a difference within one transaction
    const calls = async (tx: postgres.TransactionSql) =>
      Object.fromEntries(
        (await tx`select funcname, calls::int from pg_stat_xact_user_functions where funcname like 'task_figure%'`).map((r) => [r.funcname, r.calls]),
      ) as Record<string, number>;
    const since = (before: Record<string, number>, after: Record<string, number>) =>
      Object.fromEntries(
        Object.entries(after)
          .filter(([name, n]) => n !== (before[name] ?? 0))
          .map(([name, n]) => [name, n - (before[name] ?? 0)]),
      );
    const rolledBack = new Error('roll back');
    const outcome = await sql
      .begin(async (tx) => {
        const start = await calls(tx);
        await tx`insert into tasks (run_id, node, status, timeout_ms, pool, executor)
          select ${run}, 'fresh-' || i, 'READY', 1000, 'default', 'local' from generate_series(1, 500) i`;
        const afterInsert = await calls(tx);
        inserted = since(start, afterInsert);
        await tx`update tasks set status = 'QUEUED' where node like 'fresh-%'`;
        updated = since(afterInsert, await calls(tx));
        throw rolledBack;
      })
      .catch((e) => e);
    expect(outcome).toBe(rolledBack);
    // the run's start (tasks inserted, none ended) called nothing; a statement that ends none called only its trigger
    expect(inserted).toEqual({});
    expect(updated).toEqual({ task_figures_statement_change: 1 });
  });
});

/** The rollup functions a statement called, by name (pg_stat_xact_user_functions: this transaction's own calls). */
async function functionsCalledBy(statement: (tx: postgres.TransactionSql) => Promise<unknown>): Promise<Record<string, number>> {
  const calls = async (tx: postgres.TransactionSql) =>
    new Map(
      (await tx`select funcname, calls::int from pg_stat_xact_user_functions where funcname like 'task_%'`).map((r) => [
        r.funcname as string,
        r.calls as number,
      ]),
    );
  return sql.begin(async (tx) => {
    const before = await calls(tx);
    await statement(tx);
    const called: Record<string, number> = {};
    for (const [name, n] of await calls(tx)) if (n !== (before.get(name) ?? 0)) called[name] = n - (before.get(name) ?? 0);
    return called;
  });
}

describe('a statement that ends tasks (migration 0071)', () => {
  it('adds one ended task alone, and every other ending, as a recompute over the tasks says, in the trigger function alone', async () => {
    const [{ run }] = (await sql`select id as run from runs where workflow_id is not null limit 1`) as unknown as [{ run: string }];
    const [{ version, source }] = (await sql`select module_version_id as version, id as source from tasks
      where module_version_id is not null and finished_at is not null limit 1`) as unknown as [{ version: string; source: string }];
    const nodes = ['ok', 'failed', 'hit', 'cancelled', 'batch-ok', 'batch-failed', 'batch-hit', 'retried', 'modelled', 'unlooked'];
    await sql`insert into tasks (run_id, node, status, timeout_ms, pool, executor, module_version_id, cache_key, attempt, started_at)
      select ${run}, 'end-' || node, 'RUNNING', 60000, 'default', 'local', ${version}, 'key-' || node, 1, now() - interval '1 minute'
      from unnest(${sql.array(nodes)}::text[]) node`;
    await sql`update tasks set cache_key = null where node = 'end-unlooked'`;
    const alone = { task_figures_statement_change: 1 };
    const rows = () => count(sql`select count(*)::int as n from task_figures_hourly`);

    // one task ended alone: a success (executed, a cache miss), a failure, a cache hit, a cancellation (adds nothing)
    let before = await rows();
    expect(
      await functionsCalledBy((tx) => tx`update tasks set status = 'SUCCEEDED', finished_at = now(), execution_ms = 40, gpus = 2 where node = 'end-ok'`),
    ).toEqual(alone);
    expect(await expectExact('a success ended alone')).toBe(before + 1);
    expect(
      await functionsCalledBy((tx) => tx`update tasks set status = 'FAILED', finished_at = now(), execution_ms = 12, exit_code = 1 where node = 'end-failed'`),
    ).toEqual(alone);
    await expectExact('a failure ended alone');
    expect(
      await functionsCalledBy(
        (tx) => tx`update tasks set status = 'SUCCEEDED', finished_at = now(), cache_source_task_id = ${source}, cache_source_run_id = ${run},
          cache_saved_ms = 900 where node = 'end-hit'`,
      ),
    ).toEqual(alone);
    await expectExact('a cache hit ended alone');
    before = await rows();
    expect(await functionsCalledBy((tx) => tx`update tasks set status = 'CANCELLED', finished_at = now() where node = 'end-cancelled'`)).toEqual(alone);
    expect(await expectExact('a cancellation ended alone')).toBe(before);
    await functionsCalledBy((tx) => tx`update tasks set status = 'SUCCEEDED', finished_at = now(), execution_ms = 8 where node = 'end-unlooked'`);
    await expectExact('a task with no cache key ended alone');

    // several in one statement: one change per key (here, one key)
    before = await rows();
    expect(
      await functionsCalledBy(
        (tx) => tx`update tasks set finished_at = now(),
          status = case when node = 'end-batch-failed' then 'FAILED' else 'SUCCEEDED' end,
          execution_ms = case when node = 'end-batch-hit' then null else 30 end,
          cache_source_task_id = case when node = 'end-batch-hit' then ${source}::uuid end,
          cache_saved_ms = case when node = 'end-batch-hit' then 700 end
          where node like 'end-batch-%'`,
      ),
    ).toEqual(alone);
    expect(await expectExact('several ended in one statement')).toBe(before + 1);

    // an ended task ended again (its end and figures changed), one retried (un-ended, then ended again alone)
    expect(
      await functionsCalledBy((tx) => tx`update tasks set execution_ms = 55, finished_at = finished_at - interval '2 hours' where node = 'end-ok'`),
    ).toEqual(alone);
    await expectExact('an ended task ended again');
    await sql`update tasks set status = 'SUCCEEDED', finished_at = now(), execution_ms = 5 where node = 'end-retried'`;
    await expectExact('the first end of a task retried');
    expect(
      await functionsCalledBy((tx) => tx`update tasks set status = 'RETRYING', finished_at = null, retry_at = now(), attempt = 2 where node = 'end-retried'`),
    ).toEqual(alone);
    await expectExact('a task retried');
    expect(await functionsCalledBy((tx) => tx`update tasks set status = 'FAILED', finished_at = now(), execution_ms = 6 where node = 'end-retried'`)).toEqual(
      alone,
    );
    await expectExact('a retried task ended again');

    // a task with model inputs ended alone: the model rollup too
    expect(
      await functionsCalledBy(
        (tx) => tx`update tasks set status = 'SUCCEEDED', finished_at = now(), execution_ms = 70,
          models = '{"x": {"model": "ns/m3"}, "y": {"model": "ns/m3"}}' where node = 'end-modelled'`,
      ),
    ).toEqual({ ...alone, task_model_costs_add: 1 });
    await expectExact('a task with model inputs ended alone');

    // a rolled-back end leaves nothing
    await sql
      .begin(async (tx) => {
        await tx`update tasks set status = 'RUNNING', finished_at = null where node = 'end-failed'`;
        await tx`update tasks set status = 'FAILED', finished_at = now() + interval '3 hours', execution_ms = 99 where node = 'end-failed'`;
        throw new Error('roll back');
      })
      .catch(() => undefined);
    await expectExact('an end rolled back');
  });
});
