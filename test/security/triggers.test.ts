// Triggers under attack: outsiders may not create, change or fire them; a hook with no credentials, a bad or
// rotated-away signature, a stale timestamp or an unknown name is refused alike and records nothing; a trigger
// whose owners lost the workflow's domain grant fires no run, and the refusal is recorded on the firing and audited.
import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queryRows } from '../../server/db/client';
import { signHook } from '../../server/triggers/hooks';
import { startTestApp, type TestApp } from '../harness/app';
import type { ApiClient } from '../harness/client';
import { CREATE_TRIGGER, decided, postHook } from '../triggers/world';

let t: TestApp;
let alice: ApiClient & { token: string };
let mallory: ApiClient & { token: string };
let vera: ApiClient & { token: string };
let secret = '';

const signals = async () => (await queryRows<{ n: number }>(t.app.services.db, sql`select count(*)::int as n from signals`))[0]!.n;
const denials = async (action: string) =>
  (await t.api.gql(`{ auditEvents(limit: 1000) { action decision identity { name } } }`)).auditEvents.filter(
    (e: any) => e.action === action && e.decision === 'deny',
  );

beforeAll(async () => {
  t = await startTestApp();
  await t.publishFixture('echo');
  alice = await t.user('alice');
  mallory = await t.user('mallory');
  vera = await t.user('vera', 'viewer');
  await t.team('ml', ['alice'], ['ml']);
  await t.api.gql(`mutation { grantDomain(team: "ml", domain: production) { id } }`);
  const spec = { name: 'prod-job', domain: 'production', tasks: [{ name: 'say', module: 'test/echo', pool: 'parked' }] };
  await alice.gql(`mutation ($s: String!) { createWorkflow(spec: $s) { created } }`, { s: JSON.stringify(spec) });
  const created = await alice.gql(CREATE_TRIGGER, { input: { workflow: 'prod-job', name: 'prod-hook', kind: 'HTTP' } });
  secret = created.createTrigger.secret;
}, 60_000);
afterAll(() => t?.stop());

describe('outsiders', () => {
  it('may not create, change or delete a trigger of a team’s workflow (audited FORBIDDEN)', async () => {
    const input = { workflow: 'prod-job', name: 'sneaky', kind: 'HTTP' };
    for (const who of [mallory, vera]) {
      const r = await who.raw(CREATE_TRIGGER, { input });
      expect(r.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    }
    const change = await mallory.raw(`mutation { pauseTrigger(id: "prod-hook") { paused } }`);
    expect(change.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const rotate = await mallory.raw(`mutation { rotateTriggerSecret(id: "prod-hook") { secret } }`);
    expect(rotate.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect((await t.api.gql(`{ trigger(id: "sneaky") { id } }`)).trigger).toBeNull();
  });

  it('a token without the workflow’s domain may not fire it (403, audited); nothing is recorded', async () => {
    const before = await signals();
    const r = await postHook(t, 'prod-hook', {}, { token: mallory.token });
    expect(r.status).toBe(403);
    expect(await signals()).toBe(before);
    expect((await denials('trigger.fire')).some((e: any) => e.identity?.name === 'mallory')).toBe(true);
  });

  it('no credentials, a bad signature, a stale timestamp, a rotated-away secret or an unknown name are all refused (401)', async () => {
    const before = await signals();
    expect((await postHook(t, 'prod-hook', {}, {})).status).toBe(401);
    expect((await postHook(t, 'prod-hook', {}, { secret: 'trsec_wrong', delivery: randomUUID() })).status).toBe(401);
    const stale = await postHook(t, 'prod-hook', {}, { secret, delivery: randomUUID(), timestamp: Math.floor(Date.now() / 1000) - 600 });
    expect(stale).toMatchObject({ status: 401 });
    expect(stale.json.error.message).toContain('minutes old');
    const unknown = await postHook(t, 'no-such-hook', {}, { secret, delivery: 'u-1' });
    const bad = await postHook(t, 'prod-hook', {}, { secret: 'trsec_wrong', delivery: 'u-1' });
    expect(unknown.json.error.message).toBe(bad.json.error.message); // no oracle for which names exist
    const tampered = await fetch(`${t.url}/hooks/trigger/prod-hook`, {
      method: 'POST',
      headers: { 'x-atelier-timestamp': String(Math.floor(Date.now() / 1000)), 'x-atelier-delivery': 't-1', 'x-atelier-signature': `sha256=${'0'.repeat(64)}` },
      body: '{"a":1}',
    });
    expect(tampered.status).toBe(401);
    const { rotateTriggerSecret } = await alice.gql(`mutation { rotateTriggerSecret(id: "prod-hook") { secret } }`);
    expect((await postHook(t, 'prod-hook', {}, { secret, delivery: randomUUID() })).status).toBe(401);
    secret = rotateTriggerSecret.secret;
    expect(await signals()).toBe(before);
  });

  it('a captured signed request replayed records nothing new: a signature must cover a delivery id, which is one signal', async () => {
    const replay = async (delivery: string | null) => {
      const body = '{"why":"captured"}';
      const ts = String(Math.floor(Date.now() / 1000));
      const headers: Record<string, string> = { 'x-atelier-timestamp': ts, 'x-atelier-signature': signHook(secret, ts, delivery ?? '', body) };
      if (delivery !== null) headers['x-atelier-delivery'] = delivery;
      const send = async () => {
        const res = await fetch(`${t.url}/hooks/trigger/prod-hook`, { method: 'POST', headers, body });
        return { status: res.status, json: await res.json() };
      };
      return [await send(), await send(), await send()];
    };
    const before = await signals();
    const undelivered = await replay(null);
    for (const r of undelivered) {
      expect(r.status).toBe(401);
      expect(r.json.error.message).toContain('X-Atelier-Delivery');
    }
    expect(await signals()).toBe(before);
    const [first, ...again] = await replay(randomUUID());
    expect(first!.status).toBe(202);
    for (const r of again) expect(r.json.signalId).toBe(first!.json.signalId);
    expect(await signals()).toBe(before + 1);
  });
});

describe('a trigger acts for its owners', () => {
  it('fires while its team holds the grant, and records a refused firing (audited) once the grant is gone', async () => {
    const ok = await postHook(t, 'prod-hook', {}, { secret, delivery: randomUUID() });
    expect(ok.json).toMatchObject({ outcome: 'STARTED' });
    const { run } = await t.api.gql(`query ($id: ID!) { run(id: $id) { trigger domain triggeredBy { trigger { name } } } }`, { id: ok.json.runId });
    expect(run).toEqual({ trigger: 'EVENT', domain: 'production', triggeredBy: { trigger: { name: 'prod-hook' } } });

    await t.api.gql(`mutation { grantDomain(team: "ml", domain: production, granted: false) { id } }`);
    const refused = await postHook(t, 'prod-hook', {}, { secret, delivery: randomUUID() });
    expect(refused.status).toBe(202);
    const [latest] = await decided(t, 'prod-hook', 2);
    expect(latest).toMatchObject({ outcome: 'FAILED', run: null });
    expect(latest.message).toContain('may not start production runs');
    expect((await denials('trigger.fire')).length).toBeGreaterThanOrEqual(1);
  });
});
