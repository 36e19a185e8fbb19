// Long lists at scale: the run list and the audit log read a page from their index (not every row sorted), and keyset
// pages never skip or repeat a row, whatever the rows' timestamps share. Real Postgres with auto_explain logging each
// statement's plan, the real control plane over HTTP.
import { readFile } from 'node:fs/promises';
import { getTableConfig, type PgTable } from 'drizzle-orm/pg-core';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tables from '../../server/db/schema';
import { startTestApp, type TestApp } from '../harness/app';
import { type PostgresServer, startPostgres } from '../harness/postgres';

let pg: PostgresServer;
let t: TestApp;
let sql: postgres.Sql;
const SEEDED = 3000;

beforeAll(async () => {
  pg = await startPostgres({ settings: { shared_preload_libraries: 'auto_explain', 'auto_explain.log_min_duration': '0' }, migrated: true });
  t = await startTestApp({ DATABASE_URL: pg.url });
  sql = postgres(pg.url, { max: 1, onnotice: () => undefined });
  const [experiment] = await sql`insert into experiments (name) values ('list-pages') returning id`;
  // 60 runs in 10 milliseconds: six a millisecond, 100 µs apart, the last two of each at the same microsecond (a
  // transaction's rows share its time); then older runs enough for the planner to choose between index and sort.
  await sql`
    insert into runs (experiment_id, status, trigger, created_at)
    select ${experiment!.id}, 'SUCCEEDED', 'EXTERNAL',
           '2026-12-01T12:00:00.000Z'::timestamptz + make_interval(secs => (i / 6) * 0.001 + least(i % 6, 4) * 0.0001)
    from generate_series(0, 59) i`;
  await sql`
    insert into runs (experiment_id, status, trigger, created_at)
    select ${experiment!.id}, 'SUCCEEDED', 'EXTERNAL', '2026-11-01T00:00:00Z'::timestamptz + make_interval(secs => i)
    from generate_series(1, ${SEEDED}) i`;
  await sql`
    insert into audit_events (action, decision, subject, rule, details, created_at)
    select 'probe', 'allow', 'probe:' || (i % 50), 'none', '{}', now() - make_interval(secs => i)
    from generate_series(1, ${SEEDED}) i`;
  // A workflow's real task, copied onto the older runs as tasks that ended a month ago: the period figures below (cache
  // savings, costs) must read the last hour's tasks, not every task ever run.
  await t.publishFixture('echo');
  await t.createWorkflow({ name: 'pages', tasks: [{ name: 'greet', module: 'test/echo', parameters: { message: 'hi' } }] });
  const { startRun } = await t.api.gql(`mutation { startRun(workflow: "pages") { id } }`);
  for (let status = 'QUEUED'; ['QUEUED', 'RUNNING'].includes(status); await new Promise((r) => setTimeout(r, 100)))
    status = (await t.api.gql(`query ($id: ID!) { run(id: $id) { status } }`, { id: startRun.id })).run.status;
  await sql`
    insert into tasks
    select (jsonb_populate_record(null::tasks, to_jsonb(t) || jsonb_build_object(
      'id', gen_random_uuid(), 'run_id', r.id, 'finished_at', r.created_at, 'execution_ms', 1000))).*
    from tasks t, (select id, created_at from runs where created_at < '2026-12-01') r
    where t.run_id = ${startRun.id}`;
  await sql`analyze runs`;
  await sql`analyze tasks`;
  await sql`analyze audit_events`;
}, 120_000);

afterAll(async () => {
  await sql?.end();
  await t?.stop();
  await pg?.stop();
});

const RUNS_PAGE = `query ($first: Int, $after: String, $last: Int, $before: String, $since: DateTime, $until: DateTime) {
  runs(first: $first, after: $after, last: $last, before: $before, filter: { since: $since, until: $until }) {
    edges { node { id } } pageInfo { endCursor startCursor hasNextPage hasPreviousPage }
  }
}`;

describe('keyset pages', () => {
  it('never skip or repeat a run that shares its millisecond or its microsecond with the end of a page', async () => {
    const [since, until] = ['2026-12-01T12:00:00.000Z', '2026-12-01T12:00:01.000Z'];
    const expected = await sql`select id from runs where created_at >= ${since} and created_at < ${until} order by created_at desc, id desc`;
    expect(expected).toHaveLength(60);
    for (const size of [1, 4, 7]) {
      const forward: string[] = [];
      let after: string | null = null;
      for (;;) {
        const { runs }: { runs: any } = await t.api.gql(RUNS_PAGE, { first: size, after, since, until });
        forward.push(...runs.edges.map((e: { node: { id: string } }) => e.node.id));
        if (!runs.pageInfo.hasNextPage) break;
        after = runs.pageInfo.endCursor;
      }
      expect(forward, `pages of ${size}, newest first`).toEqual(expected.map((r) => r.id));

      const backward: string[] = [];
      let before: string | null = null;
      for (;;) {
        const { runs }: { runs: any } = await t.api.gql(RUNS_PAGE, { last: size, before, since, until });
        backward.unshift(...runs.edges.map((e: { node: { id: string } }) => e.node.id));
        if (!runs.pageInfo.hasPreviousPage) break;
        before = runs.pageInfo.startCursor;
      }
      expect(backward, `pages of ${size}, from the oldest end`).toEqual(expected.map((r) => r.id));
    }
  });

  it('refuses a cursor no page gave, with a typed error', async () => {
    for (const after of [
      'bm9wZQ',
      Buffer.from('2026-12-01T12:00:00Z|not-a-uuid').toString('base64url'),
      Buffer.from('yesterday|' + '0'.repeat(8) + '-0000-0000-0000-' + '0'.repeat(12)).toString('base64url'),
    ]) {
      const r = await t.api.raw(RUNS_PAGE, { first: 2, after });
      expect(r.errors?.[0]?.extensions?.code, after).toBe('BAD_USER_INPUT');
    }
  });
});

describe('plans', () => {
  it('reads a page of the run list, first or deep, from runs_created_idx', async () => {
    const first = await t.api.gql(RUNS_PAGE, { first: 20 });
    await t.api.gql(RUNS_PAGE, { first: 20, after: first.runs.pageInfo.endCursor });
    const plans = await plansOf(/from "runs" .*order by "runs"\."created_at" desc, "runs"\."id" desc limit/);
    expect(plans.length).toBeGreaterThanOrEqual(2);
    for (const plan of plans) {
      expect(plan).toContain('Index Scan using runs_created_idx');
      expect(plan).not.toMatch(/Sort Key|Seq Scan on runs/);
    }
    // The deep page starts its scan at the cursor (an index condition), not at the newest run.
    expect(plans.some((p) => /Index Cond: \(ROW\(created_at, id\) < ROW\(/.test(p))).toBe(true);
  });

  it('reads the audit log, newest first, from audit_events_at_idx', async () => {
    await t.api.gql(`{ auditEvents(limit: 20) { id } }`);
    const plans = await plansOf(/from "audit_events" .*order by "audit_events"\."created_at" desc limit/);
    expect(plans.length).toBeGreaterThanOrEqual(1);
    for (const plan of plans) expect(plan).toMatch(/Index Scan using audit_events_at_idx/);
  });
});

describe('period figures', () => {
  it('read the period’s tasks from tasks_finished_idx: cache savings, over time too, and costs', async () => {
    const since = new Date(Date.now() - 3_600_000).toISOString();
    await t.api.gql(`query ($s: DateTime!) { cacheStats(since: $s, groupBy: team) { hits } }`, { s: since });
    await t.api.gql(`query ($b: [DateTime!]!) { cacheSavingsOverTime(boundaries: $b) { hits } }`, { b: [since, new Date().toISOString()] });
    const { costs } = await t.api.gql(`query ($s: DateTime!) { costs(since: $s, groupBy: workflow) { group tasks } }`, { s: since });
    expect(costs).toEqual([{ group: 'pages', tasks: 1 }]);
    // whole hours come from the hourly rollups (test/db/period-figures.test.ts), the hour `since` lies inside from tasks
    for (const [what, match] of [
      ['cacheStats', /^\s*Query Text: select coalesce\(tm\.name/],
      ['cacheSavingsOverTime', /^\s*Query Text: select f\.bucket/],
      ['costs', /^\s*Query Text: select w\.name as "group", sum\(f\.executed\)::int as tasks/],
    ] as const) {
      const plans = await plansOf(match);
      expect(plans.length, what).toBeGreaterThanOrEqual(1);
      for (const plan of plans) {
        expect(plan, what).toMatch(/Index Scan using tasks_finished_idx|Bitmap Index Scan on tasks_finished_idx/);
        expect(plan, what).not.toMatch(/Seq Scan on tasks/);
      }
    }
  });
});

describe('searchRuns’ names', () => {
  it('finds a declared param among the readable runs through runs_parameters_idx, not a scan of the runs', async () => {
    await sql`insert into runs (experiment_id, status, trigger, parameters) select experiment_id, 'SUCCEEDED', 'EXTERNAL', '{"learningRate": 0.1}'
      from runs limit 1`;
    await sql`analyze runs`;
    const { searchRuns } = await t.api.gql(`{ searchRuns(filter: "params.learningRate <= 0.1", first: 5) { edges { node { id } } } }`);
    expect(searchRuns.edges).toHaveLength(1);
    const typo = await t.api.raw(`{ searchRuns(filter: "params.learningRat <= 0.1", first: 5) { edges { node { id } } } }`);
    expect(typo.errors?.[0]?.extensions?.code).toBe('UNKNOWN_PARAM');
    // the existence check (server/tracking/search-keys.ts), for the name that is there and for the typo
    const plans = await plansOf(/^\s*Query Text: select \(exists \(select 1 from logged_params/);
    expect(plans.length).toBeGreaterThanOrEqual(2);
    for (const plan of plans) {
      expect(plan).toMatch(/Bitmap Index Scan on runs_parameters_idx/);
      expect(plan).not.toMatch(/Seq Scan on runs/);
    }
  });
});

describe('a module version’s runs', () => {
  it('walks the runs newest first and stops at the limit, not reading every task of the version', async () => {
    const { module } = await t.api.gql(`{ module(name: "test/echo") { versions(limit: 1) { runs(limit: 5) { id } } } }`);
    expect(module.versions[0].runs).toHaveLength(5);
    const plans = await plansOf(/where exists \(select 1 from "tasks" where \("tasks"\."run_id" = "runs"\."id" and "tasks"\."module_version_id"/);
    expect(plans.length).toBeGreaterThanOrEqual(1);
    for (const plan of plans) {
      expect(plan).toContain('Index Scan using runs_created_idx');
      expect(plan).not.toMatch(/Seq Scan on tasks|Hash Join|Sort Key/);
    }
  });
});

describe('index order', () => {
  // drizzle's `.desc()` makes an index column DESC NULLS LAST, while `desc(column)` in a query orders DESC (NULLS
  // FIRST): Postgres matches an index to an ORDER BY nulls included (NOT NULL does not count), so such an index is never
  // used for the order it was made for (drizzle-team/drizzle-orm#5978). Every descending index column says nullsFirst.
  it('has every descending index column NULLS FIRST, the order desc(column) asks for', () => {
    const wrong: string[] = [];
    for (const table of Object.values(tables)) {
      if (!isTable(table)) continue;
      const config = getTableConfig(table);
      for (const index of config.indexes) {
        for (const column of index.config.columns) {
          const order = 'indexConfig' in column ? (column.indexConfig as { order?: string; nulls?: string }) : undefined;
          if (order?.order === 'desc' && order.nulls !== 'first') wrong.push(`${config.name}.${index.config.name}`);
        }
      }
    }
    expect(wrong).toEqual([]);
  });
});

/** The plans auto_explain logged for statements whose text matches, from the server's log. */
async function plansOf(match: RegExp): Promise<string[]> {
  const log = await readFile(pg.logFile, 'utf8');
  return log.split(/LOG: {2}duration: [\d.]+ ms {2}plan:\n/).filter((entry) => match.test(entry.split('\n')[0] ?? ''));
}

function isTable(value: unknown): value is PgTable {
  try {
    getTableConfig(value as PgTable);
    return true;
  } catch {
    return false;
  }
}
