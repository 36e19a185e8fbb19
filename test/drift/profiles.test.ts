// Stored profiles of dataset versions and drift between versions, through the real API: a profile computed from the
// sample or given (checked: a bad one refuses the version and writes nothing), read per column, and datasetDrift
// against a baseline version or the training version a model version's lineage names.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../harness/app';
import type { ApiClient } from '../harness/client';

let t: TestApp;
let alice: ApiClient;
const codeOf = (r: any) => r.errors?.[0]?.extensions?.code;
const msgOf = (r: any) => r.errors?.[0]?.message ?? '';
const digest = (c: string) => `sha256:${c.repeat(64)}`;
const columns = [
  { name: 'amount', type: 'float', label: { level: 'PUBLIC' } },
  { name: 'plan', type: 'string', label: { level: 'PUBLIC' } },
];
const addVersion = (api: ApiClient, d: string, extra: { sample?: unknown; profile?: unknown }) =>
  api.raw(
    `mutation ($c: [DatasetColumnInput!]!, $s: JSON, $p: JSON) { addDatasetVersion(name: "shop/orders", columns: $c, digest: "${d}", sample: $s, profile: $p) { versions { version } } }`,
    { c: columns, s: extra.sample ?? null, p: extra.profile ?? null },
  );
const profile = (version: number) =>
  alice
    .gql(`{ datasetProfile(name: "shop/orders", version: ${version}) { version columns { column kind count nulls summary } } }`)
    .then((d) => d.datasetProfile);

beforeAll(async () => {
  t = await startTestApp();
  alice = await t.user('alice');
  await t.team('shop', ['alice'], ['shop']);
  const sample = Array.from({ length: 200 }, (_, i) => ({ amount: i % 20, plan: i % 4 === 0 ? 'pro' : 'free' }));
  await alice.gql(
    `mutation ($c: [DatasetColumnInput!]!, $s: JSON) { createDataset(name: "shop/orders", domain: experimentation, columns: $c, digest: "${digest('a')}", sample: $s) { id } }`,
    { c: columns, s: sample },
  );
});
afterAll(async () => {
  await t?.stop();
});

describe('dataset profiles', () => {
  it('computes a version’s profile from its sample: exact values for numbers, counts for categories', async () => {
    const p = await profile(1);
    expect(p.columns.map((c: any) => [c.column, c.kind, c.count, c.nulls])).toEqual([
      ['amount', 'numeric', 200, 0],
      ['plan', 'categorical', 200, 0],
    ]);
    expect(p.columns[0].summary).toMatchObject({ min: 0, max: 19, histogram: { edges: expect.any(Array), counts: expect.any(Array) } });
    expect(p.columns[0].summary.values).toHaveLength(20);
    expect(p.columns[1].summary).toMatchObject({
      top: [
        ['free', 150],
        ['pro', 50],
      ],
      other: 0,
    });
  });

  it('refuses a profile naming an unknown column or whose counts disagree, and records no version', async () => {
    const bad = [
      [
        { ghost: { kind: 'categorical', count: 1, nulls: 0, top: [['x', 1]], other: 0 } },
        'profile.ghost: the version has no column "ghost"; profile only its columns (amount, plan).',
      ],
      [
        { plan: { kind: 'categorical', count: 10, nulls: 0, top: [['x', 4]], other: 1 } },
        'profile.plan: the top counts and other add up to 5, not count 10; they must add up to count.',
      ],
      [
        { amount: { kind: 'numeric', count: 3, nulls: 0, min: 0, max: 2, histogram: { edges: [0, 1, 2], counts: [1, 1] }, values: null } },
        'profile.amount.histogram.counts add up to 2, not count 3; they must add up to count.',
      ],
      [{ amount: { kind: 'numeric', count: -1, nulls: 0 } }, 'profile.amount: count and nulls must be non-negative integers.'],
    ] as const;
    for (const [p, message] of bad) {
      const r = await addVersion(alice, digest('b'), { profile: p });
      expect(codeOf(r)).toBe('BAD_USER_INPUT');
      expect(msgOf(r)).toBe(message);
    }
    const { dataset } = await alice.gql(`{ dataset(name: "shop/orders") { versions { version } } }`);
    expect(dataset.versions).toHaveLength(1);
  });

  it('stores a given profile as given, and computes drift against a baseline version', async () => {
    const given = {
      amount: { kind: 'numeric', count: 100, nulls: 5, min: 50, max: 70, histogram: { edges: [50, 60, 70], counts: [60, 40] }, values: null },
      plan: {
        kind: 'categorical',
        count: 100,
        nulls: 0,
        top: [
          ['pro', 70],
          ['free', 30],
        ],
        other: 0,
      },
    };
    const r = await addVersion(alice, digest('c'), { profile: given });
    expect(r.errors).toBeUndefined();
    expect((await profile(2)).columns.map((c: any) => c.summary)).toEqual([given.amount, given.plan]);
    const { datasetDrift } = await alice.gql(
      `{ datasetDrift(name: "shop/orders", version: 2, baseline: 1, thresholds: { ks: 0.5 }) { baselineVersion breached columns { column kind psi ksStatistic ksPValue exact chiSquare chiSquareDof jensenShannon breaches } } }`,
    );
    expect(datasetDrift.baselineVersion).toBe(1);
    expect(datasetDrift.breached).toBe(true);
    const [amount, plan] = datasetDrift.columns;
    expect(amount).toMatchObject({ column: 'amount', kind: 'numeric', ksStatistic: 1, exact: false });
    expect(amount.psi).toBeGreaterThan(5);
    expect(amount.breaches).toEqual([expect.stringMatching(/^PSI /), 'KS 1.000 > 0.5']);
    expect(plan).toMatchObject({ column: 'plan', kind: 'categorical', chiSquareDof: 1, exact: true });
    expect(plan.jensenShannon).toBeGreaterThan(0.3);
    const same = await alice.gql(
      `{ datasetDrift(name: "shop/orders", version: 1, baseline: 1, columns: ["plan"]) { breached columns { column psi jensenShannon } } }`,
    );
    expect(same.datasetDrift).toEqual({ breached: false, columns: [{ column: 'plan', psi: null, jensenShannon: 0 }] });
  });

  it('answers a missing version as NOT_FOUND and asks for a baseline when none is given', async () => {
    expect(codeOf(await alice.raw(`{ datasetProfile(name: "shop/orders", version: 9) { version } }`))).toBe('NOT_FOUND');
    const none = await alice.raw(`{ datasetDrift(name: "shop/orders", version: 2) { breached } }`);
    expect(codeOf(none)).toBe('BAD_USER_INPUT');
    expect(msgOf(none)).toMatch(/Give `baseline`/);
  });
});
