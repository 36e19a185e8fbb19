// A run acts for what started it: its identity AND the scopes of the token it came with (the intersection), not the
// identity's every grant. Unchecked, an admin's token scoped to starting runs handed a task a model version the token
// may not read, its nested runs read with the admin's whole ability, and its runs reused cached results it may not
// read. A clone or rerun keeps its source's pinned model versions: they are checked again for whoever restarts it
// (unchecked, a member cloned an admin's run and read a production model through it).
import { randomUUID } from 'node:crypto';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueToken } from '../../server/auth/tokens';
import { identities } from '../../server/db/tables/identities';
import { runs } from '../../server/db/tables/runs';
import { startTestApp, type TestApp } from '../harness/app';
import { type ApiClient, apiClient, RUN_EVENTS } from '../harness/client';
import { REGISTER, runToEnd, setUpRegistryWorld } from '../registry/setup';
import { CREATE_TRIGGER, postHook } from '../triggers/world';

const ended = (e: any) => e.runEvents.__typename === 'RunStatusEvent' && ['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(e.runEvents.runStatus);

describe('a scoped token’s runs act for the intersection of its identity and its scopes', () => {
  let t: TestApp;
  let carol: ApiClient;
  let alice: ApiClient;
  let startOnly: ApiClient;
  let startAndModels: ApiClient;
  const runCount = async () => (await t.app.database.db.select().from(runs)).length;
  const endOf = async (id: string) => {
    await t.api.subscribe(RUN_EVENTS, { runId: id }, ended);
    return (await t.api.gql(`query ($id: ID!) { run(id: $id) { id status tasks { node status message cacheHit { __typename } } } }`, { id })).run;
  };

  beforeAll(async () => {
    t = await startTestApp();
    ({ carol, alice } = await setUpRegistryWorld(t));
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
    await t.createWorkflow({ name: 'uses-prod', tasks: [{ name: 'score', module: 'ml/train', models: { m: 'ml/churn-prod/1' } }] });
    await t.createWorkflow({ name: 'nests-prod', tasks: [{ name: 'sub', workflow: 'uses-prod' }] });
    const db = t.app.services.db;
    const [admin] = await db.select().from(identities).where(eq(identities.role, 'admin'));
    const token = async (name: string, scopes: string[]) => apiClient(t.url, await issueToken(db, admin!.id, name, { scopes }));
    startOnly = await token('starts runs', ['start:Run', 'read:Run', 'read:Task', 'read:Workflow']);
    startAndModels = await token('starts runs with models', ['start:Run', 'read:Run', 'read:Task', 'read:Workflow', 'read:ModelVersion']);
  }, 120_000);
  afterAll(() => t?.stop());

  it('refuses a model version the token may not read as if it did not exist, and starts nothing', async () => {
    const before = await runCount();
    const refused = await startOnly.raw(`mutation { startRun(workflow: "uses-prod") { id } }`);
    expect(refused.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    expect(refused.errors?.[0]?.message).toContain('there is no such model version you may read');
    expect(await runCount()).toBe(before);
    // the scope that reads model versions lets the same identity start it
    const { startRun } = await startAndModels.gql(`mutation { startRun(workflow: "uses-prod") { id } }`);
    expect((await endOf(startRun.id)).status).toBe('SUCCEEDED');
    const [stored] = await t.app.database.db.select({ scopes: runs.scopes }).from(runs).where(eq(runs.id, startRun.id));
    expect(stored!.scopes).toEqual(['start:Run', 'read:Run', 'read:Task', 'read:Workflow', 'read:ModelVersion']);
  });

  it('reads as the token in the nested runs its run starts', async () => {
    const { startRun } = await startOnly.gql(`mutation { startRun(workflow: "nests-prod") { id } }`);
    const run = await endOf(startRun.id);
    expect(run.status).toBe('FAILED');
    expect(run.tasks[0].message).toContain('there is no such model version you may read');
    const allowed = await startAndModels.gql(`mutation { startRun(workflow: "nests-prod") { id } }`);
    expect((await endOf(allowed.startRun.id)).status).toBe('SUCCEEDED');
  });

  it('checks a clone’s and a rerun’s pinned model versions for whoever restarts it', async () => {
    const { startRun } = await t.api.gql(`mutation { startRun(workflow: "uses-prod") { id } }`);
    expect((await endOf(startRun.id)).status).toBe('SUCCEEDED');
    const before = await runCount();
    const VIEWER_CAN = `query ($id: ID!) { run(id: $id) { viewerCan { clone { allowed reason } rerun { allowed reason } } } }`;
    for (const [who, client] of [
      ['carol (no production grant)', carol],
      ['a token that may not read models', startOnly],
    ] as const) {
      // asked first, viewerCan answers what the mutation will
      const asked = (await client.raw(VIEWER_CAN, { id: startRun.id })).data?.run?.viewerCan;
      expect(asked, who).toBeTruthy();
      expect(asked.clone, who).toEqual({ allowed: false, reason: expect.stringContaining('there is no such model version you may read') });
      expect(asked.rerun.allowed, who).toBe(false);
      const clone = await client.raw(`mutation ($id: ID!) { cloneRun(id: $id) { id } }`, { id: startRun.id });
      expect(clone.errors?.[0]?.extensions?.code, who).toBe('NOT_FOUND');
      expect(clone.errors?.[0]?.message, who).toContain('there is no such model version you may read');
      const rerun = await client.raw(`mutation ($id: ID!) { rerunRun(id: $id, from: ALL) { id } }`, { id: startRun.id });
      expect(rerun.errors?.[0]?.extensions?.code, who).toBe('NOT_FOUND');
    }
    expect(await runCount()).toBe(before);
    expect((await startAndModels.gql(VIEWER_CAN, { id: startRun.id })).run.viewerCan.clone).toEqual({ allowed: true, reason: null });
    expect((await startAndModels.raw(`mutation ($id: ID!) { cloneRun(id: $id) { id } }`, { id: startRun.id })).errors).toBeUndefined();
  });

  it('reuses only cached results the token may read', async () => {
    await runToEnd(t, 'train', { seed: 7 });
    const start = (client: ApiClient) => client.gql(`mutation { startRun(workflow: "train", parameters: { seed: 7 }) { id } }`);
    // read:Run and read:Task reach experimentation outputs; a token without read:Task reads none, so reuses none
    const noOutputs = apiClient(
      t.url,
      await issueToken(t.app.services.db, (await t.app.services.db.select().from(identities).where(eq(identities.role, 'admin')))[0]!.id, 'no outputs', {
        scopes: ['start:Run', 'read:Run'],
      }),
    );
    const executed = await endOf((await start(noOutputs)).startRun.id);
    expect(executed.status).toBe('SUCCEEDED');
    expect(executed.tasks.map((x: any) => x.cacheHit)).toEqual([null, null]);
    const reused = await endOf((await start(startOnly)).startRun.id);
    expect(reused.tasks.map((x: any) => x.cacheHit?.__typename ?? null)).not.toContain(null);
    // A rerun's reuse of its source's results is the same reading: refused, saying so; from: ALL reuses nothing.
    const before = await runCount();
    const rerun = await noOutputs.raw(`mutation ($id: ID!) { rerunRun(id: $id, from: FAILED) { id } }`, { id: executed.id });
    expect(rerun.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(rerun.errors?.[0]?.message).toContain('from: ALL');
    expect(await runCount()).toBe(before);
    expect((await noOutputs.raw(`mutation ($id: ID!) { rerunRun(id: $id, from: ALL) { id } }`, { id: executed.id })).errors).toBeUndefined();
  });

  it('fires a trigger only as the token that created it could act', async () => {
    const creator = apiClient(
      t.url,
      await issueToken(t.app.services.db, (await t.app.services.db.select().from(identities).where(eq(identities.role, 'admin')))[0]!.id, 'hooks', {
        scopes: ['create:Trigger', 'start:Run', 'read:Run', 'read:Workflow', 'read:Trigger'],
      }),
    );
    const { createTrigger } = await creator.gql(CREATE_TRIGGER, { input: { workflow: 'uses-prod', name: 'scoped-hook', kind: 'HTTP', team: 'ml' } });
    const before = await runCount();
    const fired = await postHook(t, 'scoped-hook', {}, { secret: createTrigger.secret, delivery: randomUUID() });
    expect(fired.json).toMatchObject({ outcome: 'FAILED', runId: null });
    expect(fired.json.message).toContain('there is no such model version you may read');
    expect(await runCount()).toBe(before);
  });

  it('reads as a team-owned trigger’s team, not as its creator’s other teams', async () => {
    // alice reads production models (team ml's grant) and is in lab too; lab's trigger acts for lab, which may not
    await t.api.gql(`mutation { setTeamMember(team: "lab", identity: "alice") { name } }`);
    await carol.gql(`mutation ($s: String!) { createWorkflow(spec: $s, team: "lab") { created } }`, {
      s: JSON.stringify({ name: 'lab-uses-prod', tasks: [{ name: 'score', module: 'ml/train', models: { m: 'ml/churn-prod/1' } }] }),
    });
    expect((await alice.raw(`mutation { startRun(workflow: "lab-uses-prod") { id } }`)).errors).toBeUndefined();
    const { createTrigger } = await alice.gql(CREATE_TRIGGER, { input: { workflow: 'lab-uses-prod', name: 'lab-owned-hook', kind: 'HTTP', team: 'lab' } });
    const before = await runCount();
    const fired = await postHook(t, 'lab-owned-hook', {}, { secret: createTrigger.secret, delivery: randomUUID() });
    expect(fired.json).toMatchObject({ outcome: 'FAILED', runId: null });
    expect(fired.json.message).toContain('there is no such model version you may read');
    expect(await runCount()).toBe(before);
  });
});
