// Webhooks, adversarially (issue 18 "Bad input and attacks"): a URL off ATELIER_WEBHOOK_ALLOWLIST is refused with a
// typed error naming the variable and nothing is written, and is not posted to when the list changed since; another
// team's member can neither create, list, read the log of, change nor replay a team's webhooks (refused or answered
// like nothing, audited); a tampered body, a stale timestamp or an old secret fail the README's verifier; the
// secret is never readable after it was answered; a redirect to another origin is not followed; one team's events
// never reach another team's webhooks.
import { randomUUID } from 'node:crypto';
import { count, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { teams } from '../../server/db/tables/teams';
import { webhooks } from '../../server/db/tables/webhooks';
import { emitWebhookEvent } from '../../server/webhooks/emit';
import { startTestApp, type TestApp } from '../harness/app';
import type { ApiClient, GqlResult } from '../harness/client';
import { type Receiver, readmeVerifier, startReceiver, until } from '../webhooks/receiver';

const CREATE = `mutation ($team: String!, $url: String!, $events: [String!]!) { createWebhook(team: $team, url: $url, events: $events) { secret webhook { id } } }`;
const DELIVERIES = `query ($id: ID!) { webhookDeliveries(webhookId: $id, first: 10) { edges { node { id status attempts lastError log { statusCode error } } } } }`;
const code = (r: GqlResult) => r.errors?.[0]?.extensions?.code;

let t: TestApp;
let receiver: Receiver;
let elsewhere: Receiver; // another origin, also on the allowlist
let alice: ApiClient; // team ml
let bob: ApiClient; // team web
let vera: ApiClient; // a viewer in team ml
let ml = '';
let web = '';
let verify: Awaited<ReturnType<typeof readmeVerifier>>;
let secret = '';
let webhookId = '';
let deliveryId = '';

const ids = async (name: string) => ((await t.app.services.db.select({ id: teams.id }).from(teams).where(eq(teams.name, name))) as [{ id: string }])[0].id;
const webhookCount = async () => (await t.app.services.db.select({ n: count() }).from(webhooks))[0]!.n;
const deliveries = async (id: string) => (await alice.gql(DELIVERIES, { id })).webhookDeliveries.edges.map((e: any) => e.node);
async function denials(name: string, action: string): Promise<number> {
  const { auditEvents } = await t.api.gql(`{ auditEvents(limit: 1000) { action decision identity { name } } }`);
  return auditEvents.filter((e: any) => e.decision === 'deny' && e.identity?.name === name && e.action === action).length;
}
async function emit(team: string, type: string) {
  await emitWebhookEvent(t.app.services.db, { type, team, subject: `test:${type}`, payload: { ok: true } });
  t.app.services.webhooks.kick();
}

beforeAll(async () => {
  receiver = await startReceiver();
  elsewhere = await startReceiver();
  verify = await readmeVerifier();
  t = await startTestApp({
    ATELIER_WEBHOOK_ALLOWLIST: 'http://127.0.0.1:*,https://hooks.example.com',
    ATELIER_WEBHOOK_BACKOFF_MS: '50',
    ATELIER_WEBHOOK_POLL_MS: '100',
  });
  alice = await t.user('alice');
  bob = await t.user('bob');
  vera = await t.user('vera', 'viewer');
  await t.team('ml', ['alice', 'vera']);
  await t.team('web', ['bob']);
  [ml, web] = [await ids('ml'), await ids('web')];
  const created = (await alice.gql(CREATE, { team: 'ml', url: `${receiver.url}/hook`, events: ['test.*'] })).createWebhook;
  [secret, webhookId] = [created.secret, created.webhook.id];
  await emit(ml, 'test.ping');
  [{ id: deliveryId }] = await until(
    () => deliveries(webhookId),
    (d) => d[0]?.status === 'SUCCEEDED',
    'the first delivery',
  );
});

afterAll(async () => {
  await t?.stop();
  await receiver?.close();
  await elsewhere?.close();
});

describe('webhook URLs', () => {
  it('refuses a URL off the allowlist with URL_NOT_ALLOWED naming the variable, and writes nothing', async () => {
    const before = await webhookCount();
    for (const url of [
      'https://evil.example.net/hook',
      'https://127.0.0.1.nip.io/hook', // a host that only starts like an allowed one
      'https://hooks.example.com.evil.net/',
      'http://hooks.example.com/', // the right host on the wrong scheme (and port)
      'https://hooks.example.com:8443/',
      'file:///etc/passwd',
      'http://user:pw@127.0.0.1:9/',
      'not a url',
    ]) {
      const r = await alice.raw(CREATE, { team: 'ml', url, events: ['run.*'] });
      expect(r.data, url).toBeNull();
      expect(['URL_NOT_ALLOWED'], url).toContain(code(r));
      if (!url.includes('@') && url.includes('://') && !url.startsWith('file')) expect(r.errors![0]!.message).toContain('ATELIER_WEBHOOK_ALLOWLIST');
    }
    const changed = await alice.raw(`mutation ($id: ID!) { updateWebhook(id: $id, url: "https://evil.example.net/") { url } }`, { id: webhookId });
    expect(code(changed)).toBe('URL_NOT_ALLOWED');
    expect(await webhookCount()).toBe(before);
    const { webhooks: listed } = await alice.gql(`{ webhooks(team: "ml") { url } }`);
    expect(listed).toEqual([{ url: `${receiver.url}/hook` }]);
  });

  it('checks the allowlist again before each POST: a URL taken off it is not posted to', async () => {
    const allowlist = t.app.services.config.webhooks.allowlist;
    const saved = [...allowlist];
    const { webhook } = (await alice.gql(CREATE, { team: 'ml', url: `${receiver.url}/removed`, events: ['test.removed'] })).createWebhook;
    allowlist.splice(0, allowlist.length, 'https://hooks.example.com'); // the operator narrowed it (and restarted)
    try {
      await emit(ml, 'test.removed');
      const [d] = await until(
        () => deliveries(webhook.id),
        (d) => d[0]?.status === 'FAILED',
        'the delivery to be refused',
      );
      expect(d.lastError).toContain('not on ATELIER_WEBHOOK_ALLOWLIST');
      expect(receiver.at('/removed')).toEqual([]);
    } finally {
      allowlist.splice(0, allowlist.length, ...saved);
    }
  });

  it('does not follow a redirect to another origin', async () => {
    receiver.script('/redirect', [{ redirect: `${elsewhere.url}/stolen` }]);
    const { webhook } = (await alice.gql(CREATE, { team: 'ml', url: `${receiver.url}/redirect`, events: ['test.redirect'] })).createWebhook;
    await emit(ml, 'test.redirect');
    const [d] = await until(
      () => deliveries(webhook.id),
      (d) => d[0]?.status === 'FAILED',
      'the redirect to fail the delivery',
    );
    expect(d).toMatchObject({ attempts: 1, log: [{ statusCode: 307 }] });
    expect(d.lastError).toContain('redirects are never followed');
    expect(elsewhere.received).toEqual([]);
  });
});

describe('another team', () => {
  it('cannot create or list a team’s webhooks (FORBIDDEN, audited), nor can a viewer of it create one', async () => {
    const before = await webhookCount();
    const created = await bob.raw(CREATE, { team: 'ml', url: `${receiver.url}/bob`, events: ['run.*'] });
    expect(code(created)).toBe('FORBIDDEN');
    const listed = await bob.raw(`{ webhooks(team: "ml") { id url } }`);
    expect(code(listed)).toBe('FORBIDDEN');
    expect(JSON.stringify(listed)).not.toContain(receiver.url);
    expect(code(await vera.raw(CREATE, { team: 'ml', url: `${receiver.url}/vera`, events: ['run.*'] }))).toBe('FORBIDDEN');
    expect(await webhookCount()).toBe(before);
    expect(await denials('bob', 'webhook.create')).toBe(1);
    expect(await denials('bob', 'webhook.list')).toBe(1);
  });

  it('cannot read the delivery log, replay, change, rotate or delete: answered exactly like an unknown id, and audited', async () => {
    const unknown = randomUUID();
    const pairs: [string, Record<string, unknown>, Record<string, unknown>][] = [
      [DELIVERIES, { id: webhookId }, { id: unknown }],
      [`mutation ($id: ID!) { replayWebhookDelivery(id: $id) { id } }`, { id: deliveryId }, { id: unknown }],
      [`mutation ($id: ID!) { updateWebhook(id: $id, active: false) { id } }`, { id: webhookId }, { id: unknown }],
      [`mutation ($id: ID!) { rotateWebhookSecret(id: $id) { secret } }`, { id: webhookId }, { id: unknown }],
      [`mutation ($id: ID!) { deleteWebhook(id: $id) }`, { id: webhookId }, { id: unknown }],
    ];
    const posts = receiver.at('/hook').length;
    for (const [query, real, missing] of pairs) {
      const [a, b] = [await bob.raw(query, real), await bob.raw(query, missing)];
      expect(code(a), query).toBe('NOT_FOUND');
      expect(a.errors![0]!.message.replace(String(Object.values(real)[0]), 'ID')).toBe(b.errors![0]!.message.replace(unknown, 'ID'));
    }
    expect(await denials('bob', 'webhook.deliveries')).toBe(1);
    expect(await denials('bob', 'webhook.replay')).toBe(1);
    expect(await denials('bob', 'webhook.update')).toBe(1);
    // nothing changed: still active, same secret, no new POST, the delivery not re-queued
    const { webhooks: mine } = await alice.gql(`{ webhooks(team: "ml") { id active } }`);
    expect(mine.find((w: any) => w.id === webhookId)).toEqual({ id: webhookId, active: true });
    expect((await deliveries(webhookId)).find((d: any) => d.id === deliveryId)).toMatchObject({ status: 'SUCCEEDED', attempts: 1 });
    expect(receiver.at('/hook')).toHaveLength(posts);
  });

  it('never receives another team’s events', async () => {
    await bob.gql(CREATE, { team: 'web', url: `${receiver.url}/web`, events: ['*'] });
    await emit(ml, 'test.private');
    await emit(web, 'test.public');
    await until(
      () => receiver.at('/web'),
      (r) => r.length > 0,
      'web’s own event',
    );
    await until(
      () => receiver.at('/hook'),
      (r) => r.some((p) => p.body.includes('test.private')),
      'ml’s own event',
    );
    expect(receiver.at('/web').map((p) => JSON.parse(p.body).type)).toEqual(['test.public']);
  });
});

describe('signatures and the secret', () => {
  it('fails the README verifier on a tampered body, a stale or future timestamp, or another secret', async () => {
    const post = receiver.at('/hook')[0]!;
    expect(verify(secret, post.headers, post.body)).toMatchObject({ type: 'test.ping' });
    expect(() => verify(secret, post.headers, post.body.replace('"ok":true', '"ok":false'))).toThrow('signature does not match');
    expect(() => verify(`${secret}x`, post.headers, post.body)).toThrow('signature does not match');
    const sentAt = Number(post.headers['atelier-webhook-timestamp']) * 1000;
    expect(() => verify(secret, post.headers, post.body, sentAt + 6 * 60_000)).toThrow('timestamp too old');
    expect(() => verify(secret, post.headers, post.body, sentAt - 6 * 60_000)).toThrow('timestamp too old');
    // a replayed request with a fresh timestamp (another second, within the tolerance) but the old signature
    const moved = { ...post.headers, 'atelier-webhook-timestamp': String(Number(post.headers['atelier-webhook-timestamp']) + 1) };
    expect(() => verify(secret, moved, post.body)).toThrow('signature does not match');
  });

  it('never answers the secret again: not by any query, the delivery log or the audit log; a rotated one replaces it', async () => {
    const noField = await alice.raw(`{ webhooks(team: "ml") { id secret } }`);
    expect(noField.errors?.[0]?.message).toContain('Cannot query field "secret"');
    const everything = JSON.stringify([
      await alice.raw(`{ webhooks(team: "ml") { id url events description active team { name } createdBy { name } } }`),
      await alice.raw(`query ($id: ID!) { webhookDeliveries(webhookId: $id) { edges { node { body log { responseSnippet error } webhook { id url } } } } }`, {
        id: webhookId,
      }),
      await t.api.raw(`{ auditEvents(limit: 1000) { action subject details } }`),
      await t.api.raw(`{ webhooks(team: "ml") { id url } }`),
    ]);
    expect(everything).not.toContain(secret);
    expect(everything).not.toContain(secret.slice(6, 30));
    // Rotated as after a leak: the old secret stops at once (the default keeps it signing a day beside the new one).
    const { rotateWebhookSecret } = await alice.gql(`mutation ($id: ID!) { rotateWebhookSecret(id: $id, keepPreviousFor: 0) { secret } }`, { id: webhookId });
    expect(rotateWebhookSecret.secret).not.toBe(secret);
    await emit(ml, 'test.rotated');
    const rotated = await until(
      () => receiver.at('/hook').filter((p) => p.body.includes('test.rotated')),
      (r) => r.length > 0,
      'a delivery signed with the new secret',
    );
    expect(() => verify(secret, rotated[0]!.headers, rotated[0]!.body)).toThrow('signature does not match');
    expect(verify(rotateWebhookSecret.secret, rotated[0]!.headers, rotated[0]!.body)).toMatchObject({ type: 'test.rotated' });
  });
});
