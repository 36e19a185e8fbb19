// Every metric point a module logs reaches the store once, in report order, end to end on the embedded app: NaN
// and ±Infinity kept, out-of-order steps kept as reported, a value that is no number dropped with a line in the
// task's log; the history comes back downsampled with its extremes, the run's summaries with it; a redelivered
// event adds nothing; a task served from cache shows its source's metrics, marked so.
import { and, eq } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { ExecutorEvent } from '../../plugins/protocol';
import { metricPoints } from '../../server/db/tables/tracking';
import { startTestApp, type TestApp } from '../harness/app';
import { PUBLISH, RUN_EVENTS } from '../harness/client';
import { metricsModuleArchive } from './metric-module';

let t: TestApp;

beforeAll(async () => {
  t = await startTestApp();
  const published = await t.api.upload(PUBLISH, { tags: ['latest'] }, 'artifact', await metricsModuleArchive());
  expect(published.errors).toBeUndefined();
  await t.createWorkflow({ name: 'metrics-special', tasks: [{ name: 'train', module: 'test/metrics', parameters: { count: 3000, special: true } }] });
}, 120_000);
afterAll(async () => t?.stop());

const terminal = (e: any) => e.runEvents.__typename === 'RunStatusEvent' && ['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(e.runEvents.runStatus);

async function runToEnd(workflow: string) {
  const { startRun } = await t.api.gql(`mutation ($w: String!) { startRun(workflow: $w) { id } }`, { w: workflow });
  const events = await t.api.subscribe<any>(RUN_EVENTS, { runId: startRun.id }, terminal);
  return { runId: startRun.id as string, events: events.map((e) => e.runEvents) };
}

const TASK = `query ($id: ID!, $name: String!, $max: Int) { run(id: $id) {
  status
  metrics { taskId node name count last lastSpecial lastStep min minSpecial minStep max maxSpecial maxStep fromCache sourceTaskId }
  tasks { id attempt metrics logs { line } metricHistory(name: $name, maxPoints: $max) { name attempt fromCache sourceTaskId total points { seq step value special } } }
} }`;

let sourceRun: string;
let sourceTask: string;

it('stores every point once in report order, NaN and ±Infinity kept, steps as reported; summarises each metric', async () => {
  const { runId } = await runToEnd('metrics-special');
  sourceRun = runId;
  const { run } = await t.api.gql(TASK, { id: runId, name: 'odd', max: 1000 });
  expect(run.status).toBe('SUCCEEDED');
  const task = run.tasks[0];
  sourceTask = task.id;
  expect(task.metricHistory).toMatchObject({ name: 'odd', attempt: 1, fromCache: false, sourceTaskId: null, total: 5 });
  expect(task.metricHistory.points.map((p: any) => [p.step, p.value, p.special])).toEqual([
    [10, 5, null],
    [3, null, 'NaN'],
    [7, null, 'Infinity'],
    [1, null, '-Infinity'],
    [2, -2, null],
  ]);
  // The value that was no number is gone, with a line in the task's log saying so; the rest of its call is kept.
  expect(task.logs.map((l: any) => l.line).join('\n')).toMatch(/metric "odd" is not a number/);
  expect(task.metrics).toEqual({ loss: { value: 1 / 3000, step: 2999 }, odd: { value: -2, step: 2 }, acc: { value: 0.5, step: 2 } });
  const odd = run.metrics.find((m: any) => m.name === 'odd');
  expect(odd).toMatchObject({
    node: 'train',
    count: 5,
    last: -2,
    lastStep: 2,
    min: null,
    minSpecial: '-Infinity',
    minStep: 1,
    max: null,
    maxSpecial: 'Infinity',
    maxStep: 7,
  });
  expect(run.metrics.find((m: any) => m.name === 'loss')).toMatchObject({
    count: 3000,
    last: 1 / 3000,
    lastStep: 2999,
    min: 1 / 3000,
    minStep: 2999,
    max: 1,
    maxStep: 0,
  });
  // Stored in report order: seq follows the loop.
  const rows = await t.app.database.db
    .select({ seq: metricPoints.seq, step: metricPoints.step })
    .from(metricPoints)
    .where(and(eq(metricPoints.taskId, sourceTask), eq(metricPoints.name, 'loss')))
    .orderBy(metricPoints.seq);
  expect(rows.map((r) => r.step)).toEqual(Array.from({ length: 3000 }, (_, i) => i));
});

it('downsamples a series on the server, keeping its first, last, lowest and highest points', async () => {
  const { run } = await t.api.gql(TASK, { id: sourceRun, name: 'loss', max: 10 });
  const history = run.tasks[0].metricHistory;
  expect(history.total).toBe(3000);
  expect(history.points.length).toBeLessThanOrEqual(10);
  const steps = history.points.map((p: any) => p.step);
  expect(steps[0]).toBe(0); // first, and the highest
  expect(steps.at(-1)).toBe(2999); // last, and the lowest
  expect([...steps].sort((a: number, b: number) => a - b)).toEqual(steps);
  const bad = await t.api.raw(TASK, { id: sourceRun, name: 'loss', max: 1 });
  expect(bad.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  const unknown = await t.api.gql(TASK, { id: sourceRun, name: 'no-such-metric', max: 10 });
  expect(unknown.run.tasks[0].metricHistory).toMatchObject({ attempt: null, total: 0, points: [] });
});

it('stores nothing twice when a metric event is delivered again', async () => {
  const base = { taskId: sourceTask, runId: sourceRun, attempt: 1, host: 'replay', at: new Date().toISOString() };
  const event = (seq: number, name: string): ExecutorEvent => ({
    ...base,
    seq,
    kind: 'metric',
    firstPoint: seq,
    points: [{ name, value: 1, step: 0, at: Date.now() }],
  });
  const again = event(1_000_000, 'replayed');
  await t.app.bus.publishEvent(again, 'first delivery');
  await t.app.bus.publishEvent(again, 'redelivery'); // another message id: the bus cannot tell it is the same
  await t.app.bus.publishEvent(event(1_000_001, 'marker'), 'marker');
  const count = async (name: string) =>
    (
      await t.app.database.db
        .select()
        .from(metricPoints)
        .where(and(eq(metricPoints.taskId, sourceTask), eq(metricPoints.name, name)))
    ).length;
  await expect.poll(() => count('marker'), { timeout: 20_000 }).toBe(1);
  expect(await count('replayed')).toBe(1);
});

it('shows a cached task’s source metrics, marked as from cache', async () => {
  const { runId } = await runToEnd('metrics-special');
  const { run } = await t.api.gql(TASK, { id: runId, name: 'odd', max: 1000 });
  const task = run.tasks[0];
  expect(task.id).not.toBe(sourceTask);
  expect(task.metricHistory).toMatchObject({ fromCache: true, sourceTaskId: sourceTask, total: 5 });
  expect(task.metricHistory.points).toHaveLength(5);
  expect(run.metrics.find((m: any) => m.name === 'loss')).toMatchObject({ taskId: task.id, fromCache: true, sourceTaskId: sourceTask, count: 3000 });
  expect(task.metrics.odd).toEqual({ value: -2, step: 2 });
  cachedRun = runId;
  cachedTask = task.id;
});

let cachedRun: string;
let cachedTask: string;

// Readers by run (search, compare, lineage and gates, MLflow) see a run as its tasks made it: a task served from cache
// or reused by a rerun executed nothing, and its run holds its source's summaries (server/tracking/inherit.ts).
it('finds, compares and serves over MLflow a run whose task was served from cache or reused, as the run that ran', async () => {
  const { rerunRun } = await t.api.gql(`mutation ($id: ID!) { rerunRun(id: $id, from: FAILED) { id tasks { reusedFromTaskId } } }`, { id: cachedRun });
  expect(rerunRun.tasks[0].reusedFromTaskId).toBe(cachedTask); // reused upon cached: followed to the task that ran
  await expect.poll(async () => (await t.api.gql(TASK, { id: rerunRun.id, name: 'loss', max: 10 })).run.status, { timeout: 20_000 }).toBe('SUCCEEDED');
  const reused = (await t.api.gql(TASK, { id: rerunRun.id, name: 'loss', max: 10 })).run;
  expect(reused.metrics.find((m: any) => m.name === 'loss')).toMatchObject({ fromCache: true, sourceTaskId: sourceTask, count: 3000 });
  expect(reused.tasks[0].metricHistory).toMatchObject({ fromCache: true, sourceTaskId: sourceTask });

  const ids = [sourceRun, cachedRun, rerunRun.id];
  const found = await t.api.gql(`query ($f: String!) { searchRuns(filter: $f, orderBy: ["metrics.loss"], first: 10) { edges { node { id } } } }`, {
    f: 'metrics.loss < 0.001 and metrics.loss.max >= 1',
  });
  expect(found.searchRuns.edges.map((e: any) => e.node.id).sort()).toEqual([...ids].sort());
  const { compareRuns } = await t.api.gql(
    `query ($ids: [ID!]!) { compareRuns(ids: $ids, metrics: ["loss"], maxPoints: 20) { metrics { name values { last count } } series { runId steps } } }`,
    { ids },
  );
  expect(compareRuns.metrics[0].values).toEqual(ids.map(() => ({ last: 1 / 3000, count: 3000 })));
  expect(compareRuns.series.map((s: any) => s.runId)).toEqual(ids);
  for (const s of compareRuns.series) expect(s.steps.length).toBeGreaterThan(1);

  const history = await fetch(`${t.url}/api/2.0/mlflow/metrics/get-history?${new URLSearchParams({ run_id: cachedTask, metric_key: 'odd' })}`, {
    headers: { authorization: `Bearer ${t.app.adminToken}` },
  });
  expect(((await history.json()) as any).metrics.map((m: any) => m.step)).toEqual([10, 3, 7, 1, 2]);
});
