// What keeping the hourly rollups costs the statements S1 sends, by trigger design, inside Postgres: 10,000 tasks in
// 100 runs go through S1's row versions in batches (insert READY, QUEUED, RUNNING, a heartbeat, the end), each phase
// one statement a batch, timed by pg_stat_statements (server time, triggers included), the designs in turns on one
// migrated cluster. Server time moves with the machine's load; the backend's CPU time (/proc/PID/schedstat) much less.
// `npx tsx bench/rollup-triggers.ts [BATCH] [REPS]` (default 256, 3).
import { readFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import postgres from 'postgres';
import { startPostgres } from '../test/harness/postgres';

const BATCH = Number(process.argv[2] ?? 256);
const REPS = Number(process.argv[3] ?? 3);
const TASKS = 10_000;
const RUNS = 100;

const pg = await startPostgres({
  migrated: true,
  settings: { shared_preload_libraries: 'pg_stat_statements', 'pg_stat_statements.track': 'top', 'pg_stat_statements.max': '5000' },
});
const sql = postgres(pg.url, { max: 1, onnotice: () => undefined });

// The designs, each the SQL that creates its triggers once every trigger on tasks is dropped: none; 0063's
// statement-level triggers; the triggers as migrated (0064); row-level triggers with WHEN conditions writing the
// rollup (row-level.sql) or a delta table a statement-level trigger folds (row-delta.sql). ROLLUP_DESIGNS=name=file,…
// adds more.
const migrated = (await sql`select pg_get_triggerdef(oid) as def from pg_trigger where tgrelid = 'tasks'::regclass and not tgisinternal`).map(
  (r) => `${r.def};`,
);
const designs: Record<string, string> = {
  none: '',
  '0063': await triggersOf0063(),
  '0064': migrated.join('\n'),
  'row-level': await readFile(new URL('rollup-triggers/row-level.sql', import.meta.url), 'utf8'),
  'row-delta': await readFile(new URL('rollup-triggers/row-delta.sql', import.meta.url), 'utf8'),
};
for (const pair of (process.env.ROLLUP_DESIGNS ?? '').split(',').filter(Boolean)) {
  const [name, file] = pair.split('=');
  designs[name!] = await readFile(file!, 'utf8');
}

/** 0063's function (renamed: 0064 dropped it) and triggers, from the migration's text. */
async function triggersOf0063(): Promise<string> {
  const text = await readFile(new URL('../server/db/migrations/0063_omniscient_whizzer.sql', import.meta.url), 'utf8');
  return text
    .slice(text.indexOf('CREATE FUNCTION task_figures_change'), text.indexOf('-- What the tasks already stored'))
    .replaceAll('--> statement-breakpoint', '')
    .replace('CREATE FUNCTION', 'CREATE OR REPLACE FUNCTION');
}

async function dropTriggers() {
  const triggers = await sql`select tgname from pg_trigger where tgrelid = 'tasks'::regclass and not tgisinternal`;
  for (const { tgname } of triggers) await sql`drop trigger ${sql(tgname)} on tasks`;
}

const phases = {
  insert: `insert into tasks (id, run_id, node, status, timeout_ms, pool, executor, parameters, settings, data_access, module_ref, cache_key)
    select gen_random_uuid(), (select ids[1 + i % ${RUNS}] from probe_runs), 'n' || i, 'READY', 3600000, 'default', 'local',
      '{"message": "hello", "count": 3}', '{"local": {"cwd": "/tmp"}}', '{"inputs": [], "outputs": []}', 'test/noop@latest', 'k' || i
    from generate_series($1::int, $2::int) i returning id`,
  queued: `update tasks set status = 'QUEUED', queued_at = now(), attempt = 1 where id = any($1::uuid[]) and status = 'READY'`,
  running: `update tasks set status = 'RUNNING', started_at = now(), host = 'host-1', heartbeat_at = now(), external_handle = '{"pid": 1234}'
    where id = any($1::uuid[]) and status = 'QUEUED'`,
  heartbeat: `update tasks set heartbeat_at = now() where id = any($1::uuid[]) and status = 'RUNNING'`,
  end: `update tasks set status = 'SUCCEEDED', finished_at = now(), outputs = '{"result": "ok"}', progress = 1, exit_code = 0,
      execution_ms = 3, provisioning_ms = 0, retry_at = null
    where id = any($1::uuid[]) and status = 'RUNNING'`,
};

/** What tells each phase's statement apart in pg_stat_statements (constants come back as $n). */
const marks = { insert: 'insert into tasks', queued: 'queued_at = now()', running: 'external_handle', heartbeat: 'set heartbeat_at', end: 'exit_code' };

/** The CPU time a process has run, in ns (the first field of /proc/PID/schedstat): what load does not lengthen. */
async function cpuNs(pid: number): Promise<number> {
  return Number((await readFile(`/proc/${pid}/schedstat`, 'utf8')).split(' ')[0]);
}

async function seed() {
  await sql`create extension if not exists pg_stat_statements`;
  await sql`set session_replication_role = replica`;
  await sql`insert into workflows (id, name, domain, latest_version) values (gen_random_uuid(), 'probe', 'experimentation', 1)`;
  await sql`insert into runs (id, workflow_id, experiment_id, status, trigger)
    select gen_random_uuid(), (select id from workflows where name = 'probe'), gen_random_uuid(), 'RUNNING', 'API' from generate_series(1, ${RUNS})`;
  await sql`set session_replication_role = origin`;
  await sql`create table probe_runs as select array_agg(id) as ids from runs`;
}

async function once(design: string): Promise<Record<string, number>> {
  await dropTriggers();
  if (designs[design]) await sql.unsafe(designs[design]!);
  await sql`truncate tasks, task_figures_hourly, task_model_costs_hourly cascade`;
  await sql`vacuum analyze tasks`;
  await sql`select pg_stat_statements_reset()`;
  const [{ backend }] = (await sql`select pg_backend_pid() as backend`) as unknown as [{ backend: number }];
  const cpu: Record<string, number> = {};
  for (let from = 0; from < TASKS; from += BATCH) {
    const to = Math.min(TASKS, from + BATCH) - 1;
    let ids: string[] = [];
    for (const [name, text] of Object.entries(phases)) {
      const before = await cpuNs(backend);
      const rows = await sql.unsafe(text, (name === 'insert' ? [from, to] : [ids]) as never[], { prepare: true });
      cpu[name] = (cpu[name] ?? 0) + (await cpuNs(backend)) - before;
      if (name === 'insert') ids = rows.map((r) => r.id as string);
    }
  }
  const rows =
    await sql`select query, calls, total_exec_time as ms from pg_stat_statements where query like 'insert into tasks%' or query like 'update tasks%'`;
  const out: Record<string, number> = {};
  for (const name of Object.keys(phases)) {
    const row = rows.find((r) => String(r.query).includes(marks[name as keyof typeof phases]));
    out[name] = row ? Number(row.ms) : NaN;
    out[`${name}Cpu`] = cpu[name]! / 1e6;
  }
  const [{ figures }] = (await sql`select coalesce(sum(executed), 0)::int as figures from task_figures_hourly`) as unknown as [{ figures: number }];
  out.rollupExecuted = figures;
  return out;
}

try {
  await seed();
  const results: Record<string, Record<string, number>[]> = {};
  for (let rep = 0; rep < REPS; rep++)
    for (const design of Object.keys(designs)) {
      const r = await once(design);
      (results[design] ??= []).push(r);
      console.log(
        `rep ${rep} ${design}: ${Object.entries(r)
          .map(([k, v]) => `${k} ${Math.round(v * 10) / 10}`)
          .join(', ')} (load ${loadavg()[0]!.toFixed(1)})`,
      );
    }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const min = (xs: number[]) => Math.min(...xs);
  for (const [what, f] of [
    ['medians', median],
    ['minima', min],
  ] as const) {
    console.log(`\nbatch ${BATCH}, ${TASKS} tasks, ${what} of ${REPS} (ms of server time for all ${TASKS} tasks):`);
    for (const [design, rs] of Object.entries(results))
      for (const suffix of ['', 'Cpu'])
        console.log(
          `${(design + (suffix ? ' cpu' : ' server')).padEnd(18)} ${Object.keys(phases)
            .map((p) => `${p} ${f(rs.map((r) => r[p + suffix]!)).toFixed(1)}`)
            .join('  ')}  total ${f(rs.map((r) => Object.keys(phases).reduce((s, p) => s + r[p + suffix]!, 0))).toFixed(1)}`,
        );
  }
} finally {
  await sql.end();
  await pg.stop();
}
