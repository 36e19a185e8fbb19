// Who may start runs in which domain: experimentation is open to members; ad hoc and production need a grant to
// one of the caller's teams; a revoked grant or a removed membership takes effect on the very next request.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../harness/app';
import { type ApiClient, apiClient } from '../harness/client';

let t: TestApp;
let dana: ApiClient;
let runId = '';
const codeOf = (r: any) => r.errors?.[0]?.extensions?.code;
async function waitUntil(ok: () => boolean, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}
const start = (api: ApiClient, workflow: string) => api.raw(`mutation ($w: String!) { startRun(workflow: $w) { id domain } }`, { w: workflow });

beforeAll(async () => {
  t = await startTestApp({ ATELIER_TOKEN_RECHECK_MS: '100' });
  await t.publishFixture('echo');
  await t.createWorkflow({ name: 'explore', domain: 'experimentation', tasks: [{ name: 'a', module: 'test/echo' }] });
  await t.createWorkflow({ name: 'nightly', domain: 'production', tasks: [{ name: 'a', module: 'test/echo' }] });
  await t.publishFixture('sleep');
  await t.createWorkflow({ name: 'long-nightly', domain: 'production', tasks: [{ name: 'nap', module: 'test/sleep', parameters: { ms: 30000 } }] });
  const { createUser } = await t.api.gql(`mutation { createUser(name: "dana") { token } }`);
  dana = apiClient(t.url, createUser.token);
  await t.api.gql(`mutation { createTeam(name: "platform") { id } }`);
  await t.api.gql(`mutation { setTeamMember(team: "platform", identity: "dana") { id } }`);
});
afterAll(async () => {
  await t?.stop();
});

describe('domain grants', () => {
  it('lets members start experimentation runs, and refuses production without a grant', async () => {
    expect((await start(dana, 'explore')).data.startRun.domain).toBe('experimentation');
    const refused = await start(dana, 'nightly');
    expect(codeOf(refused)).toBe('FORBIDDEN');
    expect(refused.errors?.[0]?.message).toMatch(/Starting production runs needs a grant.*team grant TEAM production/);
    // asking for another domain explicitly is checked the same way
    expect(codeOf(await dana.raw(`mutation { startRun(workflow: "explore", domain: production) { id } }`))).toBe('FORBIDDEN');
    expect(codeOf(await dana.raw(`mutation { createSchedule(input: { workflow: "nightly", cron: "0 1 * * *" }) { id } }`))).toBe('FORBIDDEN');
  });

  it('allows production runs once the team is granted it; only admins grant', async () => {
    expect(codeOf(await dana.raw(`mutation { grantDomain(team: "platform", domain: production) { id } }`))).toBe('FORBIDDEN');
    const granted = await t.api.gql(`mutation { grantDomain(team: "platform", domain: production) { domains } }`);
    expect(granted.grantDomain.domains).toEqual(['production']);
    const started = await start(dana, 'nightly');
    expect(started.data.startRun.domain).toBe('production');
    runId = started.data.startRun.id;
    const keyed = await dana.raw(`mutation { startRun(workflow: "nightly", idempotencyKey: "grants-once") { id } }`);
    expect(keyed.data.startRun.id).toBeTruthy();
  });

  it('applies a revocation or a removal from the team on the next request, clones and reruns included', async () => {
    await t.api.gql(`mutation { grantDomain(team: "platform", domain: production, granted: false) { id } }`);
    expect(codeOf(await start(dana, 'nightly'))).toBe('FORBIDDEN');
    // The run an idempotency key started is not handed back once the grant is gone, either.
    expect(codeOf(await dana.raw(`mutation { startRun(workflow: "nightly", idempotencyKey: "grants-once") { id } }`))).toBe('FORBIDDEN');
    expect(codeOf(await dana.raw(`mutation ($id: ID!) { cloneRun(id: $id) { id } }`, { id: runId }))).toBe('FORBIDDEN');
    expect(codeOf(await dana.raw(`mutation ($id: ID!) { rerunRun(id: $id, from: ALL) { id } }`, { id: runId }))).toBe('FORBIDDEN');

    await t.api.gql(`mutation { grantDomain(team: "platform", domain: production) { id } }`);
    expect(codeOf(await start(dana, 'nightly'))).toBeUndefined();
    await t.api.gql(`mutation { removeTeamMember(team: "platform", identity: "dana") { id } }`);
    expect(codeOf(await start(dana, 'nightly'))).toBe('FORBIDDEN');
  });

  it('ends a live subscription once its token is revoked', async () => {
    const { createServiceAccount } = await t.api.gql(`mutation { createServiceAccount(name: "watcher") { token } }`);
    const watcher = apiClient(t.url, createServiceAccount.token);
    const events: unknown[] = [];
    const watching = watcher.subscribe(`subscription { allRunEvents { __typename } }`, {}, undefined, (e) => events.push(e));
    watching.catch(() => undefined); // asserted below; never an unhandled rejection meanwhile
    // It is live once it sees a run's events (runs are started until one does: connecting may take a while).
    for (let i = 0; i < 50 && !events.length; i++) {
      await t.api.raw(`mutation { startRun(workflow: "explore") { id } }`);
      await waitUntil(() => events.length > 0, 300).catch(() => undefined);
    }
    expect(events.length).toBeGreaterThan(0);
    await t.api.gql(`mutation { revokeServiceTokens(name: "watcher") }`);
    const started = Date.now();
    await expect(watching).rejects.toThrow(/token was revoked or has expired/);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('ends a live SSE subscription once its token is revoked, too', async () => {
    const { createServiceAccount } = await t.api.gql(`mutation { createServiceAccount(name: "sse-watcher") { token } }`);
    const res = await fetch(`${t.url}/graphql`, {
      method: 'POST',
      headers: { authorization: `Bearer ${createServiceAccount.token}`, 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({ query: 'subscription { allRunEvents { __typename } }' }),
    });
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    await t.api.gql(`mutation { revokeServiceTokens(name: "sse-watcher") }`);
    const text = await res.text(); // the stream ends once the revocation is noticed
    expect(text).toMatch(/token was revoked or has expired/);
    expect(text).toContain('UNAUTHENTICATED');
  });

  it('refuses a production run’s data and events without a grant, and ends a live subscription once the grant is revoked', async () => {
    const { createUser } = await t.api.gql(`mutation { createUser(name: "erin") { token } }`);
    const erin = apiClient(t.url, createUser.token);
    await t.api.gql(`mutation { createTeam(name: "night-ops") { id } }`);
    await t.api.gql(`mutation { setTeamMember(team: "night-ops", identity: "erin") { id } }`);
    const { startRun } = await t.api.gql(`mutation { startRun(workflow: "long-nightly", parameters: {}) { id } }`);
    const query = `query ($id: ID!) { run(id: $id) { status parameters tasks { node logs { line } } } }`;

    // Without a grant: the run's status, but neither its parameters nor its logs, nor its events.
    const before = await erin.raw(query, { id: startRun.id });
    expect(before.data.run.status).toBeTruthy();
    expect(before.data.run.parameters).toBeNull();
    expect(before.errors!.map((e: any) => [e.path.join('.'), e.extensions.code])).toEqual(
      expect.arrayContaining([
        ['run.parameters', 'FORBIDDEN'],
        ['run.tasks.0.logs', 'FORBIDDEN'],
      ]),
    );
    expect(JSON.stringify(before.errors)).toMatch(/holds run data of a domain none of your teams is granted/);
    await expect(erin.subscribe(`subscription ($id: ID!) { runEvents(runId: $id) { __typename } }`, { id: startRun.id })).rejects.toThrow(
      /watching them needs a grant to the run’s domain/,
    );

    // Granted: all of it, live; revoked: the subscription ends with FORBIDDEN within a recheck or two.
    await t.api.gql(`mutation { grantDomain(team: "night-ops", domain: production) { id } }`);
    const after = await erin.raw(query, { id: startRun.id });
    expect(after.errors).toBeUndefined();
    expect(after.data.run.parameters).toEqual({});
    const events: any[] = [];
    const watching = erin.subscribe(`subscription ($id: ID!) { runEvents(runId: $id) { __typename } }`, { id: startRun.id }, undefined, (e) => events.push(e));
    watching.catch(() => undefined);
    await waitUntil(() => events.length > 0);
    await t.api.gql(`mutation { grantDomain(team: "night-ops", domain: production, granted: false) { id } }`);
    const revokedAt = Date.now();
    await expect(watching).rejects.toThrow(/access to this run’s events changed/);
    expect(Date.now() - revokedAt).toBeLessThan(5_000);
    await t.api.gql(`mutation ($id: ID!) { cancelRun(id: $id) { id } }`, { id: startRun.id });
  });

  it('stops a schedule from starting runs once its creator loses the grant, saying why', async () => {
    const { createUser } = await t.api.gql(`mutation { createUser(name: "finn") { token } }`);
    const finn = apiClient(t.url, createUser.token);
    await t.api.gql(`mutation { createTeam(name: "cron-ops") { id } }`);
    await t.api.gql(`mutation { setTeamMember(team: "cron-ops", identity: "finn") { id } }`);
    await t.api.gql(`mutation { grantDomain(team: "cron-ops", domain: production) { id } }`);
    const { createSchedule } = await finn.gql(`mutation { createSchedule(input: { workflow: "nightly", cron: "* * * * * *", name: "every-second" }) { id } }`);
    const fires = async () =>
      (await t.api.gql(`query ($id: ID!) { schedule(id: $id) { fires(limit: 50) { outcome message } } }`, { id: createSchedule.id })).schedule.fires as {
        outcome: string;
        message: string | null;
      }[];
    let seen: { outcome: string; message: string | null }[] = [];
    const until = async (ok: () => boolean) => {
      for (let i = 0; i < 100 && !ok(); i++) {
        await new Promise((r) => setTimeout(r, 100));
        seen = await fires();
      }
      expect(ok()).toBe(true);
    };
    await until(() => seen.some((f) => f.outcome === 'STARTED'));
    await t.api.gql(`mutation { grantDomain(team: "cron-ops", domain: production, granted: false) { id } }`);
    await until(() => seen.some((f) => f.outcome === 'FAILED'));
    expect(seen.find((f) => f.outcome === 'FAILED')!.message).toMatch(/finn, who created this schedule, may no longer start production runs/);
    await t.api.gql(`mutation ($id: ID!) { deleteSchedule(id: $id) }`, { id: createSchedule.id });
    const { auditEvents } = await t.api.gql(`{ auditEvents(subject: "schedule:every-second") { action decision } }`);
    expect(auditEvents).toContainEqual({ action: 'schedule.fire', decision: 'deny' });
  });

  it('records grant changes in the audit log', async () => {
    const { auditEvents } = await t.api.gql(`{ auditEvents(subject: "team:platform") { action details } }`);
    expect(auditEvents.map((e: any) => e.action)).toEqual(expect.arrayContaining(['domain.grant', 'domain.revoke', 'team.member.remove']));
  });
});
