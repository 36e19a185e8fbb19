// Grouping in dataset previews through the real API: counts per value of permitted columns only; a withheld
// column cannot be grouped on (an oracle otherwise), and the refusal leaks no count and is audited.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../harness/app';
import type { ApiClient } from '../harness/client';

let t: TestApp;
let alice: ApiClient;
let eve: ApiClient;
const codeOf = (r: any) => r.errors?.[0]?.extensions?.code;
const msgOf = (r: any) => r.errors?.[0]?.message ?? '';
const preview = (api: ApiClient, args: string) => api.raw(`{ datasetPreview(name: "crm/orders"${args}) { columns withheld rows groups { key count } } }`);

const sample = [
  { id: 1, country: 'FR', email: 'a@x', segment: 'gold' },
  { id: 2, country: 'FR', email: 'b@x', segment: 'gold' },
  { id: 3, country: 'DE', email: 'c@x', segment: 'tin' },
  { id: 4, country: 'FR', email: 'd@x', segment: 'tin' },
  { id: 5, country: null, email: 'e@x', segment: 'tin' },
];

beforeAll(async () => {
  t = await startTestApp();
  [alice, eve] = await Promise.all([t.user('alice'), t.user('eve')]);
  await t.team('crm', ['alice'], ['crm']);
  const columns = [
    { name: 'id', type: 'int', label: { level: 'PUBLIC' } },
    { name: 'country', type: 'string', label: { level: 'INTERNAL' } },
    { name: 'email', type: 'string', label: { level: 'RESTRICTED', categories: ['PII'] } },
    { name: 'segment', type: 'string' },
  ];
  await alice.gql(
    `mutation ($c: [DatasetColumnInput!]!, $s: JSON) { createDataset(name: "crm/orders", domain: production, columns: $c, digest: "sha256:${'b'.repeat(64)}", sample: $s) { id } }`,
    { c: columns, s: sample },
  );
});
afterAll(async () => {
  await t?.stop();
});

describe('grouping in dataset previews', () => {
  it('returns a count per value of a permitted column, largest first, and no rows', async () => {
    const r = await preview(eve, ', groupBy: ["country"]');
    expect(r.errors).toBeUndefined();
    expect(r.data.datasetPreview).toEqual({
      columns: ['country'],
      withheld: ['email', 'segment'],
      rows: [],
      groups: [
        { key: { country: 'FR' }, count: 3 },
        { key: { country: 'DE' }, count: 1 },
        { key: { country: null }, count: 1 },
      ],
    });
  });

  it('filters before grouping, orders by a grouped column, and counts everything with groupBy: []', async () => {
    const filtered = await preview(
      eve,
      ', where: [{ column: "country", equals: "FR" }], groupBy: ["country", "id"], orderBy: { column: "id", descending: true }, limit: 2',
    );
    expect(filtered.data.datasetPreview.groups).toEqual([
      { key: { country: 'FR', id: 4 }, count: 1 },
      { key: { country: 'FR', id: 2 }, count: 1 },
    ]);
    expect((await preview(eve, ', groupBy: []')).data.datasetPreview.groups).toEqual([{ key: {}, count: 5 }]);
    expect((await preview(eve, '')).data.datasetPreview.groups).toBeNull();
  });

  it('refuses grouping on a withheld or UNCLASSIFIED column like filtering and sorting, with no counts, audited', async () => {
    for (const column of ['email', 'segment']) {
      const r = await preview(eve, `, groupBy: ["country", "${column}"]`);
      expect(codeOf(r)).toBe('FORBIDDEN');
      expect(msgOf(r)).toBe(`${column} cannot be used to filter, sort or group: not readable at your clearance.`);
      expect(r.data?.datasetPreview ?? null).toBeNull();
    }
    const { auditEvents } = await t.api.gql(`{ auditEvents(subject: "dataset:crm/orders", limit: 50) { decision rule details identity { name } } }`);
    const denials = auditEvents.filter((e: any) => e.decision === 'deny' && e.identity.name === 'eve');
    expect(denials.map((e: any) => e.details.columns)).toEqual([['segment'], ['email']]);
    expect(denials[0].rule).toMatch(/neither to filter, to sort nor to group/);
    expect(auditEvents.some((e: any) => e.decision === 'allow' && JSON.stringify(e.details.groupBy) === '["country"]')).toBe(true);
  });

  it('a production-cleared caller may group on a PII column it may read', async () => {
    const r = await t.api.raw(`{ datasetPreview(name: "crm/orders", groupBy: ["email"], limit: 1) { groups { count } } }`);
    expect(r.data.datasetPreview.groups).toEqual([{ count: 1 }]);
  });

  it('refuses unknown columns and an orderBy outside the grouped columns as bad input', async () => {
    const unknown = await preview(eve, ', groupBy: ["ghost"]');
    expect(codeOf(unknown)).toBe('BAD_USER_INPUT');
    expect(msgOf(unknown)).toMatch(/crm\/orders has no column ghost/);
    expect(codeOf(await preview(eve, ', groupBy: ["country"], orderBy: { column: "id" }'))).toBe('BAD_USER_INPUT');
  });
});
