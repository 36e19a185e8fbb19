// A model taken as a task input is checked like any input: a version the starter may not read (produced by a
// production run, the starter's teams not granted production) is refused exactly like one that does not exist,
// and starts nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runs } from '../../server/db/tables/runs';
import { startTestApp, type TestApp } from '../harness/app';
import type { ApiClient } from '../harness/client';
import { REGISTER, runToEnd, setUpRegistryWorld } from '../registry/setup';

describe('model inputs are governed like any input', () => {
  let t: TestApp;
  let carol: ApiClient;
  beforeAll(async () => {
    t = await startTestApp();
    ({ carol } = await setUpRegistryWorld(t));
    const run = await runToEnd(t, 'train-pii');
    await t.api.gql(REGISTER, { m: 'ml/churn-pii', t: run.task.train!.id, o: 'model' });
    for (const [name, ref] of [
      ['uses-pii', 'ml/churn-pii/1'],
      ['uses-absent', 'ml/absent/1'],
    ])
      await carol.gql(`mutation ($s: String!) { createWorkflow(spec: $s, team: "lab") { created } }`, {
        s: JSON.stringify({ name, tasks: [{ name: 'score', module: 'ml/train', models: { m: ref } }] }),
      });
  }, 120_000);
  afterAll(() => t?.stop());

  it('refuses an unreadable model version with the answer a missing one gets', async () => {
    const before = (await t.app.database.db.select().from(runs)).length;
    const hidden = await carol.raw(`mutation { startRun(workflow: "uses-pii") { id } }`);
    const absent = await carol.raw(`mutation { startRun(workflow: "uses-absent") { id } }`);
    expect(hidden.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    expect(absent.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    expect(hidden.errors?.[0]?.message.replace('ml/churn-pii/1', 'REF')).toBe(absent.errors?.[0]?.message.replace('ml/absent/1', 'REF'));
    expect((await t.app.database.db.select().from(runs)).length).toBe(before);
    // the admin, who may read the version, is told what the data policy says: an experimentation run may not read a
    // model that learned PII (test/security/implicit-reads.test.ts has the rest of that rule)
    const policy = await t.api.raw(`mutation { startRun(workflow: "uses-pii") { id } }`);
    expect(policy.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(policy.errors?.[0]?.message).toContain('crm/users.email');
    expect((await t.app.database.db.select().from(runs)).length).toBe(before);
  });
});
