// Webhooks end to end (issue 18 item 6, events out): a real receiver on 127.0.0.1 (allowlisted) gets a signed POST
// when a run of its team's workflow ends, which the README's verifier accepts; a 500 is retried and a 400 is not,
// each attempt logged; a replay carries the same event id; and deliveries committed while no worker ran are posted
// once the control plane starts.
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../server/app';
import { loadConfig } from '../../server/config';
import { teams } from '../../server/db/tables/teams';
import { emitWebhookEvent } from '../../server/webhooks/emit';
import { startTestApp, type TestApp } from '../harness/app';
import { runCli, showCli } from '../harness/cli';
import type { ApiClient } from '../harness/client';
import { type Receiver, readmeVerifier, startReceiver, until } from './receiver';

const ENV = { ATELIER_WEBHOOK_ALLOWLIST: 'http://127.0.0.1:*', ATELIER_WEBHOOK_BACKOFF_MS: '50', ATELIER_WEBHOOK_POLL_MS: '100' };
const CREATE = `mutation ($team: String!, $url: String!, $events: [String!]!) {
  createWebhook(team: $team, url: $url, events: $events) { secret webhook { id url events active team { name } } } }`;
const DELIVERIES = `query ($id: ID!, $status: WebhookDeliveryStatus) {
  webhookDeliveries(webhookId: $id, status: $status, first: 50) { edges { node {
    id eventId eventType subject status attempts lastStatusCode lastError body log { attempt statusCode durationMs error responseSnippet } } } } }`;

let t: TestApp;
let receiver: Receiver;
let alice: ApiClient & { token: string };
let mlTeam = '';
let verify: Awaited<ReturnType<typeof readmeVerifier>>;

const create = async (path: string, events: string[]) => (await alice.gql(CREATE, { team: 'ml', url: `${receiver.url}${path}`, events })).createWebhook;
const deliveries = async (id: string, status?: string) => (await alice.gql(DELIVERIES, { id, status })).webhookDeliveries.edges.map((e: any) => e.node);

async function emit(type: string, payload: Record<string, unknown> = { n: 1 }) {
  await emitWebhookEvent(t.app.services.db, { type, team: mlTeam, subject: `test:${type}`, payload });
  t.app.services.webhooks.kick();
}

beforeAll(async () => {
  receiver = await startReceiver();
  verify = await readmeVerifier();
  t = await startTestApp(ENV);
  await t.publishFixture('echo');
  alice = await t.user('alice');
  await t.team('ml', ['alice']);
  [{ id: mlTeam }] = (await t.app.services.db.select({ id: teams.id }).from(teams).where(eq(teams.name, 'ml'))) as [{ id: string }];
});

afterAll(async () => {
  await t?.stop();
  await receiver?.close();
});

describe('webhooks', () => {
  it('posts a signed run.succeeded when a run of the team’s workflow ends, and the README verifier accepts it', async () => {
    const { secret, webhook } = await create('/runs', ['run.*']);
    expect(secret).toMatch(/^whsec_/);
    expect(webhook).toMatchObject({ active: true, events: ['run.*'], team: { name: 'ml' } });
    await alice.gql(`mutation ($s: String!) { createWorkflow(spec: $s, team: "ml") { created } }`, {
      s: JSON.stringify({ name: 'nightly', tasks: [{ name: 'say', module: 'test/echo', parameters: { message: 'hi' } }] }),
    });
    const { startRun } = await alice.gql(`mutation { startRun(workflow: "nightly", refreshCache: true) { id } }`);
    const [post] = await until(
      () => receiver.at('/runs'),
      (r) => r.length > 0,
      'the run.succeeded POST',
    );
    const event = verify(secret, post!.headers, post!.body);
    expect(event).toMatchObject({
      type: 'run.succeeded',
      data: { run: { id: startRun.id, status: 'SUCCEEDED', domain: 'experimentation' }, workflow: { name: 'nightly' } },
    });
    expect(post!.headers['atelier-webhook-id']).toBe(event!.id);
    expect(post!.headers['atelier-signature']).toMatch(/^v1=[0-9a-f]{64}$/);
    expect(post!.body).not.toContain('hi'); // meta fields only: not the run's parameters
    const [delivery] = await until(
      () => deliveries(webhook.id),
      (d) => d[0]?.status === 'SUCCEEDED',
      'the delivery to be logged',
    );
    expect(delivery).toMatchObject({ eventType: 'run.succeeded', subject: `run:${startRun.id}`, attempts: 1, lastStatusCode: 200, eventId: event!.id });
    expect(delivery.log).toEqual([expect.objectContaining({ attempt: 1, statusCode: 200, error: null })]);
    expect(delivery.log[0].responseSnippet.length).toBeLessThanOrEqual(1024);
  });

  it('posts run.cancelled for a cancelled run, only to webhooks that subscribe to it', async () => {
    const { secret } = await create('/cancelled', ['run.cancelled']);
    await alice.gql(`mutation ($s: String!) { createWorkflow(spec: $s, team: "ml") { created } }`, {
      s: JSON.stringify({ name: 'parked', tasks: [{ name: 'wait', module: 'test/echo', pool: 'parked' }] }), // no host serves it
    });
    const { startRun } = await alice.gql(`mutation { startRun(workflow: "parked", refreshCache: true) { id } }`);
    await alice.gql(`mutation ($id: ID!) { cancelRun(id: $id) { status } }`, { id: startRun.id });
    const [post] = await until(
      () => receiver.at('/cancelled'),
      (r) => r.length > 0,
      'the run.cancelled POST',
    );
    expect(verify(secret, post!.headers, post!.body)).toMatchObject({ type: 'run.cancelled', data: { run: { id: startRun.id, status: 'CANCELLED' } } });
    expect(receiver.at('/runs').map((p) => JSON.parse(p.body).type)).toEqual(['run.succeeded', 'run.cancelled']); // run.* takes both
  });

  it('retries a receiver that answers 500, then 200, and logs each attempt', async () => {
    receiver.script('/flaky', [500, 500, 200]);
    const { webhook } = await create('/flaky', ['test.flaky']);
    await emit('test.flaky');
    const [delivery] = await until(
      () => deliveries(webhook.id),
      (d) => d[0]?.status === 'SUCCEEDED',
      'the flaky delivery to succeed',
    );
    expect(delivery.attempts).toBe(3);
    expect(delivery.log.map((a: any) => a.statusCode)).toEqual([500, 500, 200]);
    expect(delivery.log[0]).toMatchObject({ error: 'the receiver answered HTTP 500', responseSnippet: expect.stringMatching(/^answer 500/) });
    const ids = new Set(receiver.at('/flaky').map((r) => r.headers['atelier-webhook-id']));
    expect(ids.size).toBe(1); // every retry is the same event
  });

  it('gives up at once on a 400 (permanent), and logs it', async () => {
    receiver.script('/bad', [400]);
    const { webhook } = await create('/bad', ['test.*']);
    await emit('test.bad');
    const [delivery] = await until(
      () => deliveries(webhook.id, 'FAILED'),
      (d) => d.length > 0,
      'the 400 to fail the delivery',
    );
    expect(delivery).toMatchObject({ attempts: 1, lastStatusCode: 400, lastError: 'the receiver answered HTTP 400' });
    expect(receiver.at('/bad')).toHaveLength(1);
    expect(await deliveries(webhook.id, 'PENDING')).toEqual([]);
  });

  it('replays a delivery with the same event id, which the verifier recognises as handled', async () => {
    const { secret, webhook } = await create('/replay', ['test.replay']);
    await emit('test.replay');
    const [first] = await until(
      () => deliveries(webhook.id),
      (d) => d[0]?.status === 'SUCCEEDED',
      'the first delivery',
    );
    expect(verify(secret, receiver.at('/replay')[0]!.headers, receiver.at('/replay')[0]!.body)).toMatchObject({ type: 'test.replay' });
    const { replayWebhookDelivery } = await alice.gql(`mutation ($id: ID!) { replayWebhookDelivery(id: $id) { id status } }`, { id: first.id });
    expect(replayWebhookDelivery).toEqual({ id: first.id, status: 'PENDING' });
    const posts = await until(
      () => receiver.at('/replay'),
      (r) => r.length === 2,
      'the replayed POST',
    );
    expect(posts[1]!.headers['atelier-webhook-id']).toBe(posts[0]!.headers['atelier-webhook-id']);
    expect(posts[1]!.body).toBe(posts[0]!.body);
    expect(verify(secret, posts[1]!.headers, posts[1]!.body)).toBeNull(); // authentic, and deduped by id
    const [again] = await until(
      () => deliveries(webhook.id),
      (d) => d[0]?.status === 'SUCCEEDED' && d[0].attempts === 2,
      'the replay to be logged',
    );
    expect(again.log.map((a: any) => a.attempt)).toEqual([1, 2]);
  });

  it('signs with both secrets while a rotated-out one overlaps, then with the new one alone once it stops', async () => {
    const { secret: old, webhook } = await create('/rotate', ['test.rotate']);
    const ROTATE = `mutation ($id: ID!, $h: Int) { rotateWebhookSecret(id: $id, keepPreviousFor: $h) { secret webhook { previousSecretExpiresAt } } }`;
    const bad = await alice.raw(ROTATE, { id: webhook.id, h: 169 });
    expect(bad.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(bad.errors?.[0]?.message).toMatch(/keepPreviousFor: 169 .* 0 to 168/);
    const rotated = (await alice.gql(ROTATE, { id: webhook.id, h: 2 })).rotateWebhookSecret;
    expect(rotated.secret).not.toBe(old);
    const until2h = Date.parse(rotated.webhook.previousSecretExpiresAt) - Date.now();
    expect(until2h).toBeGreaterThan(3_500_000);
    expect(until2h).toBeLessThanOrEqual(7_200_000);
    await emit('test.rotate', { n: 1 });
    const [first] = await until(
      () => receiver.at('/rotate'),
      (r) => r.length === 1,
      'the POST during the overlap',
    );
    expect(first!.headers['atelier-signature']).toMatch(/^v1=[0-9a-f]{64} v1=[0-9a-f]{64}$/);
    // A receiver holding either secret accepts it (and each dedupes the id on its own).
    expect(verify(rotated.secret, first!.headers, first!.body)).toMatchObject({ data: { n: 1 } });
    const other = await readmeVerifier();
    expect(other(old, first!.headers, first!.body)).toMatchObject({ data: { n: 1 } });

    const leaked = (await alice.gql(ROTATE, { id: webhook.id, h: 0 })).rotateWebhookSecret;
    expect(leaked.webhook.previousSecretExpiresAt).toBeNull();
    await emit('test.rotate', { n: 2 });
    const posts = await until(
      () => receiver.at('/rotate'),
      (r) => r.length === 2,
      'the POST after an immediate rotation',
    );
    expect(posts[1]!.headers['atelier-signature']).toMatch(/^v1=[0-9a-f]{64}$/);
    expect(verify(leaked.secret, posts[1]!.headers, posts[1]!.body)).toMatchObject({ data: { n: 2 } });
    expect(() => other(rotated.secret, posts[1]!.headers, posts[1]!.body)).toThrow('signature does not match');
    expect(() => other(old, posts[1]!.headers, posts[1]!.body)).toThrow('signature does not match');
  });

  it('manages webhooks from the CLI: create (secret once), list, update, rotate, deliveries, replay, delete', async () => {
    const cli = async (...args: string[]) => {
      const r = await runCli({ url: t.url, token: alice.token }, args);
      if (r.code !== 0) throw new Error(showCli(r));
      return r.stdout;
    };
    const created = await cli('webhook', 'create', 'ml', `${receiver.url}/cli`, '--event', 'test.cli', '--description', 'from the CLI');
    const id = /^created webhook (\S+)/.exec(created)![1]!;
    const secret = /^secret (whsec_\S+)$/m.exec(created)![1]!;
    expect(created).toContain('never shown again');
    expect(await cli('webhook', 'list', 'ml')).toMatch(new RegExp(`${id}  ml  active  ${receiver.url}/cli  test.cli  "from the CLI"`));
    expect(await cli('webhook', 'update', id, '--inactive')).toContain(`${id}  ml  inactive`);
    expect(await cli('webhook', 'update', id, '--active', '--event', 'test.cli', '--event', 'test.other')).toContain(
      `active  ${receiver.url}/cli  test.cli,test.other`,
    );
    const rotated = await cli('webhook', 'rotate', id, '--keep-previous', '1');
    expect(rotated).toMatch(/previous secret signs until \d{4}-/);
    expect(/^secret (whsec_\S+)$/m.exec(rotated)![1]).not.toBe(secret);
    await emit('test.cli');
    await until(
      () => receiver.at('/cli'),
      (r) => r.length === 1,
      'the CLI webhook POST',
    );
    const listed = await until(
      () => cli('webhook', 'deliveries', id),
      (out) => out.includes('SUCCEEDED'),
      'the delivery in the log',
    );
    const deliveryId = listed.split('  ')[0]!;
    expect(listed).toMatch(/test\.cli\s+SUCCEEDED\s+1 tries\s+test:test\.cli\s+HTTP 200/);
    expect(await cli('webhook', 'replay', deliveryId)).toBe(`queued delivery ${deliveryId} again (PENDING)\n`);
    await until(
      () => receiver.at('/cli'),
      (r) => r.length === 2,
      'the replayed POST',
    );
    const unknown = await runCli({ url: t.url, token: alice.token }, ['webhook', 'rotate', id, '--keep-previous', 'soon']);
    expect(unknown.code).not.toBe(0);
    expect(await cli('webhook', 'delete', id)).toBe(`deleted webhook ${id}\n`);
    expect(await cli('webhook', 'list', 'ml')).not.toContain(id);
  });

  it('delivers what was committed while no worker ran, once the control plane starts (a crash between commit and POST)', async () => {
    await create('/restart', ['test.restart']);
    await t.app.stop(); // the "crash": nothing posts any more
    const app = await buildApp(loadConfig({ PORT: '0', ...t.databaseEnv, ATELIER_LOG_LEVEL: 'silent', ...ENV }));
    try {
      await emitWebhookEvent(app.services.db, { type: 'test.restart', team: mlTeam, subject: 'test:restart', payload: { n: 2 } });
      expect(receiver.at('/restart')).toHaveLength(0);
      await app.start();
      const [post] = await until(
        () => receiver.at('/restart'),
        (r) => r.length > 0,
        'the pending delivery after start',
      );
      expect(JSON.parse(post!.body)).toMatchObject({ type: 'test.restart', data: { n: 2 } });
    } finally {
      await app.stop();
    }
  });
});
