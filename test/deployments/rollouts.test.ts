// Deployments end to end on the embedded app, the real local deployer and the iris model over real HTTP: a
// deployment follows its alias (a new revision serves, by the router's revision header); a canary holds until its
// gates have observations of the new version, and once they pass
// reaches 100 %; bad observations of the new version roll it back by themselves with an alert; a version with no
// serve entrypoint FAILS while the old one serves. People's hands: people.test.ts; faults: faults.test.ts.
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alerts } from '../../server/db/tables/monitoring';
import type { TestApp } from '../harness/app';
import type { ApiClient } from '../harness/client';
import { CREATE_DEPLOYMENT, deploymentSteps, deploymentWorld, endDeploymentWorld, predict, splitOf, until } from './setup';

let t: TestApp;
let alice: ApiClient;
const { alias: ALIAS, show, serving, atSplit } = deploymentSteps(() => alice);
const CREATE = CREATE_DEPLOYMENT;
const split = splitOf;

beforeAll(async () => {
  ({ t, alice } = await deploymentWorld());
}, 60_000);

afterAll(async () => {
  if (t) await endDeploymentWorld(t);
});

describe('a deployment following an alias', () => {
  it('serves the alias’s version, and rolls out the next one when the alias moves, gates passing', async () => {
    await alice.gql(CREATE, {
      i: {
        name: 'iris-exp',
        model: 'ml/iris@champion',
        domain: 'experimentation',
        rollout: {
          steps: [
            { percent: 50, dwellSeconds: 1 },
            { percent: 100, dwellSeconds: 0 },
          ],
          gates: [{ metric: 'error_rate', rule: { kind: 'THRESHOLD', above: 0.5 } }],
          readyTimeoutSeconds: 10,
        },
      },
    });
    const first = await serving('iris-exp', 1);
    expect(first.revisions).toMatchObject([{ number: 1, state: 'SERVING', health: 'READY', modelVersion: { version: 1 } }]);
    expect(await predict(first.url)).toEqual({ revision: '1', version: 'ml/iris/1' });
    await ALIAS('champion', 2);
    const half = await atSplit('iris-exp', { 1: 50, 2: 50 });
    expect(half.rollout).toMatchObject({ revision: 2, from: 1, percent: 50, state: 'RUNNING' });
    // No observation of the new version yet: the step holds (noData HOLD), saying why, and keeps the split.
    const holding = await until('the rollout holding for observations', async () => {
      const x = await show('iris-exp');
      return /^holding: no observations of error_rate/.test(x.rollout?.reason ?? '') && x;
    });
    expect(split(holding)).toEqual({ 1: 50, 2: 50 });
    expect(holding.rollout.gates).toMatchObject([{ metric: 'error_rate', step: 0, status: 'NO_DATA', value: null }]);
    expect(holding.events.map((e: any) => e.kind)).toContain('HOLDING');
    await alice.gql(`mutation ($o: [ObservationInput!]!) { recordObservations(observations: $o) { recorded } }`, {
      o: [{ target: { kind: 'MODEL_VERSION', ref: 'ml/iris@2' }, metric: 'error_rate', value: 0.01, at: new Date().toISOString() }],
    });
    const after = await serving('iris-exp', 2, 'COMPLETE');
    expect(after.rollout).toMatchObject({ state: 'COMPLETE' });
    // each gate's verdict of the step that decided, kept for people
    expect(after.rollout.gates).toMatchObject([{ metric: 'error_rate', step: 0, status: 'PASS', value: 0.01, message: null }]);
    expect(after.revisions.map((r: any) => r.state)).toEqual(['RETIRED', 'SERVING']);
    expect(await predict(after.url)).toEqual({ revision: '2', version: 'ml/iris/2' });
    expect(after.events.map((e: any) => e.kind)).toEqual(expect.arrayContaining(['CREATED', 'REVISION_CREATED', 'STEP', 'COMPLETED']));
    const { model } = await alice.gql(`{ model(name: "ml/iris") { deployments { name } versions { version deployments { name } } } }`);
    expect(model.deployments).toEqual([{ name: 'iris-exp' }]);
    expect(model.versions.find((v: any) => v.version === 2).deployments).toEqual([{ name: 'iris-exp' }]);
    expect(model.versions.find((v: any) => v.version === 1).deployments).toEqual([]);
  });

  it('rolls back by itself when the new version’s observations breach a gate, and opens an alert', async () => {
    await ALIAS('champion', 5);
    const d = await atSplit('iris-exp', { 2: 50, 3: 50 });
    await alice.gql(`mutation ($o: [ObservationInput!]!) { recordObservations(observations: $o) { recorded } }`, {
      o: [{ target: { kind: 'MODEL_VERSION', ref: 'ml/iris@5' }, metric: 'error_rate', value: 0.9, at: new Date().toISOString() }],
    });
    const back = await serving('iris-exp', 2, 'ROLLED_BACK');
    expect(back.rollout).toMatchObject({ revision: 3, state: 'ROLLED_BACK', reason: expect.stringContaining('error_rate') });
    expect(back.revisions.find((r: any) => r.number === 3).state).toBe('ROLLED_BACK');
    expect(back.rollout.gates).toMatchObject([{ metric: 'error_rate', status: 'BREACH', value: 0.9, message: expect.stringContaining('above 0.5') }]);
    expect(await predict(back.url)).toEqual({ revision: '2', version: 'ml/iris/2' });
    const [alert] = await t.app.services.db
      .select()
      .from(alerts)
      .where(eq(alerts.key, `deployment:${d.id}:3`));
    expect(alert).toMatchObject({ state: 'OPEN' });
    expect(alert!.title).toContain('rolled revision 3 back');
  });

  it('a version with no serve entrypoint FAILS with the deployer’s message while the old revision keeps serving', async () => {
    await ALIAS('champion', 3);
    const d = await until('revision 4 FAILED', async () => {
      const x = await show('iris-exp');
      return x.revisions.find((r: any) => r.number === 4)?.state === 'FAILED' && x;
    });
    expect(d.revisions.find((r: any) => r.number === 4).message).toMatch(/serve entrypoint/i);
    expect(split(d)).toEqual({ 2: 100 });
    expect(await predict(d.url)).toEqual({ revision: '2', version: 'ml/iris/2' });
  });
});
