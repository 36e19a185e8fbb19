// Observations about model versions and aliases: an alias's stream follows the alias as it moves (each observation
// keeps the version it was about), a version's series includes what was observed through an alias, and a
// REGRESSION rule against the EVALUATION baseline compares with the metric the version's run logged.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { evaluateDueMonitors } from '../../server/monitoring/evaluator';
import { startTestApp, type TestApp } from '../harness/app';
import type { ApiClient } from '../harness/client';
import { REGISTER, runToEnd, setUpRegistryWorld } from '../registry/setup';

let t: TestApp;
let alice: ApiClient;
const champion = { kind: 'ALIAS', ref: 'ml/churn@champion' };
const RECORD = `mutation ($o: [ObservationInput!]!) { recordObservations(observations: $o) { recorded } }`;
const SERIES = `query ($t: MonitorTargetInput!) { metricSeries(target: $t, metric: "accuracy") { buckets { count mean } } }`;
const move = (version: string) =>
  alice.gql(`mutation ($v: String!) { setModelAlias(model: "ml/churn", alias: "champion", version: $v, reason: "test") { alias } }`, { v: version });
const series = async (target: object) =>
  (await alice.gql(SERIES, { t: target })).metricSeries.flatMap((g: any) => g.buckets.map((b: any) => [b.count, Math.round(b.mean * 1000) / 1000]));

beforeAll(async () => {
  t = await startTestApp({ ATELIER_MONITOR_EVAL_MS: '3600000' });
  ({ alice } = await setUpRegistryWorld(t));
  for (const seed of [1, 2]) {
    const run = await runToEnd(t, 'train', { seed });
    await alice.gql(REGISTER, { m: 'ml/churn', t: run.task.train!.id, o: 'model' });
  }
}, 120_000);

afterAll(() => t?.stop());

it('follows an alias as it moves, and a version’s series holds what was observed through the alias', async () => {
  await move('1');
  await alice.gql(RECORD, { o: [{ target: champion, metric: 'accuracy', value: 0.8 }] });
  await move('2');
  await alice.gql(RECORD, { o: [{ target: champion, metric: 'accuracy', value: 0.7 }] });
  await alice.gql(RECORD, { o: [{ target: { kind: 'MODEL_VERSION', ref: 'ml/churn@2' }, metric: 'accuracy', value: 0.6 }] });
  expect(await series(champion)).toEqual([[2, 0.75]]);
  expect(await series({ kind: 'MODEL_VERSION', ref: 'ml/churn@1' })).toEqual([[1, 0.8]]);
  expect(await series({ kind: 'MODEL_VERSION', ref: 'ml/churn@2' })).toEqual([[2, 0.65]]);
});

it('measures a regression against the evaluation metric of the version the alias points at', async () => {
  const { createMonitor } = await alice.gql(`mutation ($i: MonitorInput!) { createMonitor(input: $i) { id target { kind ref } } }`, {
    i: {
      name: 'champion accuracy',
      target: champion,
      metric: 'accuracy',
      rules: [{ id: 'vs-eval', kind: 'REGRESSION', baseline: 'EVALUATION', maxDrop: 0.1, windowSeconds: 600 }],
    },
  });
  expect(createMonitor.target).toEqual(champion);
  // The window's mean (0.75) against the 0.95 `train` logged for version 2: a 21 % drop.
  expect(await evaluateDueMonitors(t.app.services.db, { now: new Date(Date.now() + 1000) })).toEqual({ evaluated: 1, opened: 1 });
  const { monitor } = await alice.gql(`query ($id: ID!) { monitor(id: $id) { alerts { value bound title } state } }`, { id: createMonitor.id });
  expect(monitor.alerts).toHaveLength(1);
  expect(monitor.alerts[0].value).toBeCloseTo(0.75);
  expect(monitor.alerts[0].bound).toBeCloseTo(0.855);
  expect(monitor.state['vs-eval'].lastBaseline).toBe(0.95);
});
