// A `length`-step no-op chain recorded by a control plane that did not start it (another replica, or itself before a
// restart): the run is started by an orchestrator of this process's own on the same database, and the control plane
// under test records every edge. What the recorder's read of a result's task (recorded-tasks.ts) cost, by the form it
// took (the scan of the run's PENDING tasks, or its children by key: run-edges.ts), from pg_stat_statements; and the
// statements and server time per edge. `npx tsx bench/peers/edge-replica.ts [length]`.
import { createRunFeed } from '../../server/events/feed';
import { createOrchestrator } from '../../server/orchestrator/orchestrator';
import { type Row, runWhenMain } from '../lib';
import { chain } from './atelier';
import { profileWorld } from './profile-world';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Which form a text of the read is, as pg_stat_statements normalises it (its constants numbered parameters). */
const formOf = (query: string) => {
  const children = /\(select \* from tasks d where d\.run_id = tasks\.run_id and (.*?) offset/.exec(query)?.[1];
  if (children === undefined) return 'scan';
  return /^d\.node = \$\d+::text$/.test(children) ? 'key' : /^d\.node = any\(/.test(children) ? 'keys' : 'leaf';
};

export async function edgeReplica(length: number): Promise<Row[]> {
  const world = await profileWorld([chain('replica', length)]);
  try {
    const db = world.atelier.t.app.services.db;
    // The other replica: its own orchestrator (and so its own run-edges), on the same database.
    const other = createOrchestrator({ db, feed: createRunFeed({ db }), onOutbox: () => {}, defaults: { timeoutMs: 60_000, executor: 'local' } });
    await world.counter.reset();
    const run = await other.startRun({ workflow: 'replica', trigger: 'API' }, null);
    for (;;) {
      const [row] = await world.atelier.observer<{ status: string }[]>`select status from runs where id = ${run.id}`;
      if (row && ['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(row.status)) {
        if (row.status !== 'SUCCEEDED') throw new Error(`the chain ended ${row.status}`);
        break;
      }
      await sleep(20);
    }
    const window = await world.counter.read(world.atelier.database);
    const edges = length - 1;
    const reads = new Map<string, { calls: number; ms: number }>();
    for (const row of await world.statements('calls'))
      if (row.query.includes('others_ended')) {
        const form = formOf(row.query);
        const sum = reads.get(form) ?? { calls: 0, ms: 0 };
        reads.set(form, { calls: sum.calls + Number(row.calls), ms: sum.ms + Number(row.ms) });
      }
    const all = [...reads.values()].reduce((a, r) => ({ calls: a.calls + r.calls, ms: a.ms + r.ms }), { calls: 0, ms: 0 });
    for (const [form, r] of reads) console.log(`read by ${form}: ${r.calls} calls, ${(r.ms / r.calls).toFixed(3)} ms a call`);
    console.log(
      `the read: ${(all.ms / all.calls).toFixed(3)} ms a call (${all.calls} calls); ${(window.statements / edges).toFixed(2)} statements, ${(window.serverMs / edges).toFixed(2)} ms server time per edge`,
    );
    return [];
  } finally {
    await world.stop();
  }
}

runWhenMain(import.meta.url, () => edgeReplica(Number(process.argv[2] ?? 300)));
