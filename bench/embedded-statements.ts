// The embedded default's statements one by one: a run of N independent no-op tasks (as `npm run bench -- embedded`)
// with every PGlite statement timed where PGlite runs it (the wire protocol, after its lock), grouped by text. Times are
// the process's CPU time (process.cpuUsage), not wall time, so a loaded machine inflates them less.
// `npx tsx bench/embedded-statements.ts [tasks]`.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PGlite } from '@electric-sql/pglite';
import { sql } from 'drizzle-orm';
import { packDirectory } from '../server/artifacts/archive';
import { queryRows } from '../server/db/client';
import { startTestApp } from '../test/harness/app';
import { PUBLISH } from '../test/harness/client';
import { runWhenMain } from './lib';

const here = path.dirname(fileURLToPath(import.meta.url));
const stats = new Map<string, { calls: number; ms: number }>();
let counting = false;

/** Times every protocol exchange and charges it to the statement its Parse (or simple Query) message named. */
function timeStatements() {
  const proto = PGlite.prototype as unknown as { execProtocolStream(message: Uint8Array, options?: unknown): Promise<unknown> };
  const original = proto.execProtocolStream;
  let current = '';
  proto.execProtocolStream = async function (this: unknown, message: Uint8Array, options?: unknown) {
    const type = String.fromCharCode(message[0]!);
    if (type === 'P' || type === 'Q') {
      const start = type === 'P' ? message.indexOf(0, 5) + 1 : 5;
      current = new TextDecoder().decode(message.subarray(start, message.indexOf(0, start))).replace(/\s+/g, ' ');
    }
    const t0 = process.cpuUsage();
    try {
      return await original.call(this, message, options);
    } finally {
      if (counting) {
        const s = stats.get(current) ?? { calls: 0, ms: 0 };
        if (type === 'P' || type === 'Q') s.calls++;
        const used = process.cpuUsage(t0);
        s.ms += (used.user + used.system) / 1000;
        stats.set(current, s);
      }
    }
  };
}

export async function embeddedStatements(width: number) {
  timeStatements();
  const t = await startTestApp({ ATELIER_TICK_MS: '1000' });
  try {
    const published = await t.api.upload(PUBLISH, {}, 'artifact', await packDirectory(path.join(here, 'modules', 'noop')));
    if (published.errors) throw new Error(JSON.stringify(published.errors));
    await t.createWorkflow({ name: 'profile', tasks: Array.from({ length: width }, (_, i) => ({ name: `t${i}`, module: 'bench/noop' })) });
    counting = true;
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const { startRun } = await t.api.gql(`mutation { startRun(workflow: "profile") { id } }`);
    const startMs = performance.now() - t0;
    const startCpu = process.cpuUsage(cpu0);
    let status = 'QUEUED';
    while (status === 'QUEUED' || status === 'RUNNING') {
      await new Promise((r) => setTimeout(r, 100));
      status = (await t.api.gql(`query ($id: ID!) { run(id: $id) { status } }`, { id: startRun.id })).run.status;
    }
    const wall = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    counting = false;
    const rows = [...stats].sort((a, b) => b[1].ms - a[1].ms);
    const all = rows.reduce((s, [, v]) => ({ calls: s.calls + v.calls, ms: s.ms + v.ms }), { calls: 0, ms: 0 });
    for (const [text, { calls, ms }] of rows)
      console.log(
        `${ms.toFixed(0).padStart(7)} ms ${(calls / width).toFixed(3).padStart(7)}/task ${calls.toString().padStart(6)}  ${text.slice(0, Number(process.env.WIDTH ?? 200))}`,
      );
    // Rows the run left per task: its events, its stored feed, and the task rows' versions (inserts + updates).
    await t.app.database.db.execute(sql`select pg_stat_force_next_flush()`);
    const [left] = await queryRows<{ events: number; feed: number; feed_events: number; versions: number }>(
      t.app.database.db,
      sql`select (select count(*)::int from task_events where run_id = ${startRun.id}) as events,
            (select count(*)::int from run_events where run_id = ${startRun.id}) as feed,
            (select event_seq::int from runs where id = ${startRun.id}) as feed_events,
            (select (n_tup_ins + n_tup_upd)::int from pg_stat_user_tables where relname = 'tasks') as versions`,
    );
    console.log(
      `rows per task: task_events ${(left!.events / width).toFixed(2)}, run_events ${(left!.feed / width).toFixed(2)} (${(left!.feed_events / width).toFixed(2)} feed events), task row versions ${(left!.versions / width).toFixed(2)}`,
    );
    console.log(
      `${width} tasks ${status} in ${wall.toFixed(0)} ms (${(width / (wall / 1000)).toFixed(0)} tasks/s); process CPU ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms (${((cpu.user + cpu.system) / 1000 / width).toFixed(3)} ms/task); PGlite ${all.ms.toFixed(0)} ms CPU, ${all.calls} statements (${(all.calls / width).toFixed(3)}/task); startRun answered in ${startMs.toFixed(0)} ms, ${((startCpu.user + startCpu.system) / 1000).toFixed(0)} ms CPU`,
    );
  } finally {
    await t.stop();
  }
  return [];
}

runWhenMain(import.meta.url, () => embeddedStatements(Number(process.argv[2] ?? 2000)));
