// The period figures (costs, cache savings, savings over time) read whole hours from the hourly rollups that triggers
// on `tasks` keep, and the hours a boundary lies inside from the tasks: their answers must be the direct aggregate's
// over the tasks (the queries as they were before the rollups, direct-figures.ts), for every period, grouping, team and domain,
// over a few thousand generated tasks across hour edges, tasks that end, un-end, change and go, and a transaction
// that ends tasks in an hour already folded and commits after reads and a fold. Real Postgres, auto_explain for plans.
import { readFile } from 'node:fs/promises';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cacheSavingsOverTime, cacheStats } from '../../server/cache/stats';
import { costFigures } from '../../server/runs/costs';
import { foldTaskFigures } from '../../server/runs/fold-figures';
import type { Domain } from '../../server/vocabulary';
import { startTestApp, type TestApp } from '../harness/app';
import { type PostgresServer, startPostgres } from '../harness/postgres';
import { directCacheStats, directCosts, directOverTime } from './direct-figures';

const HOUR = 3_600_000;
let pg: PostgresServer;
let t: TestApp;
let sql: postgres.Sql;
let base: Date; // a whole hour, 30 hours before the generated tasks' latest end
let aliceId: string;

beforeAll(async () => {
  pg = await startPostgres({ settings: { shared_preload_libraries: 'auto_explain', 'auto_explain.log_min_duration': '0' } });
  t = await startTestApp({ DATABASE_URL: pg.url });
  sql = postgres(pg.url, { max: 2, onnotice: () => undefined });
  await t.publishFixture('echo');
  await t.publishFixture('gpu-echo');
  await t.user('alice');
  await t.team('vision', ['alice']);
  await t.team('nlp', []);
  for (const name of ['wf-a', 'wf-b', 'wf-c']) await t.createWorkflow({ name, tasks: [{ name: 'greet', module: 'test/echo', parameters: { message: 'hi' } }] });
  await sql`update workflows set team_id = (select id from teams where name = 'vision') where name = 'wf-a'`;
  await sql`update workflows set team_id = (select id from teams where name = 'nlp') where name = 'wf-b'`;
  [{ id: aliceId }] = (await sql`select id from identities where name = 'alice'`) as unknown as [{ id: string }];
  const { startRun } = await t.api.gql(`mutation { startRun(workflow: "wf-a") { id } }`);
  for (let status = 'QUEUED'; ['QUEUED', 'RUNNING'].includes(status); await new Promise((r) => setTimeout(r, 100)))
    status = (await t.api.gql(`query ($id: ID!) { run(id: $id) { status } }`, { id: startRun.id })).run.status;
  base = new Date(Math.floor(Date.now() / HOUR) * HOUR - 30 * HOUR);
  await sql`create table probe_w as select array_agg(id order by name) as ids from workflows where name like 'wf-%'`;
  await sql`create table probe_mv as select array_agg(id order by id) as ids from module_versions`;
  // 300 runs over the three workflows and the three domains
  // (copies made by a lateral call: `(f(row)).*` would call f once per column)
  await sql`insert into runs select c.* from runs r, generate_series(0, 299) i,
      jsonb_populate_record(null::runs, to_jsonb(r) || jsonb_build_object(
        'id', gen_random_uuid(), 'workflow_id', (select ids[1 + i % 3] from probe_w), 'idempotency_key', null,
        'domain', (array['experimentation', 'adhoc', 'production'])[1 + (i / 3) % 3])) c
    where r.id = ${startRun.id}`;
  await sql`create table probe_gr as select array_agg(id order by id) as ids from runs where id <> ${startRun.id}`;
  await sql`insert into registered_models (namespace, name) values ('ns', 'alpha'), ('ns', 'gamma')`;
  // 4,000 tasks in four statements: ends spread over 30 hours, a twentieth on an hour's first microsecond or its last
  for (let part = 0; part < 4; part++) await sql`insert into tasks ${sql.unsafe(taskCopies(part * 1000, part * 1000 + 999, startRun.id))}`;
  // models registered from some of them, some the same model a task also took as an input
  await sql`insert into model_versions (model_id, version, digest, files, task_id, run_id, domain, output)
    select (select id from registered_models where name = case when n % 2 = 0 then 'gamma' else 'alpha' end), n, 'd' || n, '[]', id, run_id, 'experimentation', 'model'
    from (select id, run_id, row_number() over (order by node) as n from tasks where node like 'n%' and (substr(node, 2)::int % 307 = 0)) x`;
  for (const table of ['tasks', 'runs', 'model_versions', 'registered_models', 'workflows', 'task_figures_hourly', 'task_model_costs_hourly'])
    await sql`analyze ${sql(table)}`;
}, 400_000);

afterAll(async () => {
  await sql?.end();
  await t?.stop();
  await pg?.stop();
});

/** Tasks n<i> copied from the real one: every figure's inputs vary with i. */
function taskCopies(from: number, to: number, runId: string): string {
  return `select c.* from tasks t, generate_series(${from}, ${to}) i, jsonb_populate_record(null::tasks, to_jsonb(t) || jsonb_build_object(
      'id', gen_random_uuid(), 'run_id', (select ids[1 + i % 300] from probe_gr), 'node', 'n' || i,
      'kind', case when i % 23 = 0 then 'workflow' else 'module' end,
      'module_version_id', (select ids[1 + (i / 7) % 2] from probe_mv),
      'status', (array['SUCCEEDED', 'SUCCEEDED', 'FAILED', 'TIMED_OUT', 'CANCELLED', 'SKIPPED'])[1 + i % 6],
      'finished_at', case when i % 17 = 0 then null
        when i % 20 = 0 then '${base.toISOString()}'::timestamptz + make_interval(hours => i % 30)
        when i % 20 = 1 then '${base.toISOString()}'::timestamptz + make_interval(hours => i % 30) - interval '1 microsecond'
        else '${base.toISOString()}'::timestamptz + make_interval(secs => (i * 7919) % 108000 + (i % 1000) / 1000.0) end,
      'execution_ms', case when i % 13 = 0 then null else (i * 37) % 5000 end,
      'gpus', i % 4,
      'cache_key', case when i % 5 = 0 then null else 'k' || i end,
      'cache_source_task_id', case when i % 3 = 0 then gen_random_uuid() end,
      'cache_saved_ms', case when i % 3 = 0 then i * 11 when i % 11 = 0 then 5 end,
      'reused_from_task_id', case when i % 29 = 0 then gen_random_uuid() end,
      'models', case when i % 4 = 0 then '{"a": {"model": "ns/alpha"}}'::jsonb
        when i % 4 = 1 then '{"a": {"model": "ns/alpha"}, "b": {"model": "ns/beta"}, "c": {"model": "ns/alpha"}}'::jsonb end)) c
    where t.run_id = '${runId}'`;
}

const at = (hours: number) => new Date(base.getTime() + hours * HOUR);
/** Periods starting on an hour, inside one (to the millisecond), before every task, and after the last. */
const sinces = () => [at(-1), at(0), at(7.2186), at(12), at(29.9991), at(31)];
/** Charts: whole hours, local days half an hour off UTC, and uneven buckets to the millisecond. */
const charts = () => [
  Array.from({ length: 31 }, (_, i) => at(i)),
  Array.from({ length: 8 }, (_, i) => at(0.5 + i * 5)),
  [at(-3), at(1.0001), at(1.9999), at(2.5), at(17), at(17.25), at(33)],
];
const readables: Domain[][] = [['experimentation', 'adhoc', 'production'], ['production'], ['experimentation', 'adhoc'], []];

/** Every figure, from the rollups and from the tasks alone, side by side. */
async function expectSameFigures(when: string) {
  const db = t.app.services.db;
  for (const since of sinces()) {
    for (const groupBy of ['team', 'workflow', 'model'] as const)
      for (const viewer of [{ admin: true } as const, { admin: false, identityId: aliceId } as const])
        expect(await costFigures(db, since, groupBy, viewer), `${when}: costs since ${since.toISOString()} by ${groupBy}`).toEqual(
          await directCosts(sql, since, groupBy, viewer),
        );
    for (const groupBy of ['team', 'workflow', 'module'] as const)
      for (const readable of readables)
        expect(await cacheStats(db, since, groupBy, readable), `${when}: cacheStats since ${since.toISOString()} by ${groupBy}`).toEqual(
          await directCacheStats(sql, since, groupBy, readable),
        );
  }
  for (const boundaries of charts())
    for (const readable of readables)
      expect(await cacheSavingsOverTime(db, boundaries, readable), `${when}: over time ${boundaries[0]!.toISOString()}`).toEqual(
        await directOverTime(sql, boundaries, readable),
      );
}

describe('period figures from the hourly rollups', () => {
  it('equal the direct aggregate over the tasks as they end, change, un-end and go, folded or not', async () => {
    const [{ n }] = (await sql`select count(*)::int as n from tasks where finished_at is not null and node like 'n%'`) as unknown as [{ n: number }];
    expect(n).toBeGreaterThan(3500);
    await expectSameFigures('as inserted');
    await foldTaskFigures(t.app.services.db);
    const [{ unfolded }] = (await sql`select count(*)::int as unfolded from task_figures_hourly where not folded`) as unknown as [{ unfolded: number }];
    expect(unfolded).toBe(0);
    await expectSameFigures('folded');
    // tasks that end later, longer runs, retries that un-end a task, a move across an hour's edge, deletions
    await sql`update tasks set finished_at = ${at(3.5).toISOString()}::timestamptz where finished_at is null and node like 'n%'`;
    await sql`update tasks set execution_ms = execution_ms + 250, cache_saved_ms = coalesce(cache_saved_ms, 0) + 1 where node like 'n%' and substr(node, 2)::int % 7 = 3`;
    await sql`update tasks set finished_at = null where node like 'n%' and substr(node, 2)::int % 19 = 4`;
    await sql`update tasks set finished_at = finished_at + interval '1 microsecond' where node like 'n%' and substr(node, 2)::int % 20 = 1`;
    await sql`delete from tasks where node like 'n%' and substr(node, 2)::int % 41 = 5`;
    await expectSameFigures('changed');
    await foldTaskFigures(t.app.services.db);
    await expectSameFigures('changed, folded');
  });

  it('count a transaction that ends tasks in a folded hour and commits after the reads and a fold', async () => {
    const late = await sql.reserve();
    try {
      await late`begin`;
      // started now, ending tasks with ends hours ago (an executor's result delivered late does the same)
      await late`update tasks set finished_at = ${at(2.25).toISOString()}::timestamptz, status = 'SUCCEEDED', execution_ms = 1234, gpus = 2
        where node like 'n%' and substr(node, 2)::int % 19 = 4`;
      await expectSameFigures('late transaction open');
      await foldTaskFigures(t.app.services.db);
      await expectSameFigures('late transaction open, folded');
      const before = await costFigures(t.app.services.db, at(0), 'workflow', { admin: true });
      await late`commit`;
      const after = await costFigures(t.app.services.db, at(0), 'workflow', { admin: true });
      expect(after.reduce((a, r) => a + r.tasks, 0)).toBeGreaterThan(before.reduce((a, r) => a + r.tasks, 0));
      await expectSameFigures('late transaction committed');
      await foldTaskFigures(t.app.services.db);
      await expectSameFigures('late transaction committed, folded');
    } finally {
      late.release();
    }
  });
});

describe('plans', () => {
  beforeAll(async () => {
    // a long history before it: 20,000 tasks that ended two months earlier, as a busy installation's would have
    await sql`insert into tasks select c.* from tasks t, generate_series(1, 20000) i,
        jsonb_populate_record(null::tasks, to_jsonb(t) || jsonb_build_object('id', gen_random_uuid(), 'node', 'h' || i,
          'run_id', (select ids[1 + i % 300] from probe_gr), 'finished_at', ${at(-1440).toISOString()}::timestamptz + make_interval(secs => i))) c
      where t.node = 'n1'`;
    await sql`analyze tasks`;
  }, 400_000);

  it('read the rollups, and tasks only for the hour a boundary lies inside, through tasks_finished_idx', async () => {
    const since = at(7.2186).toISOString();
    const logged = (await readFile(pg.logFile, 'utf8')).length; // plans from here on: these requests', on the long history
    await t.api.gql(`query ($s: DateTime!) { byTeam: costs(since: $s, groupBy: team) { tasks } byModel: costs(since: $s, groupBy: model) { tasks } }`, {
      s: since,
    });
    await t.api.gql(`query ($s: DateTime!) { cacheStats(since: $s, groupBy: module) { hits } }`, { s: since });
    await t.api.gql(`query ($b: [DateTime!]!) { cacheSavingsOverTime(boundaries: $b) { hits } }`, { b: charts()[1]!.map((d) => d.toISOString()) });
    const log = (await readFile(pg.logFile, 'utf8')).slice(logged);
    // the statements whose text reads a rollup (the plan follows the text)
    const plans = log
      .split(/LOG: {2}duration: [\d.]+ ms {2}plan:\n/)
      .filter((entry) => /^\s*Query Text: select [\s\S]*?from task_(figures|model_costs)_hourly h\s/.test(entry))
      .filter((entry) => !entry.includes('where (false)')); // a period starting on the hour reads no tasks at all
    expect(plans.length).toBeGreaterThanOrEqual(4);
    for (const plan of plans) {
      expect(plan).toMatch(/on task_(figures|model_costs)_hourly h/);
      expect(plan).toMatch(/Index Scan using tasks_finished_idx|Bitmap Index Scan on tasks_finished_idx/);
      expect(plan).not.toMatch(/Seq Scan on tasks/);
    }
  });
});
