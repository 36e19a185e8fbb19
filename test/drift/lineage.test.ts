// datasetDrift with a model version instead of a baseline: the baseline is the dataset version its lineage names
// (the training data). Lineage is run data: a caller who may not read it is refused, audited, rather than told.
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../harness/app';
import type { ApiClient } from '../harness/client';
import { REGISTER, runToEnd, setUpRegistryWorld } from '../registry/setup';

let t: TestApp;
let carol: ApiClient;
const codeOf = (r: any) => r.errors?.[0]?.extensions?.code;
const msgOf = (r: any) => r.errors?.[0]?.message ?? '';
const DRIFT = (model: string) =>
  `{ datasetDrift(name: "crm/users", version: 2, modelVersion: "${model}") { baselineVersion columns { column kind jensenShannon } } }`;

beforeAll(async () => {
  t = await startTestApp();
  ({ carol } = await setUpRegistryWorld(t));
  for (const [workflow, model] of [
    ['train', 'ml/churn'],
    ['train-pii', 'ml/churn-pii'],
  ]) {
    const run = await runToEnd(t, workflow!);
    await t.api.gql(REGISTER, { m: model, t: run.task.train!.id, o: 'model' });
  }
  // The world's crm/users@1 has no sample; give it a profile as if one had been sent with it.
  const profile = {
    kind: 'categorical',
    count: 4,
    nulls: 0,
    top: [
      ['FR', 3],
      ['DE', 1],
    ],
    other: 0,
  };
  await t.app.services.db.execute(
    sql`insert into dataset_profiles (dataset_version_id, "column", profile, source) select id, 'country', ${JSON.stringify(profile)}::jsonb, 'given' from dataset_versions where version = 1 and dataset_id = (select id from datasets where namespace = 'crm' and name = 'users')`,
  );
  await t.api.gql(
    `mutation ($c: [DatasetColumnInput!]!, $s: JSON) { addDatasetVersion(name: "crm/users", columns: $c, digest: "sha256:${'d'.repeat(64)}", sample: $s) { id } }`,
    {
      c: [
        { name: 'id', type: 'string' },
        { name: 'country', type: 'string' },
        { name: 'email', type: 'string' },
      ],
      s: [{ country: 'FR' }, { country: 'DE' }, { country: 'DE' }, { country: 'DE' }],
    },
  );
});
afterAll(async () => {
  await t?.stop();
});

describe('drift against the training data a model version’s lineage names', () => {
  it('takes the baseline from lineage', async () => {
    const { datasetDrift } = await t.api.gql(DRIFT('ml/churn@1'));
    expect(datasetDrift.baselineVersion).toBe(1);
    expect(datasetDrift.columns).toEqual([{ column: 'country', kind: 'categorical', jensenShannon: expect.any(Number) }]);
    expect(datasetDrift.columns[0].jensenShannon).toBeGreaterThan(0.3);
  });

  it('a model version that does not exist is NOT_FOUND, word for word as elsewhere', async () => {
    const missing = await t.api.raw(DRIFT('ml/churn@9'));
    expect(codeOf(missing)).toBe('NOT_FOUND');
    expect(msgOf(missing)).toBe('ml/churn has no version or alias "9"; see them with `npx atelier model show ml/churn`.');
  });

  it('refuses, audited, a caller who may not read the version’s lineage (run data), naming what to do instead', async () => {
    const r = await carol.raw(DRIFT('ml/churn-pii@1'));
    expect(codeOf(r)).toBe('FORBIDDEN');
    expect(msgOf(r)).toMatch(/lineage is run data you may not read.*give `baseline` instead/);
    const { auditEvents } = await t.api.gql(`{ auditEvents(limit: 200) { decision identity { name } } }`);
    expect(auditEvents.some((e: any) => e.decision === 'deny' && e.identity?.name === 'carol')).toBe(true);
  });
});
