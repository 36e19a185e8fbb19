// A baseline fallback end to end, on the embedded app with the real local deployer and the iris model over real
// HTTP: the version named as fallback is applied up front as a STANDBY revision with no traffic, failover sends every
// request to it in one call and restore brings the split back; each change reaches the team's webhook signed, with
// the payload docs/webhooks.md describes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { webhookSignatureProblem } from '../../plugins/webhook-signature';
import type { TestApp } from '../harness/app';
import type { ApiClient } from '../harness/client';
import { type Receiver, startReceiver } from '../webhooks/receiver';
import { CREATE_DEPLOYMENT, deploymentSteps, deploymentWorld, endDeploymentWorld, predict, splitOf, until } from './setup';

let t: TestApp;
let alice: ApiClient;
let receiver: Receiver;
let secret: string;
const { show, serving } = deploymentSteps(() => alice);

beforeAll(async () => {
  receiver = await startReceiver();
  ({ t, alice } = await deploymentWorld(undefined, { ATELIER_WEBHOOK_ALLOWLIST: 'http://127.0.0.1:*', ATELIER_WEBHOOK_POLL_MS: '100' }));
  ({
    createWebhook: { secret },
  } = await alice.gql(`mutation ($u: String!) { createWebhook(team: "ml", url: $u, events: ["deployment.*"]) { secret } }`, { u: `${receiver.url}/ml` }));
}, 60_000);

afterAll(async () => {
  if (t) await endDeploymentWorld(t);
  await receiver?.close();
});

/** The signed `deployment.*` events the team's webhook received, verified, by type. */
const delivered = (type: string) =>
  until(`a ${type} webhook`, async () => {
    const events = receiver.at('/ml').map((r) => {
      expect(webhookSignatureProblem([secret], r.headers, r.body)).toBeNull();
      return JSON.parse(r.body);
    });
    return events.find((e) => e.type === type);
  });

describe('a baseline fallback', () => {
  it('stands by with no traffic, takes all of it on failover, gives it back on restore, and tells the webhook', async () => {
    const { createDeployment } = await alice.gql(CREATE_DEPLOYMENT, {
      i: { name: 'iris-base', model: 'ml/iris@champion', domain: 'experimentation', fallbackVersion: 2 },
    });
    const ready = await serving('iris-base', 1);
    const standby = await until('the baseline standing by', async () => {
      const d = await show('iris-base');
      return d.revisions.find((r: any) => r.baseline && r.state === 'STANDBY' && r.health === 'READY');
    });
    expect(standby.modelVersion.version).toBe(2);
    expect(splitOf(ready)).toEqual({ 1: 100 });
    expect((await show('iris-base')).fallback).toEqual({ kind: 'BASELINE', revision: standby.number });
    for (let i = 0; i < 3; i++) expect((await predict(ready.url)).version).toBe('ml/iris/1');

    const over = (await alice.gql(`mutation { failoverDeployment(id: "iris-base", reason: "drift") { failedOver traffic { revision percent } } }`))
      .failoverDeployment;
    expect(over.failedOver).toBe(true);
    expect(splitOf(over)).toEqual({ [standby.number]: 100 });
    for (let i = 0; i < 5; i++) expect(await predict(ready.url)).toEqual({ revision: String(standby.number), version: 'ml/iris/2' });
    const failedOver = await delivered('deployment.failed_over');
    expect(failedOver.data).toMatchObject({
      deployment: { id: createDeployment.id, name: 'iris-base', domain: 'experimentation', deployer: 'local' },
      revision: standby.number,
      reason: 'drift',
      actor: { name: 'alice' },
    });

    const restored = (await alice.gql(`mutation { restoreDeployment(id: "iris-base", reason: "drift explained") { failedOver traffic { revision percent } } }`))
      .restoreDeployment;
    expect(restored.failedOver).toBe(false);
    expect(splitOf(restored)).toEqual({ 1: 100 });
    for (let i = 0; i < 3; i++) expect((await predict(ready.url)).version).toBe('ml/iris/1');
    expect((await delivered('deployment.restored')).data).toMatchObject({ deployment: { name: 'iris-base' }, reason: 'drift explained' });
  });
});
