// Profiles and drift are derived from the data, so they follow the preview rule per column: a column the caller may
// not preview is absent, answered exactly like a column that has no profile or does not exist (no oracle), and no
// statistic is computed over it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../harness/app';
import type { ApiClient } from '../harness/client';

let t: TestApp;
let alice: ApiClient;
let eve: ApiClient;
const columns = [
  { name: 'id', type: 'int', label: { level: 'PUBLIC' } },
  { name: 'email', type: 'string', label: { level: 'RESTRICTED', categories: ['PII'] } },
  { name: 'segment', type: 'string' },
];
const sample = (shift: number) => Array.from({ length: 50 }, (_, i) => ({ id: i + shift, email: `${i % (3 + shift)}@x`, segment: i % 2 ? 'a' : 'b' }));

beforeAll(async () => {
  t = await startTestApp();
  [alice, eve] = await Promise.all([t.user('alice'), t.user('eve')]);
  await t.team('crm', ['alice'], ['crm']);
  await alice.gql(
    `mutation ($c: [DatasetColumnInput!]!, $s: JSON) { createDataset(name: "crm/people", domain: production, columns: $c, digest: "sha256:${'1'.repeat(64)}", sample: $s) { id } }`,
    { c: columns, s: sample(0) },
  );
  await alice.gql(
    `mutation ($c: [DatasetColumnInput!]!, $s: JSON) { addDatasetVersion(name: "crm/people", columns: $c, digest: "sha256:${'2'.repeat(64)}", sample: $s) { id } }`,
    { c: columns, s: sample(7) },
  );
  // A version whose given profile covers `id` only: `email` and `segment` have no profile there.
  await alice.gql(
    `mutation ($c: [DatasetColumnInput!]!, $p: JSON) { addDatasetVersion(name: "crm/people", columns: $c, digest: "sha256:${'3'.repeat(64)}", profile: $p) { id } }`,
    { c: columns, p: { id: { kind: 'numeric', count: 1, nulls: 0, min: 1, max: 1, histogram: { edges: [1, 1], counts: [1] }, values: [[1, 1]] } } },
  );
});
afterAll(async () => {
  await t?.stop();
});

const profileOf = (api: ApiClient, version: number) =>
  api.raw(`{ datasetProfile(name: "crm/people", version: ${version}) { version columns { column kind count summary } } }`);
const driftOf = (api: ApiClient, columnsArg: string) =>
  api.raw(`{ datasetDrift(name: "crm/people", version: 2, baseline: 1${columnsArg}) { breached columns { column kind psi jensenShannon breaches } } }`);

describe('profiles and drift follow the preview rule per column', () => {
  it('a withheld column (PII, or UNCLASSIFIED) is absent from a profile, exactly like a column without one', async () => {
    const cleared = await profileOf(t.api, 2);
    // UNCLASSIFIED ranks above every level: not even a production clearance previews `segment`.
    expect(cleared.data.datasetProfile.columns.map((c: any) => c.column)).toEqual(['id', 'email']);
    const withheld = await profileOf(eve, 2);
    expect(withheld.errors).toBeUndefined();
    const unprofiled = await profileOf(t.api, 3);
    // eve's answer for version 2 has the same shape as the admin's for version 3, where only `id` has a profile.
    expect(withheld.data.datasetProfile.columns.map((c: any) => c.column)).toEqual(['id']);
    expect(unprofiled.data.datasetProfile.columns.map((c: any) => c.column)).toEqual(['id']);
    expect(JSON.stringify(withheld.data)).not.toMatch(/@x|"a"|"b"/);
  });

  it('drift is computed over readable columns only; asking for a withheld one answers like an unknown one', async () => {
    const all = await driftOf(eve, '');
    expect(all.data.datasetDrift.columns.map((c: any) => c.column)).toEqual(['id']);
    const email = await driftOf(eve, ', columns: ["email"]');
    const ghost = await driftOf(eve, ', columns: ["ghost"]');
    expect(email).toEqual(ghost);
    expect(email.data.datasetDrift).toEqual({ breached: false, columns: [] });
    // The same request by someone cleared does compute it: the difference is the clearance, nothing else.
    const cleared = await driftOf(t.api, ', columns: ["email"]');
    expect(cleared.data.datasetDrift.columns).toEqual([expect.objectContaining({ column: 'email', kind: 'categorical' })]);
  });

  it('a withheld column’s drift is absent for an UNCLASSIFIED column too, and each read is audited with what was shown', async () => {
    const seg = await driftOf(eve, ', columns: ["segment"]');
    expect(seg.data.datasetDrift.columns).toEqual([]);
    const { auditEvents } = await t.api.gql(`{ auditEvents(subject: "dataset:crm/people", limit: 50) { action decision details identity { name } } }`);
    const eves = auditEvents.filter((e: any) => e.identity?.name === 'eve');
    expect(eves.some((e: any) => e.action === 'data.profile' && JSON.stringify(e.details.shown) === '["id"]')).toBe(true);
    expect(eves.some((e: any) => e.action === 'data.drift' && JSON.stringify(e.details.columns) === '[]')).toBe(true);
  });

  it('a dataset that does not exist is NOT_FOUND for everyone', async () => {
    const r = await eve.raw(`{ datasetProfile(name: "crm/nothing", version: 1) { version } }`);
    expect(r.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
  });
});
