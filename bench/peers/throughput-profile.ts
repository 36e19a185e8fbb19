// The statements of S1 one by one: a run of `width` independent no-op tasks on Postgres + NATS (as S1 of
// `npm run bench -- peers`), every statement the control plane sent while it ran (pg_stat_statements), by server
// time: calls per task, total ms. `npx tsx bench/peers/throughput-profile.ts [width]`.
import { copyFile } from 'node:fs/promises';
import { type Row, runWhenMain } from '../lib';
import { atelierThroughput, independent } from './atelier';
import { profileWorld } from './profile-world';

/** `PROFILE_EXPLAIN_MS=n`: auto_explain logs the plan of every statement slower than n ms; the log is copied to PROFILE_EXPLAIN_LOG. */
const explainMs = process.env.PROFILE_EXPLAIN_MS;
const explainSettings: Record<string, string> = explainMs
  ? { shared_preload_libraries: 'pg_stat_statements,auto_explain', 'auto_explain.log_min_duration': `${explainMs}ms`, 'auto_explain.log_analyze': 'on' }
  : {};

export async function throughputProfile(width: number): Promise<Row[]> {
  const world = await profileWorld([independent('profile', width)], explainSettings);
  try {
    const r = await atelierThroughput(world.atelier, 'profile', width, world.counter);
    for (const row of await world.statements('time'))
      console.log(
        `${Number(row.ms).toFixed(0).padStart(7)} ms ${(Number(row.calls) / width).toFixed(4).padStart(7)}/task  ${row.query.replace(/\s+/g, ' ').slice(0, Number(process.env.PROFILE_WIDTH ?? 200))}`,
      );
    console.log(
      `${width} tasks: ${r.tasksPerSecond.toFixed(0)} tasks/s, ${r.statementsPerTask.toFixed(3)} statements per task (${r.netStatementsPerTask.toFixed(3)} less the idle loops), ${r.serverMsPerTask.toFixed(3)} ms server time per task`,
    );
    if (explainMs) await copyFile(world.logFile, process.env.PROFILE_EXPLAIN_LOG ?? 'throughput-profile.log');
    return [];
  } finally {
    await world.stop();
  }
}

runWhenMain(import.meta.url, () => throughputProfile(Number(process.argv[2] ?? 10000)));
