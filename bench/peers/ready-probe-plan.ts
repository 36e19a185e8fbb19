// The plan Postgres makes for the recorder's "any READY task in the run" probe (recorded-tasks.ts `readyInRun`) on a
// database with a backlog of READY tasks in other runs: a 300-task chain's run (one task running, the rest PENDING)
// beside `others` runs of `each` READY tasks in one pool, with the statistics a fresh table has (never analysed), taken
// while the tables were small, and analysed over the backlog. `npx tsx bench/peers/ready-probe-plan.ts [others] [each]`.
import postgres from 'postgres';
import { startPostgres } from '../../test/harness/postgres';
import { runWhenMain } from '../lib';

const PROBES: Record<string, string> = {
  // As the read had it: correlated on the outer task's run.
  before: `select t.id, exists (select 1 from tasks r where r.run_id = t.run_id and r.status = 'READY') as ready_in_run
    from tasks t where t.id = $1::uuid`,
  // The run's first waiting task in status order, from the back ('READY' sorts after 'PENDING'): one descent of
  // tasks_run_waiting_idx (run_id, status), the only path that gives that order without reading all the run's tasks.
  after: `select t.id, coalesce((select r.status from tasks r where r.run_id = t.run_id and r.status in ('PENDING', 'READY')
      order by r.status desc limit 1) = 'READY', false) as ready_in_run
    from tasks t where t.id = $1::uuid`,
};

async function readyProbePlan(others: number, each: number): Promise<[]> {
  const pg = await startPostgres({ migrated: true, settings: { autovacuum: 'off' } });
  const sql = postgres(pg.url, { max: 1, onnotice: () => {} });
  try {
    const experiment = (await sql<{ id: string }[]>`insert into experiments (name) values ('plan') returning id`)[0]!.id;
    const run = async (tasks: number, status: (i: number) => string) => {
      const id = (await sql<{ id: string }[]>`insert into runs (experiment_id, status, trigger) values (${experiment}, 'RUNNING', 'API') returning id`)[0]!.id;
      await sql`insert into tasks (run_id, node, status, pool, executor, timeout_ms, depends_on, queued_at)
        select ${id}, 's' || i, case ${status(0)} when 'chain' then (case when i = 0 then 'RUNNING' else 'PENDING' end) else 'READY' end,
          'default', 'local', 60000, case when i = 0 then '{}'::text[] else array['s' || (i - 1)] end, now() - make_interval(secs => i)
        from generate_series(0, ${tasks - 1}) as i`;
      return id;
    };
    const chain = await run(300, () => 'chain');
    const running = (await sql<{ id: string }[]>`select id from tasks where run_id = ${chain} and node = 's0'`)[0]!.id;
    const explain = async (label: string) => {
      for (const [form, text] of Object.entries(PROBES)) {
        const plan = await sql.unsafe(`explain (analyze, buffers, costs off, timing off, summary off) ${text}`, [running]);
        console.log(`--- ${label}, ${form}\n${plan.map((r) => r['QUERY PLAN']).join('\n')}`);
      }
    };
    // Small tables, analysed (as a new install's first minutes leave them), then the backlog written behind them; or
    // never analysed (NEVER_ANALYSED=1).
    if (!process.env.NEVER_ANALYSED) await sql`analyze tasks`;
    for (let i = 0; i < others; i++) await run(each, () => 'READY');
    await explain(
      `${process.env.NEVER_ANALYSED ? 'never analysed' : 'statistics taken before the backlog'} (${others} runs of ${each} READY tasks beside the chain)`,
    );
    // Both forms answer alike: none READY in the chain's run, some in a backlog run's.
    const backlogTask = (await sql<{ id: string }[]>`select id from tasks where run_id <> ${chain} limit 1`)[0]!.id;
    for (const id of [running, backlogTask]) {
      const answers = await Promise.all(Object.values(PROBES).map(async (text) => (await sql.unsafe(text, [id]))[0]!.ready_in_run));
      console.log(`ready_in_run for ${id === running ? 'the chain' : 'a backlog run'}: ${answers.join(', ')}`);
      if (answers[0] !== answers[1]) throw new Error('the probes disagree');
    }
    await sql`analyze tasks`;
    await explain('analysed over the backlog');
    return [];
  } finally {
    await sql.end();
    await pg.stop();
  }
}

runWhenMain(import.meta.url, () => readyProbePlan(Number(process.argv[2] ?? 40), Number(process.argv[3] ?? 100)));
