// The statements of S1 one by one: a run of `width` independent no-op tasks on Postgres + NATS (as S1 of
// `npm run bench -- peers`), every statement the control plane sent while it ran (pg_stat_statements), by server
// time: calls per task, total ms. `npx tsx bench/peers/throughput-profile.ts [width]`.
import { copyFile } from 'node:fs/promises';
import postgres from 'postgres';
import { startNats } from '../../test/harness/nats';
import { startPostgres } from '../../test/harness/postgres';
import { type Row, runWhenMain } from '../lib';
import { atelierThroughput, independent, startAtelier } from './atelier';
import { asRole, inDatabase, OBSERVER, statementCounter } from './statements';

const statementSettings = { shared_preload_libraries: 'pg_stat_statements', 'pg_stat_statements.max': '20000', 'pg_stat_statements.track': 'top' };
/** `PROFILE_EXPLAIN_MS=n`: auto_explain logs the plan of every statement slower than n ms; the log is copied to PROFILE_EXPLAIN_LOG. */
const explainMs = process.env.PROFILE_EXPLAIN_MS;
const explainSettings: Record<string, string> = explainMs
  ? { shared_preload_libraries: 'pg_stat_statements,auto_explain', 'auto_explain.log_min_duration': `${explainMs}ms`, 'auto_explain.log_analyze': 'on' }
  : {};

export async function throughputProfile(width: number): Promise<Row[]> {
  const [pg, nats] = await Promise.all([startPostgres({ settings: { ...statementSettings, ...explainSettings } }), startNats()]);
  const counter = await statementCounter(inDatabase(pg.url, 'postgres'));
  const a = await startAtelier({ pgUrl: pg.url, natsUrl: nats.url }, [independent('profile', width)], counter, 2000);
  const observer = postgres(asRole(inDatabase(pg.url, 'postgres'), OBSERVER), { max: 1, onnotice: () => {} });
  try {
    const r = await atelierThroughput(a, 'profile', width, counter);
    const rows = await observer<{ calls: string; ms: number; query: string }[]>`
      select calls, total_exec_time as ms, query from pg_stat_statements
      where dbid = (select oid from pg_database where datname = ${a.database})
        and userid <> (select oid from pg_roles where rolname = ${OBSERVER})
      order by total_exec_time desc`;
    for (const row of rows)
      console.log(
        `${Number(row.ms).toFixed(0).padStart(7)} ms ${(Number(row.calls) / width).toFixed(4).padStart(7)}/task  ${row.query.replace(/\s+/g, ' ').slice(0, Number(process.env.PROFILE_WIDTH ?? 200))}`,
      );
    console.log(
      `${width} tasks: ${r.tasksPerSecond.toFixed(0)} tasks/s, ${r.statementsPerTask.toFixed(3)} statements per task (${r.netStatementsPerTask.toFixed(3)} less the idle loops), ${r.serverMsPerTask.toFixed(3)} ms server time per task`,
    );
    if (explainMs) await copyFile(pg.logFile, process.env.PROFILE_EXPLAIN_LOG ?? 'throughput-profile.log');
    return [];
  } finally {
    await observer.end();
    await a.stop();
    await counter.end();
    await nats.stop();
    await pg.stop();
  }
}

runWhenMain(import.meta.url, () => throughputProfile(Number(process.argv[2] ?? 10000)));
