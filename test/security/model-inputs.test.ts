// A model taken as a task input is checked like any input: a version the starter may not read (produced by a
// production run, the starter's teams not granted production) is refused exactly like one that does not exist,
// and starts nothing. A run with no starter (a trigger's, a schedule's) reads as whom it acts for: unchecked, a
// team's trigger handed its task a version the team may not read.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runs } from '../../server/db/tables/runs';
import { startTestApp, type TestApp } from '../harness/app';
import type { ApiClient } from '../harness/client';
import { REGISTER, runToEnd, setUpRegistryWorld } from '../registry/setup';
import { CREATE_TRIGGER, postHook } from '../triggers/world';

describe('model inputs are governed like any input', () => {
  let t: TestApp;
  let carol: ApiClient;
  beforeAll(async () => {
    t = await startTestApp();
    ({ carol } = await setUpRegistryWorld(t));
    const run = await runToEnd(t, 'train-pii');
    await t.api.gql(REGISTER, { m: 'ml/churn-pii', t: run.task.train!.id, o: 'model' });
    // A production model that learned nothing an experimentation run may not read: only grants keep lab from it.
    await t.createWorkflow({
      name: 'train-prod',
      domain: 'production',
      tasks: [
        { name: 'prep', module: 'ml/prep' },
        { name: 'train', module: 'ml/train', dependsOn: ['prep'] },
      ],
    });
    const prod = await runToEnd(t, 'train-prod');
    await t.api.gql(REGISTER, { m: 'ml/churn-prod', t: prod.task.train!.id, o: 'model' });
    for (const [name, ref] of [
      ['uses-pii', 'ml/churn-pii/1'],
      ['uses-absent', 'ml/absent/1'],
      ['uses-prod', 'ml/churn-prod/1'],
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

  it('refuses a version its trigger’s owners may not read, as their own start would', async () => {
    expect((await carol.raw(`mutation { startRun(workflow: "uses-prod") { id } }`)).errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    const { createTrigger } = await carol.gql(CREATE_TRIGGER, { input: { workflow: 'uses-prod', name: 'lab-hook', kind: 'HTTP' } });
    const before = (await t.app.database.db.select().from(runs)).length;
    const fired = await postHook(t, 'lab-hook', {}, { secret: createTrigger.secret, delivery: randomUUID() });
    expect(fired.json).toMatchObject({ outcome: 'FAILED', runId: null });
    expect(fired.json.message).toContain('there is no such model version you may read');
    expect((await t.app.database.db.select().from(runs)).length).toBe(before);
    // The admin, who may read it, starts it (an experimentation run may read what this model learned).
    expect((await t.api.raw(`mutation { startRun(workflow: "uses-prod") { id } }`)).errors).toBeUndefined();
  });
});
