// The embedded default (what `npm start` runs: PGlite, the in-process bus, the executor host inside the control
// plane) under load: a run of 2,000 and one of 10,000 independent no-op tasks, startRun → run SUCCEEDED, printed
// as tasks/s (or "did not finish in N s"). Its floor, measured in the same run on the same PGlite: one insert and one
// update per task, each in its own transaction, the least a durable record of a task's start and end can cost.
// `EMBEDDED_BENCH_SIZES=2000,10000` and `EMBEDDED_BENCH_LIMIT_S=200` change the runs and the limit.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sql } from 'drizzle-orm';
import { packDirectory } from '../server/artifacts/archive';
import { queryRows } from '../server/db/client';
import { startTestApp, type TestApp } from '../test/harness/app';
import { PUBLISH } from '../test/harness/client';
import type { Row } from './lib';

const here = path.dirname(fileURLToPath(import.meta.url));

/** Floor: per task one insert and one update on the app's own PGlite, each a transaction of its own. */
async function floor(t: TestApp, tasks: number): Promise<number> {
  const { db } = t.app.database;
  await db.execute(sql`create table if not exists bench_embedded_floor (id int primary key, status text not null)`);
  const t0 = performance.now();
  for (let i = 0; i < tasks; i++) {
    await db.transaction(async (tx) => {
      await tx.execute(sql`insert into bench_embedded_floor (id, status) values (${i}, 'RUNNING')`);
    });
    await db.transaction(async (tx) => {
      await tx.execute(sql`update bench_embedded_floor set status = 'SUCCEEDED' where id = ${i}`);
    });
  }
  const perSecond = tasks / ((performance.now() - t0) / 1000);
  await db.execute(sql`drop table bench_embedded_floor`);
  return perSecond;
}

/** Starts a run of `width` independent no-op tasks and waits for its end: tasks/s, or undefined past `limitMs`. */
async function runOnce(t: TestApp, width: number, limitMs: number) {
  const name = `embedded-${width}`;
  await t.createWorkflow({ name, tasks: Array.from({ length: width }, (_, i) => ({ name: `t${i}`, module: 'bench/noop' })) });
  const t0 = performance.now();
  const { startRun } = await t.api.gql(`mutation ($w: String!) { startRun(workflow: $w) { id } }`, { w: name });
  let status = 'QUEUED';
  while (status === 'QUEUED' || status === 'RUNNING') {
    if (performance.now() - t0 > limitMs) {
      const wall = performance.now() - t0;
      const [row] = await queryRows<{ n: number }>(
        t.app.database.db,
        sql`select count(*)::int as n from tasks where run_id = ${startRun.id} and status = 'SUCCEEDED'`,
      );
      await t.api.gql(`mutation ($id: ID!) { cancelRun(id: $id) { id } }`, { id: startRun.id }).catch(() => undefined);
      return { wall, status: 'unfinished', done: row?.n ?? 0 };
    }
    await new Promise((r) => setTimeout(r, 250));
    // A poll may meet a kept-alive socket the server just closed (ECONNRESET) while a long PGlite statement held the
    // event loop: the next poll asks again.
    status = await t.api.gql(`query ($id: ID!) { run(id: $id) { status } }`, { id: startRun.id }).then(
      (data) => data.run.status as string,
      () => status,
    );
  }
  return { wall: performance.now() - t0, status, done: width };
}

export async function embeddedBench(): Promise<Row[]> {
  const sizes = (process.env.EMBEDDED_BENCH_SIZES ?? '2000,10000').split(',').map(Number);
  const limitS = Number(process.env.EMBEDDED_BENCH_LIMIT_S ?? 200);
  // The default tick (1 s) and pools, as `npm start` runs; the test harness's 100 ms tick would add sweeps.
  const t = await startTestApp({ ATELIER_TICK_MS: '1000' });
  const rows: Row[] = [];
  try {
    const published = await t.api.upload(PUBLISH, {}, 'artifact', await packDirectory(path.join(here, 'modules', 'noop')));
    if (published.errors) throw new Error(JSON.stringify(published.errors));
    const floorPerSecond = await floor(t, 2000);
    for (const width of sizes) {
      const { wall, status, done } = await runOnce(t, width, limitS * 1000);
      const finished = status !== 'unfinished';
      // An unfinished run reports the rate of the tasks it did finish within the limit.
      const perSecond = done / (wall / 1000);
      rows.push({
        bench: 'embedded',
        metric: `${width} no-op tasks on PGlite + in-process bus, startRun → run done`,
        value: perSecond,
        unit: 'tasks/s',
        floor: floorPerSecond,
        ratio: floorPerSecond / perSecond,
        note: finished ? `wall ${Math.round(wall)} ms, run ${status}` : `did not finish in ${limitS} s (${done} done)`,
      });
      console.log(
        `  ${width} tasks: ${Math.round(perSecond)} tasks/s, ${finished ? `${Math.round(wall)} ms, ${status}` : `did not finish in ${limitS} s (${done} done)`}`,
      );
    }
  } finally {
    await t.stop();
  }
  return rows;
}
