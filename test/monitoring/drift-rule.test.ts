// A monitor's DRIFT rule end to end on the embedded app: a dataset's newest version against its baseline version,
// computed over stored profiles as the monitor's creator, so a column they may not read is never compared (nor
// named); N consecutive breaches open one alert that names the columns and the values that crossed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { evaluateDueMonitors } from '../../server/monitoring/evaluator';
import { startTestApp, type TestApp } from '../harness/app';
import type { ApiClient } from '../harness/client';

let t: TestApp;
let alice: ApiClient;
const digest = (c: string) => `sha256:${c.repeat(64)}`;
const columns = [
  { name: 'amount', type: 'float', label: { level: 'PUBLIC' } },
  { name: 'plan', type: 'string', label: { level: 'PUBLIC' } },
  { name: 'ssn', type: 'string', label: { level: 'CONFIDENTIAL', categories: ['PII'] } },
];
const sample = (shift: number, pro: number) =>
  Array.from({ length: 200 }, (_, i) => ({ amount: (i % 20) + shift, plan: i % 4 < pro ? 'pro' : 'free', ssn: shift ? `z${i % 3}` : `a${i % 5}` }));
const addVersion = (d: string, s: unknown) =>
  t.api.gql(`mutation ($c: [DatasetColumnInput!]!, $s: JSON) { addDatasetVersion(name: "shop/orders", columns: $c, digest: "${d}", sample: $s) { id } }`, {
    c: columns,
    s,
  });
let t0 = new Date();
const pass = (seconds: number) => evaluateDueMonitors(t.app.services.db, { now: new Date(t0.getTime() + seconds * 1000) });

beforeAll(async () => {
  t = await startTestApp({ ATELIER_MONITOR_EVAL_MS: '3600000' });
  alice = await t.user('alice');
  await t.team('shop', ['alice'], ['shop']);
  await t.api.gql(
    `mutation ($c: [DatasetColumnInput!]!, $s: JSON) { createDataset(name: "shop/orders", domain: experimentation, columns: $c, digest: "${digest('a')}", sample: $s) { id } }`,
    { c: columns, s: sample(0, 1) },
  );
}, 60_000);
afterAll(() => t?.stop());

describe('DRIFT rule on a dataset', () => {
  let monitor = '';

  it('is created with per-statistic thresholds, and measures nothing while there is one version', async () => {
    const { createMonitor } = await alice.gql(
      `mutation ($i: MonitorInput!) { createMonitor(input: $i) { id rules { id kind consecutive psi jensenShannon ks columns } } }`,
      {
        i: {
          name: 'orders drift',
          target: { kind: 'DATASET', ref: 'shop/orders' },
          metric: 'drift',
          rules: [{ id: 'd', kind: 'DRIFT', consecutive: 2, psi: 0.25 }],
        },
      },
    );
    monitor = createMonitor.id;
    t0 = new Date(Date.now() + 1000);
    expect(createMonitor.rules).toEqual([{ id: 'd', kind: 'DRIFT', consecutive: 2, psi: 0.25, jensenShannon: null, ks: null, columns: null }]);
    expect(await pass(0)).toEqual({ evaluated: 1, opened: 0 });
    const { monitor: m } = await alice.gql(`query ($id: ID!) { monitor(id: $id) { state } }`, { id: monitor });
    expect(m.state.d).toMatchObject({ consecutive: 0, lastValue: null });
  });

  it('refuses a threshold out of range, saying which', async () => {
    const bad = await alice.raw(`mutation ($i: MonitorInput!) { createMonitor(input: $i) { id } }`, {
      i: { name: 'x', target: { kind: 'DATASET', ref: 'shop/orders' }, metric: 'drift', rules: [{ kind: 'DRIFT', jensenShannon: 2 }] },
    });
    expect(bad.errors?.[0]?.message).toBe('rules.0.jensenShannon must be a number above 0 and below 1.');
  });

  it('opens one alert after N drifting evaluations, naming only the columns the owner may read', async () => {
    await addVersion(digest('b'), sample(15, 3));
    // The unreadable column drifts too (the admin sees it): the owner's monitor never computes over it.
    const { datasetDrift } = await t.api.gql(`{ datasetDrift(name: "shop/orders", version: 2, baseline: 1) { columns { column breaches } } }`);
    expect(datasetDrift.columns.map((c: any) => c.column)).toEqual(['amount', 'plan', 'ssn']);
    expect(datasetDrift.columns.every((c: any) => c.breaches.length > 0)).toBe(true);
    expect(await pass(61)).toEqual({ evaluated: 1, opened: 0 });
    expect(await pass(122)).toEqual({ evaluated: 1, opened: 1 });
    const { monitor: m } = await alice.gql(`query ($id: ID!) { monitor(id: $id) { state alerts(states: [OPEN]) { title value bound rule } } }`, {
      id: monitor,
    });
    expect(m.alerts).toHaveLength(1);
    const [alert] = m.alerts;
    expect(alert).toMatchObject({ value: 2, bound: 0, rule: 'd' });
    expect(alert.title).toMatch(
      /^orders drift: drift drift in 2 columns of shop\/orders v2 against v1: amount \(PSI \d+\.\d{3} > 0\.25\); plan \(Jensen–Shannon \d\.\d{3} > 0\.1\) \(2 evaluations in a row\)$/,
    );
    expect(alert.title).not.toMatch(/ssn/);
  });

  it('a version back like the baseline passes: the breach count starts over', async () => {
    await addVersion(digest('c'), sample(0, 1));
    // Newest (3) against the version before it (2): drifted back, so it breaches; pinned to baseline 1 it passes.
    await alice.gql(`mutation ($id: ID!, $i: MonitorChangeInput!) { updateMonitor(id: $id, input: $i) { id } }`, {
      id: monitor,
      i: { rules: [{ id: 'd', kind: 'DRIFT', consecutive: 2, psi: 0.25, baselineVersion: 1 }] },
    });
    expect(await pass(183)).toEqual({ evaluated: 1, opened: 0 });
    const { monitor: m } = await alice.gql(`query ($id: ID!) { monitor(id: $id) { state } }`, { id: monitor });
    expect(m.state.d).toMatchObject({ consecutive: 0, lastValue: 0 });
  });
});
