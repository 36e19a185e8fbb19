// The webhook deployer's adversarial cases: a signed request goes only where `url` says (no redirects followed, no
// path climbing out of /deployments/ by a crafted id), its secret never shows in an error or a status, and the
// receiver-side check in plugins/webhook-signature.ts refuses a tampered body, a replayed timestamp, a wrong secret
// and a request without signature headers.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Revision } from '../../plugins/deployer-sdk';
import { createWebhookDeployer } from '../../plugins/deployers/webhook';
import { webhookHeaders, webhookSignatureProblem } from '../../plugins/webhook-signature';
import { type FakeServingService, startFakeServingService } from '../deployers/webhook-service';

const SECRET = 'whsec_security-case-secret-0123456789';
const fast = { refreshMs: 40, startupPollMs: 10, timeoutMs: 1_000, retry: { retries: 1, backoffMs: 5, maxBackoffMs: 10 } };
const revision: Revision = { number: 1, modelVersion: { ref: 'sec/m/1', digest: 'sha256:m1', files: '/srv/models/m' }, serve: { command: ['serve'] } };
const deployment = (id: string) => ({ id, name: 'sec', model: 'sec/m@champion', domain: 'production', settings: {} });

async function listen(handler: Parameters<typeof createServer>[1]): Promise<{ server: Server; url: string }> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}
const close = (server: Server) => {
  server.closeAllConnections();
  return new Promise<void>((resolve) => server.close(() => resolve()));
};

describe('webhook deployer: where signed requests go, and what they reveal', () => {
  let service: FakeServingService;
  let elsewhere: { server: Server; url: string };
  const reachedElsewhere: string[] = [];

  beforeAll(async () => {
    service = await startFakeServingService([SECRET]);
    elsewhere = await listen((req, res) => {
      reachedElsewhere.push(`${req.method} ${req.url}`);
      res.end('{}');
    });
  });
  afterAll(async () => {
    await service.close();
    await close(elsewhere.server);
  });

  it('does not follow a redirect: the signed request never reaches the other host', async () => {
    const redirecting = await listen((_req, res) => {
      res.writeHead(307, { location: `${elsewhere.url}/deployments/stolen/apply` });
      res.end();
    });
    const deployer = createWebhookDeployer({ url: redirecting.url, secret: SECRET, ...fast });
    await expect(deployer.apply(deployment('redirected'), revision)).rejects.toThrow(/redirect \(HTTP 307\)/);
    expect(reachedElsewhere).toEqual([]);
    await deployer.close?.();
    await close(redirecting.server);
  });

  it('refuses an oversized answer unread, without retrying it', async () => {
    let asked = 0;
    const flooding = await listen((_req, res) => {
      asked++;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(`{"message":"${'x'.repeat(3 * 1024 * 1024)}"}`);
    });
    const deployer = createWebhookDeployer({ url: flooding.url, secret: SECRET, ...fast });
    await expect(deployer.apply(deployment('flooded'), revision)).rejects.toThrow(/answered more than 1 MiB/);
    expect(asked).toBe(1);
    await deployer.close?.();
    await close(flooding.server);
  });

  it('refuses ids that would climb out of /deployments/, before any request', async () => {
    const deployer = createWebhookDeployer({ url: `${service.url}/team-a`, secret: SECRET, ...fast });
    const before = service.received.length;
    for (const id of ['..', '.', '../admin', 'a/../../b', '%2e%2e', '']) {
      await expect(deployer.apply(deployment(id), revision), id).rejects.toMatchObject({ name: 'DeployerError', code: 'BAD_SETTINGS' });
      await expect(deployer.status(id), id).rejects.toMatchObject({ code: 'UNKNOWN_DEPLOYMENT' });
      await expect(deployer.setTraffic(id, { 1: 100 }), id).rejects.toMatchObject({ code: 'UNKNOWN_DEPLOYMENT' });
      await deployer.delete(id);
    }
    expect(service.received.length, 'nothing was sent').toBe(before);
    await deployer.close?.();
  });

  it('never shows its secret in an error or a status, whatever the service answers', async () => {
    const wrong = createWebhookDeployer({ url: service.url, secret: `${SECRET}-wrong`, previousSecret: `${SECRET}-older`, ...fast });
    const messages: string[] = [];
    await wrong.apply(deployment('sec-1'), revision).catch((e: Error) => messages.push(e.message));
    const right = createWebhookDeployer({ url: service.url, secret: SECRET, ...fast });
    await right.apply(deployment('sec-2'), revision);
    service.inject({ answer: 500, body: 'boom' }, 2, 'POST');
    await right.rollback('sec-2', 1).catch((e: Error) => messages.push(e.message));
    await service.down();
    await right.setTraffic('sec-2', { 1: 100 }).catch((e: Error) => messages.push(e.message));
    const until = Date.now() + 5_000;
    while (!(await right.status('sec-2')).message.includes('stale') && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    messages.push((await right.status('sec-2')).message);
    await service.up();
    expect(messages).toHaveLength(4);
    for (const message of messages) expect(message).not.toContain('whsec_');
    await wrong.close?.();
    await right.close?.();
  });
});

describe('the receiver-side check (webhookSignatureProblem)', () => {
  const body = JSON.stringify({ deployment: { id: 'd' }, toRevision: 1, requestId: 'r-1', sentAt: new Date().toISOString() });
  const now = Date.now();
  const headers = webhookHeaders([SECRET], 'r-1', body, now);

  it('accepts the request as signed, and either secret during a rotation', () => {
    expect(webhookSignatureProblem([SECRET], headers, body, now)).toBeNull();
    expect(webhookSignatureProblem(['whsec_old'], webhookHeaders([SECRET, 'whsec_old'], 'r-1', body, now), body, now)).toBeNull();
    expect(webhookSignatureProblem(['whsec_new', SECRET], headers, body, now)).toBeNull();
  });

  it('refuses a tampered body, a changed id, a wrong secret, a replay past the tolerance and missing headers', () => {
    expect(webhookSignatureProblem([SECRET], headers, body.replace('"toRevision":1', '"toRevision":2'), now)).toMatch(/does not match/);
    expect(webhookSignatureProblem([SECRET], { ...headers, 'atelier-webhook-id': 'r-2' }, body, now)).toMatch(/does not match/);
    expect(webhookSignatureProblem(['whsec_other'], headers, body, now)).toMatch(/does not match/);
    expect(webhookSignatureProblem([SECRET], headers, body, now + 6 * 60_000)).toMatch(/replayed or delayed/);
    expect(webhookSignatureProblem([SECRET], { ...headers, 'atelier-signature': undefined }, body, now)).toMatch(/not signed/);
    expect(webhookSignatureProblem([SECRET], { ...headers, 'atelier-webhook-timestamp': '12x' }, body, now)).toMatch(/not signed/);
  });
});
