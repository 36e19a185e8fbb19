// The live registry feed's edges: a token whose scopes do not read models is refused when subscribing (nothing
// listens on its behalf), a malformed model filter is a BAD_INPUT, and only committed changes reach a subscriber
// (a refused mutation streams nothing).
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../harness/app';
import { type ApiClient, apiClient } from '../harness/client';
import { until } from '../webhooks/receiver';

let t: TestApp;
let alice: ApiClient;
let carol: ApiClient;
const LIVE = `subscription ($m: String) { registryEvents(model: $m) { type model } }`;

beforeAll(async () => {
  t = await startTestApp();
  alice = await t.user('alice');
  carol = await t.user('carol');
  await t.team('ml', ['alice'], ['ml']);
  await t.team('lab', ['carol'], ['lab']);
}, 60_000);

afterAll(async () => {
  await t?.stop();
});

it('refuses a token scoped away from models, and a malformed filter, with nothing left listening', async () => {
  const { createServiceAccount } = await t.api.gql(`mutation { createServiceAccount(name: "runs-only", scopes: ["read:Run"]) { token } }`);
  const scoped = apiClient(t.url, createServiceAccount.token);
  const refused = await scoped.subscribe(LIVE, {}).catch((e) => e);
  expect(refused.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
  const bad = await alice.subscribe(LIVE, { m: 'no-namespace' }).catch((e) => e);
  expect(bad.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  expect(t.app.services.registryFeed.listening()).toBe(0);
  expect(t.app.services.subscriptions.count()).toBe(0);
});

it('streams only what committed: a refused change to another team’s model sends nothing', async () => {
  const live = carol.subscribe(LIVE, { m: 'ml/secret' }, (_e, all) => all.length === 1);
  await until(
    () => t.app.services.registryFeed.listening(),
    (n) => n === 1,
    'the subscription listening',
  );
  const denied = await carol.raw(`mutation { saveModel(name: "ml/secret", description: "mine") { id } }`);
  expect(denied.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
  await alice.gql(`mutation { saveModel(name: "ml/secret", description: "ours") { id } }`);
  // The first event is alice's creation: carol's refused attempt committed nothing, so it streamed nothing.
  const events = (await live).map((e: any) => e.registryEvents);
  expect(events[0]).toEqual({ type: 'model.created', model: 'ml/secret' });
});
