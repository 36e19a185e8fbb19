// Tracking search benchmarks on real Postgres: searchRuns over 100,000 runs (5 metrics each, 10% of them in a domain
// the caller may not read) with a metric filter and a metric order, and compareRuns of 100 runs × 5 metrics with
// 1,000 points per series. Rows are inserted directly in SQL. The floor, from the same run: the plain run list
// (`runs(first: 50)`: the same HTTP, GraphQL and authorization path, one index scan).
import { pathToFileURL } from 'node:url';
import { sql as drizzleSql } from 'drizzle-orm';
import { PgDialect } from 'drizzle-orm/pg-core';
import postgres from 'postgres';
import { compareRuns } from '../server/tracking/compare';
import { rollupStoredPoints } from '../server/tracking/rollups';
import { searchRuns } from '../server/tracking/search';
import { startTestApp } from '../test/harness/app';
import type { Infra } from './foundation';
import { p50, type Row } from './lib';

const RUNS = 100_000;
const METRICS = ['acc', 'loss', 'f1', 'precision', 'recall'];
const SAMPLES = 20;

/** The rollup statement for the points of `runIds`, as text (this bench talks to Postgres through postgres.js). */
function rollupSql(runIds: string[]): string {
  const query = new PgDialect().sqlToQuery(rollupStoredPoints(drizzleSql.raw(`run_id in (${runIds.map((id) => `'${id}'::uuid`).join(', ')})`)));
  if (query.params.length) throw new Error('the rollup statement takes no parameters here');
  return query.sql;
}

export async function seed(url: string): Promise<string[]> {
  const sql = postgres(url, { max: 2, onnotice: () => {} });
  try {
    const [experiment] = await sql`insert into experiments (name) values (${`bench-search-${Date.now()}`}) returning id`;
    const ids = await sql`
      insert into runs (experiment_id, status, trigger, domain, parameters, created_at)
      select ${experiment!.id}, 'SUCCEEDED', 'EXTERNAL', case when i % 10 = 0 then 'production' else 'experimentation' end,
        jsonb_build_object('lr', round((random() * 0.1)::numeric, 5), 'batch', (i % 4) * 32), now() - (i || ' seconds')::interval
      from generate_series(1, ${RUNS}) i returning id`;
    await sql`
      insert into metric_summaries (task_id, run_id, name, count, last, last_step, last_at, last_attempt, last_seq, min, min_step, max, max_step)
      select gen_random_uuid(), r.id, m.name, 1000, v, 999, now(), 1, 1000, v - 0.1, 10, v + 0.1, 500
      from runs r cross join unnest(${METRICS}::text[]) as m(name) cross join lateral (select random() as v where m.name is not null and r.id is not null) x
      where r.experiment_id = ${experiment!.id}`;
    // The run-level rows storeMetricPoints keeps beside them (as migration 0027 backfills them).
    await sql`
      insert into run_metric_summaries (run_id, name, last, last_at, last_task, min, max)
      select distinct on (run_id, name) run_id, name, nullif(last, 'NaN'::float8), last_at, task_id, min(min) over w, max(max) over w
      from metric_summaries s where s.run_id in (select id from runs where experiment_id = ${experiment!.id})
      window w as (partition by run_id, name) order by run_id, name, last_at desc, task_id desc`;
    // 100 runs to compare, 1,000 points per series, on the tasks their summaries name.
    const compared = ids.slice(0, 100).map((r) => r.id as string);
    await sql`
      insert into metric_blocks (task_id, name, attempt, block, run_id, n, seq_lo, seq_hi, seqs, steps, vals, ats)
      select s.task_id, s.name, 1, 0, s.run_id, 1000, 1, 1000, array_agg(g order by g), array_agg(g - 1 order by g), array_agg(random() order by g),
        array_agg(now() order by g)
      from metric_summaries s cross join generate_series(1::bigint, 1000) g
      where s.run_id = any(${compared}::uuid[]) group by s.task_id, s.name, s.run_id`;
    // Their rollups, as storeMetricPoints keeps them (and migration metric-rollups backfills them).
    await sql.unsafe(rollupSql(compared));
    await sql`analyze runs`;
    await sql`analyze metric_summaries`;
    await sql`analyze run_metric_summaries`;
    await sql`analyze metric_blocks`;
    await sql`analyze metric_rollup_pages`;
    return compared;
  } finally {
    await sql.end();
  }
}

export async function trackingSearchBench(infra: Infra): Promise<Row[]> {
  const t = await startTestApp({ DATABASE_URL: infra.pgUrl, NATS_URL: infra.natsUrl });
  try {
    const compared = await seed(infra.pgUrl);
    // A member of no team: experimentation only, so every query first leaves out the production runs.
    const member = await t.user(`bench-member-${Date.now()}`);
    const check = async (query: string, variables: object) => {
      const result = await member.raw(query, variables as Record<string, unknown>);
      if (result.errors) throw new Error(JSON.stringify(result.errors));
      return result.data;
    };
    const floor = await p50(() => check(`{ runs(first: 50) { edges { node { id status } } } }`, {}), SAMPLES);
    const SEARCH = `query ($f: String, $o: [String!]) { searchRuns(filter: $f, orderBy: $o, first: 50) { edges { cursor node { id status } } } }`;
    const first = await check(SEARCH, { f: 'metrics.acc > 0.9 and params.lr < 0.05', o: ['metrics.acc DESC'] });
    if (first.searchRuns.edges.length !== 50) throw new Error(`search found ${first.searchRuns.edges.length} runs, expected 50`);
    const search = await p50(() => check(SEARCH, { f: 'metrics.acc > 0.9 and params.lr < 0.05', o: ['metrics.acc DESC'] }), SAMPLES);
    const searchOrder = await p50(() => check(SEARCH, { f: 'metrics.loss.min < 0.5', o: ['metrics.f1.max DESC', 'params.lr ASC'] }), SAMPLES);
    const COMPARE = `query ($ids: [ID!]!, $m: [String!]) { compareRuns(ids: $ids, metrics: $m, maxPoints: 200) {
      runs { id } params { key values } metrics { name values { last min max } } series { runId metric steps values } } }`;
    const compare = await p50(
      () => check(COMPARE, { ids: compared.filter((_, i) => i % 10 !== 0).concat(compared.filter((_, i) => i % 10 === 0)), m: METRICS }),
      SAMPLES,
    );
    // The same two calls without HTTP and GraphQL: how much of each figure is the query itself.
    const db = t.app.database.db;
    const searchDirect = await p50(
      () => searchRuns(db, ['experimentation'], 'metrics.acc > 0.9 and params.lr < 0.05', ['metrics.acc DESC'], { limit: 50, inverted: false }),
      SAMPLES,
    );
    const compareDirect = await p50(() => compareRuns(db, ['experimentation'], { ids: compared, metrics: METRICS, maxPoints: 200 }), SAMPLES);
    return [
      { bench: 'tracking', metric: 'searchRuns() called directly (SQL and row mapping only), p50', value: searchDirect, unit: 'ms' },
      { bench: 'tracking', metric: 'compareRuns() called directly (SQL and row mapping only), p50', value: compareDirect, unit: 'ms' },
      { bench: 'tracking', metric: 'runs(first: 50) p50 (floor)', value: floor, unit: 'ms' },
      {
        bench: 'tracking',
        metric: 'searchRuns 100k runs, metric+param filter, metric order, p50',
        value: search,
        unit: 'ms',
        floor,
        ratio: search / floor,
        note: 'aim ≤ 100 ms',
      },
      { bench: 'tracking', metric: 'searchRuns 100k runs, 3 metrics + param order, p50', value: searchOrder, unit: 'ms', floor, ratio: searchOrder / floor },
      {
        bench: 'tracking',
        metric: 'compareRuns 100 runs × 5 metrics (1,000 pts each → 200), p50',
        value: compare,
        unit: 'ms',
        floor,
        ratio: compare / floor,
        note: 'aim ≤ 300 ms',
      },
    ];
  } finally {
    await t.stop();
  }
}

// `npx tsx bench/tracking-search.ts`: this bench alone, on its own Postgres and NATS.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [{ startPostgres }, { startNats }, { printTable }] = await Promise.all([
    import('../test/harness/postgres'),
    import('../test/harness/nats'),
    import('./lib'),
  ]);
  const [pg, nats] = await Promise.all([startPostgres(), startNats()]);
  let code = 0;
  try {
    printTable(await trackingSearchBench({ pgUrl: pg.url, natsUrl: nats.url }));
  } catch (error) {
    console.error(error);
    code = 1;
  } finally {
    await nats.stop();
    await pg.stop();
  }
  process.exit(code);
}
