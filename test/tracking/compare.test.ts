// compareRuns over GraphQL: params that differ (all on request), metric summaries side by side, series downsampled
// to maxPoints with shared step buckets and their extremes kept, NaN and ±Infinity as such, and its limits.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../harness/app';
import { seedRun } from './seed';

let t: TestApp;
let a = '';
let b = '';
let c = '';
const COMPARE = `query ($ids: [ID!]!, $m: [String!], $p: Int, $all: Boolean) {
  compareRuns(ids: $ids, metrics: $m, maxPoints: $p, allParams: $all) {
    runs { id name } missing
    params { key values differs }
    metrics { name values { last lastStep min minStep max maxStep count } }
    series { runId metric points { step value } steps values } } }`;

beforeAll(async () => {
  t = await startTestApp();
  const db = t.app.services.db;
  // 1,000 steps of loss with one spike at step 500; acc with a NaN at the end.
  const loss: [string, number, number][] = Array.from({ length: 1000 }, (_, i) => ['loss', i === 500 ? 50 : 1 / (i + 1), i]);
  a = await seedRun(db, { name: 'a', parameters: { lr: 0.1, opt: 'adam', seed: 1 }, tasks: [[...loss, ['acc', 0.5, 0], ['acc', Number.NaN, 1]]] });
  b = await seedRun(db, {
    name: 'b',
    parameters: { lr: 0.01, opt: 'adam' },
    logged: { seed: '1' },
    tasks: [
      [
        ['loss', 2, 0],
        ['loss', Number.POSITIVE_INFINITY, 10],
      ],
    ],
  });
  c = await seedRun(db, { name: 'c', parameters: { lr: 0.1 }, deleted: true, tasks: [[['loss', 0, 0]]] });
}, 60_000);

afterAll(() => t?.stop());

it('shows the params that differ, or all of them, aligned with the runs', async () => {
  const { compareRuns } = await t.api.gql(COMPARE, { ids: [b, a] });
  expect(compareRuns.runs.map((r: any) => r.name)).toEqual(['b', 'a']);
  expect(compareRuns.params).toEqual([{ key: 'lr', values: ['0.01', '0.1'], differs: true }]);
  const all = await t.api.gql(COMPARE, { ids: [a, b], all: true });
  expect(all.compareRuns.params).toEqual([
    { key: 'lr', values: ['0.1', '0.01'], differs: true },
    { key: 'opt', values: ['adam', 'adam'], differs: false },
    { key: 'seed', values: ['1', '1'], differs: false },
  ]);
});

it('puts metric summaries side by side, NaN and Infinity as such', async () => {
  const { compareRuns } = await t.api.gql(COMPARE, { ids: [a, b] });
  const loss = compareRuns.metrics.find((m: any) => m.name === 'loss');
  expect(loss.values[0]).toMatchObject({ last: 1 / 1000, lastStep: 999, min: 1 / 1000, minStep: 999, max: 50, maxStep: 500, count: 1000 });
  expect(loss.values[1]).toMatchObject({ last: 'Infinity', min: 2, max: 'Infinity', maxStep: 10, count: 2 });
  const acc = compareRuns.metrics.find((m: any) => m.name === 'acc');
  expect(acc.values).toEqual([{ last: 'NaN', lastStep: 1, min: 0.5, minStep: 0, max: 0.5, maxStep: 0, count: 2 }, null]);
});

it('downsamples each series to at most maxPoints on shared buckets, keeping the extremes', async () => {
  const { compareRuns } = await t.api.gql(COMPARE, { ids: [a, b], m: ['loss'], p: 20 });
  expect(compareRuns.metrics.map((m: any) => m.name)).toEqual(['loss']);
  const [sa, sb] = compareRuns.series;
  expect(sa.runId).toBe(a);
  expect(sa.points.length).toBeLessThanOrEqual(20);
  expect(sa.points).toContainEqual({ step: 500, value: 50 });
  expect(sa.points).toContainEqual({ step: 999, value: 1 / 1000 });
  const steps = sa.points.map((p: any) => p.step);
  expect(steps).toEqual([...steps].sort((x, y) => x - y));
  expect(sb.points).toEqual([
    { step: 0, value: 2 },
    { step: 10, value: 'Infinity' },
  ]);
  // The columnar form carries the same points.
  for (const s of [sa, sb]) expect(s.steps.map((step: number, i: number) => ({ step, value: s.values[i] }))).toEqual(s.points);
});

it('reports deleted and unknown ids as missing, and refuses more than 100 runs or a bad maxPoints', async () => {
  const unknown = randomUUID();
  const { compareRuns } = await t.api.gql(COMPARE, { ids: [a, c, unknown] });
  expect(compareRuns.runs.map((r: any) => r.id)).toEqual([a]);
  expect(compareRuns.missing).toEqual([c, unknown]);
  const many = await t.api.raw(COMPARE, { ids: Array.from({ length: 101 }, () => randomUUID()) });
  expect(many.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  expect(many.errors?.[0]?.message).toMatch(/at most 100 runs/);
  const points = await t.api.raw(COMPARE, { ids: [a], p: 1 });
  expect(points.errors?.[0]?.message).toMatch(/maxPoints must be 2 to 5000/);
});
