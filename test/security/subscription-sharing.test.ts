// Live events are executed once for every subscriber who shares a document and an access decision (issue 21,
// server/http/shared-results.ts). Sharing must never widen what anyone sees: a subscriber gets exactly what it would
// get alone, whoever else watches the same thing with the same document at the same moment.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sharingStats } from '../../server/http/shared-results';
import { startTestApp, type TestApp } from '../harness/app';
import { type ApiClient, apiClient } from '../harness/client';

let t: TestApp;
let ann: ApiClient & { token: string }; // in prod-ops, granted production
let bob: ApiClient & { token: string }; // in no team with a grant

async function waitUntil(ok: () => boolean, what: string, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const ALL = 'subscription { allRunEvents { __typename ... on RunStatusEvent { runId runStatus } ... on TaskStatusEvent { runId } } }';
type AllEvent = { allRunEvents: { __typename: string; runId: string; runStatus?: string } };
const succeeded = (events: AllEvent[], runId: string) => events.some((e) => e.allRunEvents.runId === runId && e.allRunEvents.runStatus === 'SUCCEEDED');

beforeAll(async () => {
  t = await startTestApp({ ATELIER_TOKEN_RECHECK_MS: '100' });
  await t.publishFixture('echo');
  await t.createWorkflow({ name: 'explore', domain: 'experimentation', tasks: [{ name: 'a', module: 'test/echo' }] });
  await t.createWorkflow({ name: 'nightly', domain: 'production', tasks: [{ name: 'a', module: 'test/echo' }] });
  ann = await t.user('ann');
  bob = await t.user('bob');
  await t.team('prod-ops', ['ann']);
  await t.team('bystanders', ['bob']);
  await t.api.gql(`mutation { grantDomain(team: "prod-ops", domain: production) { id } }`);
});
afterAll(async () => {
  await t?.stop();
});

describe('subscribers sharing one execution of each event', () => {
  it('sends a production run’s events to the subscribers granted production only, though everyone watches with the same document', async () => {
    const seen = { admin: [] as AllEvent[], ann: [] as AllEvent[], annAgain: [] as AllEvent[], bob: [] as AllEvent[] };
    const watchers = [
      t.api.subscribe<AllEvent>(ALL, {}, undefined, (e) => seen.admin.push(e)),
      ann.subscribe<AllEvent>(ALL, {}, undefined, (e) => seen.ann.push(e)),
      ann.subscribe<AllEvent>(ALL, {}, undefined, (e) => seen.annAgain.push(e)),
      bob.subscribe<AllEvent>(ALL, {}, undefined, (e) => seen.bob.push(e)),
    ];
    for (const w of watchers) w.catch(() => undefined);
    // Everyone is live once everyone has seen an experimentation run end (runs are started until they have).
    let first = '';
    for (let i = 0; i < 50 && !Object.values(seen).every((events) => succeeded(events, first)); i++) {
      first = (await t.api.gql(`mutation { startRun(workflow: "explore") { id } }`)).startRun.id;
      await waitUntil(() => Object.values(seen).every((events) => succeeded(events, first)), 'everyone live', 3_000).catch(() => undefined);
    }
    const before = { ...sharingStats };
    // The decision for a run seen starting is made on the domain its first event carries (no read of the run's row per
    // subscriber, schema/types/run-events.ts): the production run's QUEUED event must say production.
    const started: { runId: string; domain?: string }[] = [];
    const stopWatching = t.app.services.feed.subscribe('*', (e) => void (e.kind === 'run-status' && e.status === 'QUEUED' && started.push(e)));
    const { startRun: nightly } = await t.api.gql(`mutation { startRun(workflow: "nightly") { id } }`);
    const { startRun: after } = await t.api.gql(`mutation { startRun(workflow: "explore") { id } }`);
    await waitUntil(
      () => succeeded(seen.admin, nightly.id) && succeeded(seen.ann, nightly.id) && succeeded(seen.annAgain, nightly.id) && succeeded(seen.bob, after.id),
      'the production run seen by those granted it, and the next run by everyone',
    );
    stopWatching();
    expect(started.filter((e) => e.runId === nightly.id).map((e) => e.domain)).toEqual(['production']);
    // Bob was live throughout (he saw the run started after it) and never got an event of the production run.
    expect(seen.bob.filter((e) => e.allRunEvents.runId === nightly.id)).toEqual([]);
    expect(seen.ann.filter((e) => e.allRunEvents.runId === nightly.id)).toEqual(seen.admin.filter((e) => e.allRunEvents.runId === nightly.id));
    // Ann's two subscriptions shared each execution: fewer executions than results handed out.
    expect(sharingStats.executions - before.executions).toBeLessThan(sharingStats.deliveries - before.deliveries);
    // Over graphql-ws, shared results go out past envelop's per-result hooks (which do nothing to them).
    expect(sharingStats.unhooked - before.unhooked).toBeGreaterThan(0);
    for (const w of watchers) void w.catch(() => undefined);
  });

  it('ends both subscriptions of a revoked token at its one shared re-check, and keeps the others’ going', async () => {
    // An external run (experimentation, open to members) that stays open, and a service account with two subscriptions to it.
    const { startExternalRun } = await t.api.gql(`mutation { startExternalRun(name: "shared") { id } }`);
    const { createServiceAccount } = await t.api.gql(`mutation { createServiceAccount(name: "carl") { token } }`);
    const carl = apiClient(t.url, createServiceAccount.token);
    const ONE = 'subscription ($id: ID!) { runEvents(runId: $id) { __typename ... on TaskMetricEvent { step } } }';
    const log = (step: number) =>
      t.api.gql(`mutation ($id: ID!, $s: Int!) { logRunMetrics(runId: $id, points: [{ name: "m", value: 1, step: $s }]) { id } }`, {
        id: startExternalRun.id,
        s: step,
      });
    const steps = { admin: [] as number[], carl: [] as number[], carlAgain: [] as number[] };
    const onStep = (into: number[]) => (e: any) => e.runEvents.step !== undefined && e.runEvents.step !== null && into.push(e.runEvents.step);
    const admin = t.api.subscribe(ONE, { id: startExternalRun.id }, undefined, onStep(steps.admin));
    const carls = [
      carl.subscribe(ONE, { id: startExternalRun.id }, undefined, onStep(steps.carl)),
      carl.subscribe(ONE, { id: startExternalRun.id }, undefined, onStep(steps.carlAgain)),
    ];
    admin.catch(() => undefined);
    for (const c of carls) c.catch(() => undefined);
    for (let step = 1; !(steps.admin.length && steps.carl.length && steps.carlAgain.length); step++) {
      await log(step);
      await waitUntil(() => steps.admin.length > 0 && steps.carl.length > 0 && steps.carlAgain.length > 0, 'all live', 500).catch(() => undefined);
    }
    // Carl's token is revoked: both of his subscriptions end (one re-check for the token), the admin's goes on.
    await t.api.gql(`mutation { revokeServiceTokens(name: "carl") }`);
    for (const c of carls) await expect(c).rejects.toThrow(/token was revoked or has expired/);
    const carlHad = steps.carl.length;
    const next = Math.max(...steps.admin) + 1;
    await log(next);
    await waitUntil(() => steps.admin.includes(next), 'the admin still receiving');
    expect(steps.carl.length).toBe(carlHad);
    await t.api.gql(`mutation ($id: ID!) { endExternalRun(runId: $id) { id } }`, { id: startExternalRun.id });
    await admin;
  });

  it('refuses a narrower token of an account at set-up, while the full token’s identical subscription is live', async () => {
    const { createServiceAccount } = await t.api.gql(`mutation { createServiceAccount(name: "dora") { token } }`);
    const { issueServiceToken } = await t.api.gql(`mutation { issueServiceToken(name: "dora", scopes: ["read:Module"]) { token } }`);
    const full = apiClient(t.url, createServiceAccount.token);
    const narrow = apiClient(t.url, issueServiceToken.token);
    const events: AllEvent[] = [];
    const watching = full.subscribe<AllEvent>(ALL, {}, undefined, (e) => events.push(e));
    watching.catch(() => undefined);
    let runId = '';
    for (let i = 0; i < 50 && !succeeded(events, runId); i++) {
      runId = (await t.api.gql(`mutation { startRun(workflow: "explore") { id } }`)).startRun.id;
      await waitUntil(() => succeeded(events, runId), 'the full token live', 3_000).catch(() => undefined);
    }
    await expect(narrow.subscribe(ALL, {})).rejects.toThrow(/FORBIDDEN|not allowed|scope|may not/i);
  });
});
