// A task served from cache (or reused by a rerun) holds a copy of its source's metric summaries (server/tracking/
// inherit.ts). Points its source receives after the copy was made — the late words of the execution that ended it (a
// metric batch redelivered after its result), or a metric its creator logs into the finished run over MLflow — reach
// every copy too, down a chain of reuse, so a run whose task was cached reads as the run that ran. Reports are
// published straight onto the app's bus, on real Postgres, so each step is deterministic.
import { eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { ExecutorEvent } from '../../plugins/protocol';
import { queryRows } from '../../server/db/client';
import { tasks } from '../../server/db/tables/runs';
import { EVENTS_DURABLE } from '../../server/events/recorder';
import { refreshCopies } from '../../server/tracking/inherit';
import { storeMetricPoints } from '../../server/tracking/metrics';
import { startTestApp, type TestApp } from '../harness/app';
import { type PostgresServer, startPostgres } from '../harness/postgres';

let pg: PostgresServer;
let t: TestApp;

beforeAll(async () => {
  pg = await startPostgres();
  t = await startTestApp({ DATABASE_URL: pg.url, ATELIER_EMBEDDED_EXECUTOR: '0' });
  await t.publishFixture('echo');
  // A pool no host serves: only this test reports for the task.
  await t.createWorkflow({
    name: 'inherit-late',
    tasks: [{ name: 'train', module: 'test/echo', executor: 'noop', pool: 'nobody', parameters: { message: 'x' } }],
  });
}, 180_000);
afterAll(async () => {
  await t?.stop();
  await pg?.stop();
});

async function until<T>(probe: () => Promise<T | undefined | null | false>, what: string, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function report(events: ExecutorEvent[]) {
  for (const e of events) await t.app.bus.publishEvent(e, `${e.taskId}:${e.attempt}:${e.seq}`);
  await until(async () => {
    const b = await t.app.bus.eventBacklog(EVENTS_DURABLE);
    return b.recorded >= b.published;
  }, 'the events to be recorded');
}

const taskOf = async (runId: string) => (await t.app.services.db.select().from(tasks).where(eq(tasks.runId, runId)))[0]!;

type Summary = { name: string; count: number; last: number; last_step: number; min: number | null; max: number | null };
/** A task's summaries, as readers by task see them. */
const summariesOf = (taskId: string) =>
  queryRows<Summary>(
    t.app.services.db,
    sql`select name, count::int, last, last_step::int, min, max from metric_summaries where task_id = ${taskId}::uuid order by name`,
  );
/** A run's summaries, as searchRuns and compareRuns read them. */
const runSummariesOf = (runId: string) =>
  queryRows<{ name: string; last: number; min: number; max: number }>(
    t.app.services.db,
    sql`select name, last, min, max from run_metric_summaries where run_id = ${runId}::uuid order by name`,
  );

const metric = (base: Omit<ExecutorEvent, 'kind' | 'seq'>, seq: number, firstPoint: number, points: [string, number, number][]): ExecutorEvent => ({
  ...base,
  kind: 'metric',
  seq,
  firstPoint,
  points: points.map(([name, step, value]) => ({ name, step, value, at: Date.now() })),
});

it("brings every copy of a task's summaries up to date with points that reach the task after its copies were made", async () => {
  const { startRun: source } = await t.api.gql(`mutation { startRun(workflow: "inherit-late") { id } }`);
  const queued = await until(() => taskOf(source.id).then((task) => task.status === 'QUEUED' && task), 'the task to be queued');
  const base = { taskId: queued.id, runId: source.id, attempt: 1, host: 'h', at: new Date().toISOString() };
  // The host sent its metrics in two batches, then its result; the second batch (seq 2) is delivered late.
  await report([
    { ...base, seq: 0, kind: 'started', handle: null },
    metric(base, 1, 0, [
      ['loss', 0, 1],
      ['loss', 1, 0.5],
    ]),
    { ...base, seq: 3, kind: 'result', outcome: { state: 'SUCCEEDED', outputs: {} }, durationMs: 5 },
  ]);
  expect((await taskOf(source.id)).status).toBe('SUCCEEDED');

  // Served from cache while the source's last batch is still on its way, and then reused by a rerun of that run.
  const { startRun: cached } = await t.api.gql(`mutation { startRun(workflow: "inherit-late") { id } }`);
  const hit = await until(() => taskOf(cached.id).then((task) => task.status === 'SUCCEEDED' && task), 'the cache hit');
  expect(hit.cacheSourceTaskId).toBe(queued.id);
  const { rerunRun } = await t.api.gql(`mutation ($id: ID!) { rerunRun(id: $id, from: FAILED) { id } }`, { id: cached.id });
  const reused = await until(() => taskOf(rerunRun.id).then((task) => task.status === 'SUCCEEDED' && task), 'the reuse');
  expect(reused.reusedFromTaskId).toBe(hit.id);
  expect(await summariesOf(hit.id)).toEqual(await summariesOf(queued.id));

  // The late batch: a later point of `loss` and a metric the copies have not seen.
  await report([
    metric(base, 2, 2, [
      ['loss', 2, 0.25],
      ['acc', 2, 0.9],
    ]),
  ]);
  const source2 = await summariesOf(queued.id);
  expect(source2).toEqual([
    { name: 'acc', count: 1, last: 0.9, last_step: 2, min: 0.9, max: 0.9 },
    { name: 'loss', count: 3, last: 0.25, last_step: 2, min: 0.25, max: 1 },
  ]);
  for (const copy of [hit.id, reused.id]) expect(await summariesOf(copy)).toEqual(source2);
  const runs = await runSummariesOf(source.id);
  for (const run of [cached.id, rerunRun.id]) expect(await runSummariesOf(run)).toEqual(runs);

  // Its creator logs an evaluation into the finished run over MLflow: the copies have it too.
  const logged = await fetch(`${t.url}/api/2.0/mlflow/runs/log-metric`, {
    method: 'POST',
    headers: { authorization: `Bearer ${t.app.adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ run_id: queued.id, key: 'eval', value: 0.75, timestamp: Date.now(), step: 0 }),
  });
  expect(logged.status).toBe(200);
  const source3 = await summariesOf(queued.id);
  expect(source3.map((s) => s.name)).toEqual(['acc', 'eval', 'loss']);
  for (const copy of [hit.id, reused.id]) expect(await summariesOf(copy)).toEqual(source3);
  for (const run of [cached.id, rerunRun.id]) expect(await runSummariesOf(run)).toEqual(await runSummariesOf(source.id));
  // Into a copy itself (it never executed): refused, saying where to log; nothing of it mixes with the copied rows.
  const intoCopy = await fetch(`${t.url}/api/2.0/mlflow/runs/log-metric`, {
    method: 'POST',
    headers: { authorization: `Bearer ${t.app.adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ run_id: hit.id, key: 'eval', value: 0.1, timestamp: Date.now(), step: 1 }),
  });
  expect(intoCopy.status).toBe(400);
  expect(((await intoCopy.json()) as { message: string }).message).toContain(`served from cache by task ${queued.id}`);
  for (const copy of [hit.id, reused.id]) expect(await summariesOf(copy)).toEqual(source3);

  // The copies say which task reported the points: the source, down the chain too.
  const marks = await queryRows<{ source_task_id: string }>(
    t.app.services.db,
    sql`select distinct source_task_id from metric_summaries where task_id in (${hit.id}::uuid, ${reused.id}::uuid)`,
  );
  expect(marks).toEqual([{ source_task_id: queued.id }]);
  sourceTask = queued.id;
  sourceRun = source.id;
}, 120_000);

let sourceTask = '';
let sourceRun = '';

it('a cache hit made while points of its source are being stored waits for them, and copies them', async () => {
  expect(sourceTask).not.toBe('');
  const db = t.app.services.db;
  let hit: Promise<{ startRun: { id: string } }> | undefined;
  await db.transaction(async (tx) => {
    const late = { taskId: sourceTask, runId: sourceRun, attempt: 1, seq: 9, name: 'loss', step: 9, value: 0.125, at: new Date() };
    await storeMetricPoints(tx, [late]);
    await refreshCopies(tx, [sourceTask]);
    hit = t.api.gql(`mutation { startRun(workflow: "inherit-late") { id } }`);
    hit.catch(() => {}); // awaited below
    // The hit waits for the source's row, which the points' transaction holds until it commits.
    const pid = (await queryRows<{ pid: number }>(tx, sql`select pg_backend_pid() as pid`))[0]!.pid;
    await until(
      async () => {
        const [row] = await queryRows<{ n: number }>(db, sql`select count(*)::int as n from pg_stat_activity where ${pid}::int = any(pg_blocking_pids(pid))`);
        return row!.n > 0;
      },
      'the cache hit to wait for the source task',
      20_000,
    );
  });
  const { startRun } = await hit!;
  const copy = await until(() => taskOf(startRun.id).then((task) => task.status === 'SUCCEEDED' && task), 'the cache hit');
  expect(copy.cacheSourceTaskId).toBe(sourceTask);
  const source = await summariesOf(sourceTask);
  expect(source.find((s) => s.name === 'loss')).toMatchObject({ count: 4, last: 0.125, min: 0.125 });
  expect(await summariesOf(copy.id)).toEqual(source);
}, 60_000);
