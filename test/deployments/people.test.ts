// People on a rollout, on the embedded app with the real local deployer and the iris model over real HTTP: promote
// skips to 100 %, rollback returns at a step, failover sends all traffic to the previous revision in one call (audited,
// pausing the rollout) and restore brings back the split before it.
import { and, eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deployments } from '../../server/db/tables/deployments';
import { auditEvents } from '../../server/db/tables/governance';
import type { TestApp } from '../harness/app';
import type { ApiClient } from '../harness/client';
import { CREATE_DEPLOYMENT, deploymentSteps, deploymentWorld, endDeploymentWorld, predict, splitOf } from './setup';

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

describe('people on a rollout', () => {
  it('promote skips to 100 %, rollback returns at any step, failover and restore switch all traffic and back', async () => {
    await alice.gql(CREATE, {
      i: { name: 'iris-slow', model: 'ml/iris@slow', domain: 'experimentation', rollout: { steps: [{ percent: 10, dwellSeconds: 3600 }, { percent: 100 }] } },
    });
    await serving('iris-slow', 1);
    await ALIAS('slow', 6);
    await atSplit('iris-slow', { 1: 90, 2: 10 });
    const promoted = (await alice.gql(`mutation { promoteDeployment(id: "iris-slow", reason: "looks good") { traffic { revision percent } } }`))
      .promoteDeployment;
    expect(split(promoted)).toEqual({ 2: 100 });
    expect((await predict((await show('iris-slow')).url)).version).toBe('ml/iris/6');

    await ALIAS('slow', 7);
    await atSplit('iris-slow', { 2: 90, 3: 10 });
    const rolled = (
      await alice.gql(`mutation { rollbackDeployment(id: "iris-slow", reason: "not today") { traffic { revision percent } rollout { state reason } } }`)
    ).rollbackDeployment;
    expect(split(rolled)).toEqual({ 2: 100 });
    expect(rolled.rollout).toEqual({ state: 'ROLLED_BACK', reason: 'not today' });

    await ALIAS('slow', 8);
    const before = split(await atSplit('iris-slow', { 2: 90, 4: 10 }));
    let snapshot: () => void = () => {};
    const subscribed = new Promise<void>((resolve) => (snapshot = resolve));
    const live = alice.subscribe(
      `subscription { deploymentChanged(id: "iris-slow") { failedOver traffic { revision percent } } }`,
      {},
      (e: any) => e.deploymentChanged.failedOver,
      () => snapshot(),
    );
    await subscribed; // its first snapshot came: the failover below is a change it sees
    const over = (
      await alice.gql(
        `mutation { failoverDeployment(id: "iris-slow", reason: "errors upstream") { failedOver traffic { revision percent } rollout { state } } }`,
      )
    ).failoverDeployment;
    expect(over).toMatchObject({ failedOver: true, rollout: { state: 'PAUSED' } });
    expect(split(over)).toEqual({ 2: 100 });
    const changes = await live;
    expect(changes[0].deploymentChanged.failedOver).toBe(false);
    expect(changes.at(-1).deploymentChanged.failedOver).toBe(true);
    const url = (await show('iris-slow')).url;
    for (let i = 0; i < 5; i++) expect((await predict(url)).revision).toBe('2');
    const restored = (
      await alice.gql(`mutation { restoreDeployment(id: "iris-slow", reason: "fixed") { failedOver traffic { revision percent } rollout { state } } }`)
    ).restoreDeployment;
    expect(restored).toMatchObject({ failedOver: false, rollout: { state: 'RUNNING' } });
    expect(split(restored)).toEqual(before);
    const events = (await show('iris-slow')).events;
    expect(events.slice(0, 2)).toMatchObject([
      { kind: 'RESTORED', reason: 'fixed', actor: { name: 'alice' } },
      { kind: 'FAILED_OVER', reason: 'errors upstream', revision: 2, actor: { name: 'alice' } },
    ]);
    const audited = await t.app.services.db
      .select()
      .from(auditEvents)
      .where(and(eq(auditEvents.action, 'deployment.failover'), eq(auditEvents.decision, 'allow')));
    expect(audited).toHaveLength(1);
  });

  it("a delete made while another replica's pass holds the deployment waits for that pass, and answers once nothing serves", async () => {
    await alice.gql(CREATE, { i: { name: 'iris-held', model: 'ml/iris@champion', domain: 'experimentation' } });
    const { url } = await serving('iris-held', 1);
    expect((await fetch(`${url}/health`)).status).toBe(200);
    // As if another replica's reconciler were on it for the next 1.5 s (a pass renews its lease while it works).
    await t.app.services.db
      .update(deployments)
      .set({ leaseOwner: 'replica-elsewhere', leaseUntil: sql`now() + interval '1500 milliseconds'` })
      .where(eq(deployments.name, 'iris-held'));
    await alice.gql(`mutation { deleteDeployment(id: "iris-held") }`);
    // Once took the lease as "not mine now", left it to the reconciler and answered while the model still served.
    await expect(fetch(`${url}/health`)).rejects.toThrow();
    expect(await t.app.services.db.select().from(deployments).where(eq(deployments.name, 'iris-held'))).toEqual([]);
  });
});
