// Costs and Savings over a long history, as session 23's probe built it (docs/performance.md, "Lists at scale"): a
// two-task workflow's real run copied into RUNS runs (default 80,004: 160,008 tasks), every one of them ended inside
// the last week, then each page's reads timed from the hourly rollups (the code as it is) beside the same figures read
// from the tasks alone (the queries before the rollups, test/db/direct-figures.ts), in turns, on one database.
// `npx tsx bench/period-figures.ts [RUNS] [REPS]`; it prints the load, the history's size and each page's times.
import { loadavg } from 'node:os';
import postgres from 'postgres';
import { cacheSavingsOverTime, cacheStats } from '../server/cache/stats';
import { costFigures } from '../server/runs/costs';
import { foldTaskFigures } from '../server/runs/fold-figures';
import { directCacheStats, directCosts, directOverTime } from '../test/db/direct-figures';
import { startTestApp } from '../test/harness/app';
import { startPostgres } from '../test/harness/postgres';

const RUNS = Number(process.argv[2] ?? 80_004);
const REPS = Number(process.argv[3] ?? 5);
const DAY = 86_400_000;

const pg = await startPostgres();
const t = await startTestApp({ DATABASE_URL: pg.url });
const sql = postgres(pg.url, { max: 1, onnotice: () => undefined });
const ms = async (fn: () => Promise<unknown>) => {
  const started = performance.now();
  await fn();
  return performance.now() - started;
};
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
try {
  await t.publishFixture('echo');
  await t.team('vision', []);
  await t.createWorkflow({
    name: 'probe',
    tasks: [
      { name: 'a', module: 'test/echo', parameters: { message: 'a' } },
      { name: 'b', module: 'test/echo', parameters: { message: 'b' }, dependsOn: ['a'] },
    ],
  });
  await sql`update workflows set team_id = (select id from teams where name = 'vision') where name = 'probe'`;
  const { startRun } = await t.api.gql(`mutation { startRun(workflow: "probe") { id } }`);
  for (let status = 'QUEUED'; ['QUEUED', 'RUNNING'].includes(status); await new Promise((r) => setTimeout(r, 100)))
    status = (await t.api.gql(`query ($id: ID!) { run(id: $id) { status } }`, { id: startRun.id })).run.status;
  const now = Date.now();
  const copied = await ms(async () => {
    // (a lateral call: `(f(row)).*` would call f once per column)
    await sql`insert into runs select c.* from runs r, generate_series(1, ${RUNS}) i,
        jsonb_populate_record(null::runs, to_jsonb(r) || jsonb_build_object('id', gen_random_uuid(), 'idempotency_key', null,
          'created_at', ${new Date(now - 7 * DAY).toISOString()}::timestamptz + make_interval(secs => i * 7.0 * 86400 / ${RUNS}))) c
      where r.id = ${startRun.id}`;
    // the copies end as they ran: over the last week, every one inside the Costs and Savings pages' period
    await sql`insert into tasks select c.* from tasks t, runs r,
        jsonb_populate_record(null::tasks, to_jsonb(t) || jsonb_build_object('id', gen_random_uuid(), 'run_id', r.id,
          'finished_at', r.created_at + interval '2 seconds')) c
      where t.run_id = ${startRun.id} and r.id <> ${startRun.id}`;
  });
  const folded = await ms(() => foldTaskFigures(t.app.services.db));
  await sql`vacuum analyze tasks`;
  await sql`vacuum analyze runs`;
  await sql`vacuum analyze task_figures_hourly`;
  const [{ tasks, rollup }] =
    (await sql`select (select count(*) from tasks)::int as tasks, (select count(*) from task_figures_hourly)::int as rollup`) as unknown as [
      { tasks: number; rollup: number },
    ];
  console.log(
    `history: ${RUNS + 1} runs, ${tasks} tasks (copied in ${Math.round(copied)} ms, triggers included), ${rollup} rollup rows (folded in ${Math.round(folded)} ms)`,
  );

  // The pages' reads, as the dashboards ask them for the last week: since a week ago (to the millisecond), by team,
  // workflow and model or module, and the Savings chart's eight local days.
  const since = new Date(now - 7 * DAY);
  const end = new Date(now);
  end.setHours(24, 0, 0, 0);
  const days = Array.from({ length: 8 }, (_, i) => new Date(end.getTime() - (7 - i) * DAY));
  const all = ['experimentation', 'adhoc', 'production'] as const;
  const admin = { admin: true } as const;
  const db = t.app.services.db;
  // one read after another for both ways (the tasks-alone client has one connection)
  const inTurn = async (reads: (() => Promise<unknown>)[]) => {
    for (const read of reads) await read();
  };
  const costGroups = ['team', 'workflow', 'model'] as const;
  const cacheGroups = ['team', 'workflow', 'module'] as const;
  const pages = {
    costs: {
      rollups: () => inTurn(costGroups.map((g) => () => costFigures(db, since, g, admin))),
      direct: () => inTurn(costGroups.map((g) => () => directCosts(sql, since, g, admin))),
    },
    savings: {
      rollups: () => inTurn([...cacheGroups.map((g) => () => cacheStats(db, since, g, [...all])), () => cacheSavingsOverTime(db, days, [...all])]),
      direct: () => inTurn([...cacheGroups.map((g) => () => directCacheStats(sql, since, g, [...all])), () => directOverTime(sql, days, [...all])]),
    },
  };
  for (const [page, ways] of Object.entries(pages)) {
    const times = { rollups: [] as number[], direct: [] as number[] };
    for (let rep = 0; rep < REPS; rep++)
      for (const way of rep % 2 ? (['direct', 'rollups'] as const) : (['rollups', 'direct'] as const)) times[way].push(await ms(ways[way]));
    const fmt = (xs: number[]) => `median ${median(xs).toFixed(1)} ms (${xs.map((x) => x.toFixed(0)).join(', ')})`;
    console.log(`${page}: rollups ${fmt(times.rollups)}; tasks alone ${fmt(times.direct)}; load ${loadavg()[0]!.toFixed(1)}`);
  }

  // What the triggers cost the statements that end tasks: 5,000 of the copies un-ended (untimed), then ended again in
  // statements of 50 (record-events' batches write one statement per batch), with the triggers on and off, in turns.
  const ids = (await sql`select id from tasks where run_id <> ${startRun.id} order by id limit 5000`).map((r) => r.id as string);
  const endAll = async (on: boolean) => {
    await sql`update tasks set finished_at = null, status = 'RUNNING' where id = any(${ids}::uuid[])`;
    if (!on) await sql`alter table tasks disable trigger task_figures_update`;
    const took = await ms(async () => {
      for (let i = 0; i < ids.length; i += 50)
        await sql`update tasks set status = 'SUCCEEDED', finished_at = now() where id = any(${ids.slice(i, i + 50)}::uuid[])`;
    });
    if (!on) await sql`alter table tasks enable trigger task_figures_update`;
    return took;
  };
  const ending = { on: [] as number[], off: [] as number[] };
  for (let rep = 0; rep < REPS; rep++) for (const on of rep % 2 ? [false, true] : [true, false]) ending[on ? 'on' : 'off'].push(await endAll(on));
  const perStatement = (xs: number[]) => `${((median(xs) / (ids.length / 50)) * 1000).toFixed(0)} µs a statement`;
  console.log(
    `ending 5,000 tasks, 50 a statement: triggers on median ${median(ending.on).toFixed(0)} ms (${perStatement(ending.on)}), off ${median(ending.off).toFixed(0)} ms (${perStatement(ending.off)}); load ${loadavg()[0]!.toFixed(1)}`,
  );
} finally {
  await sql.end();
  await t.stop();
  await pg.stop();
}
