// Cache benchmarks on real Postgres + NATS: a 1,000-task no-op workflow run twice with the same inputs; the second
// run completes entirely from cache without reaching an executor. Prints both wall times, their ratio, and the cost
// of looking up every key of the run at once (one query on the entries' primary key).
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { eq, sql } from 'drizzle-orm';
import { packDirectory } from '../server/artifacts/archive';
import { queryRows } from '../server/db/client';
import { tasks } from '../server/db/tables/runs';
import { startTestApp, type TestApp } from '../test/harness/app';
import { PUBLISH } from '../test/harness/client';
import { startExecutorProcess } from '../test/harness/executor-process';
import type { Infra } from './foundation';
import type { Row } from './lib';

const here = path.dirname(fileURLToPath(import.meta.url));
const WIDTH = 998; // with `start` and `join`: 1,000 tasks

const workflow = {
  name: 'cache-1k',
  tasks: [
    { name: 'start', module: 'bench/noop-cached' },
    ...Array.from({ length: WIDTH }, (_, i) => ({ name: `n${i}`, module: 'bench/noop-cached', parameters: { shard: i }, dependsOn: ['start'] })),
    { name: 'join', module: 'bench/noop-cached', dependsOn: Array.from({ length: WIDTH }, (_, i) => `n${i}`) },
  ],
};

async function runToEnd(t: TestApp): Promise<{ id: string; wall: number }> {
  const t0 = performance.now();
  const { startRun } = await t.api.gql(`mutation { startRun(workflow: "cache-1k") { id status } }`);
  let status = startRun.status;
  while (status === 'QUEUED' || status === 'RUNNING') {
    await new Promise((r) => setTimeout(r, 20));
    status = (await t.api.gql(`query ($id: ID!) { run(id: $id) { status } }`, { id: startRun.id })).run.status;
  }
  const wall = performance.now() - t0;
  if (status !== 'SUCCEEDED') throw new Error(`the 1k-task run ended ${status}`);
  return { id: startRun.id, wall };
}

export async function cacheBench(infra: Infra): Promise<Row[]> {
  const t = await startTestApp({ DATABASE_URL: infra.pgUrl, NATS_URL: infra.natsUrl });
  const executor = await startExecutorProcess(
    { NATS_URL: infra.natsUrl, ATELIER_URL: t.url, ATELIER_TOKEN: t.app.adminToken, ATELIER_DATA_DIR: `${t.dataDir}/executor` },
    ['noop'],
    ['--concurrency', '256'],
  );
  try {
    const published = await t.api.upload(PUBLISH, {}, 'artifact', await packDirectory(path.join(here, 'modules', 'noop-cached')));
    if (published.errors) throw new Error(JSON.stringify(published.errors));
    await t.createWorkflow(workflow);
    const first = await runToEnd(t);
    const second = await runToEnd(t);
    const { db } = t.app.database;
    const [counted] = await queryRows<{ hits: number }>(
      db,
      sql`select count(*)::int as hits from tasks where run_id = ${second.id} and cache_source_task_id is not null`,
    );
    if (counted?.hits !== WIDTH + 2) throw new Error(`the second run took ${counted?.hits} of ${WIDTH + 2} tasks from cache`);

    // What dispatch does for a batch of ready tasks: one lookup of all their keys.
    const keys = (await db.select({ key: tasks.cacheKey }).from(tasks).where(eq(tasks.runId, first.id))).map((r) => r.key!);
    const samples: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      await db.transaction((tx) => t.app.services.cache.lookup(tx, keys, new Date()));
      samples.push(performance.now() - t0);
    }
    // However many keys a batch has, it is one query; for one key, the plan shows the index it uses.
    const plan = await queryRows<{ 'QUERY PLAN': string }>(db, sql`explain select * from cache_entries where key = ${keys[0]}`);
    const indexed = plan.some((p) => /Index Scan|Bitmap Index Scan/.test(p['QUERY PLAN']));
    return [
      { bench: 'cache', metric: '1,000-task no-op workflow, first run', value: first.wall, unit: 'ms' },
      { bench: 'cache', metric: 'same workflow and inputs again, all from cache', value: second.wall, unit: 'ms', note: 'aim: under 1000 ms' },
      { bench: 'cache', metric: 'first run / cached run', value: first.wall / second.wall, unit: '×', note: 'aim: over 50×' },
      {
        bench: 'cache',
        metric: `lookup of ${keys.length} keys (one query)`,
        value: Math.min(...samples),
        unit: 'ms',
        note: indexed ? 'one key: an index scan' : 'one key: NOT an index scan',
      },
    ];
  } finally {
    await executor.stop();
    await t.stop();
  }
}
