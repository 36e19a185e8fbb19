// Server-side requests a user aims: a member who may publish names the repository `POST /hooks/git` clones, and a
// team's webhook URL is posted to. Neither may make the control plane reach loopback, link-local (cloud metadata) or
// private addresses unless an admin allows them (ATELIER_OUTBOUND_ALLOW_PRIVATE), whether the target is an address,
// a name that resolves there, or a redirect; the probe servers below listen on loopback and must see nothing.
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { teams } from '../../server/db/tables/teams';
import { emitWebhookEvent } from '../../server/webhooks/emit';
import { startTestApp, type TestApp } from '../harness/app';
import { until } from '../webhooks/receiver';

interface Probe {
  port: number;
  hits: string[];
  close(): Promise<void>;
}

/** A loopback HTTP server that records every request and answers `answer` (a redirect when given a URL). */
async function probe(host: string, redirectTo?: () => string): Promise<Probe> {
  const hits: string[] = [];
  const server: Server = createServer((req, res) => {
    hits.push(req.url ?? '/');
    if (redirectTo) res.writeHead(302, { location: redirectTo() }).end();
    else res.writeHead(200, { 'content-type': 'text/plain' }).end('secret internal answer');
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return {
    port: (server.address() as AddressInfo).port,
    hits,
    close: () => new Promise((resolve) => (server.close(() => resolve()), server.closeAllConnections())),
  };
}

const COMMIT = 'a'.repeat(40);

async function pushEvent(t: TestApp, token: string, repository: string) {
  const res = await fetch(`${t.url}/hooks/git`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, 'x-atelier-delivery': randomUUID() },
    body: JSON.stringify({ repository, commit: COMMIT }),
  });
  return { status: res.status, body: (await res.json()) as { error?: { code: string; message: string } } };
}

let strict: TestApp; // the defaults: no private targets, any public repository
let onPrem: TestApp; // loopback 127.0.0.1 allowed by the admin
let internal: Probe;
let other: Probe; // on 127.0.0.2: not allowed even on onPrem
let redirector: Probe;
let mallory: Awaited<ReturnType<TestApp['user']>>;
let malloryOnPrem: { token: string };

beforeAll(async () => {
  internal = await probe('127.0.0.1');
  other = await probe('127.0.0.2');
  redirector = await probe('127.0.0.1', () => `http://127.0.0.2:${other.port}/latest/meta-data/`);
  strict = await startTestApp({ ATELIER_WEBHOOK_ALLOWLIST: 'http://localhost:*', ATELIER_WEBHOOK_POLL_MS: '100' });
  onPrem = await startTestApp({ ATELIER_OUTBOUND_ALLOW_PRIVATE: '127.0.0.1' });
  mallory = await strict.user('mallory');
  malloryOnPrem = await onPrem.user('mallory');
  await strict.team('ml', ['mallory']);
});

afterAll(async () => {
  await Promise.all([strict?.stop(), onPrem?.stop()]);
  await Promise.all([internal?.close(), other?.close(), redirector?.close()]);
});

describe('POST /hooks/git clones only allowed addresses', () => {
  it('refuses loopback, metadata, private and mapped addresses, and names that resolve to them, before connecting', async () => {
    const targets = [
      `http://127.0.0.1:${internal.port}/repo.git`,
      `http://localhost:${internal.port}/repo.git`,
      `http://[::ffff:127.0.0.1]:${internal.port}/repo.git`,
      `http://2130706433:${internal.port}/repo.git`, // 127.0.0.1 as one number
      'http://169.254.169.254/latest/meta-data/iam',
      'http://10.0.0.1/repo.git',
      `git://127.0.0.1:${internal.port}/repo.git`,
    ];
    for (const repository of targets) {
      const r = await pushEvent(strict, mallory.token, repository);
      expect(r.status, repository).toBe(403);
      expect(r.body.error?.code, repository).toBe('FORBIDDEN');
      expect(r.body.error?.message, repository).toMatch(/ATELIER_OUTBOUND_ALLOW_PRIVATE|ATELIER_GIT_REPOSITORIES/);
    }
    expect(internal.hits).toEqual([]);
  });

  it('answers a name that does not resolve like a refused one (no oracle for internal names)', async () => {
    const r = await pushEvent(strict, mallory.token, 'https://no-such-host.invalid/repo.git');
    expect(r.status).toBe(403);
    expect(r.body.error?.message).toContain('refused to connect to no-such-host.invalid');
  });

  it('reaches an address the admin allows, but follows no redirect from it to one they do not', async () => {
    const allowed = await pushEvent(onPrem, malloryOnPrem.token, `http://127.0.0.1:${internal.port}/repo.git`);
    expect(allowed.status).toBe(400); // git reached it (and found no repository there)
    expect(internal.hits.length).toBeGreaterThan(0);
    expect(allowed.body.error?.message).not.toContain('secret internal answer');
    expect((await pushEvent(onPrem, malloryOnPrem.token, `http://127.0.0.2:${other.port}/repo.git`)).status).toBe(403);
    await pushEvent(onPrem, malloryOnPrem.token, `http://127.0.0.1:${redirector.port}/repo.git`);
    expect(redirector.hits.length).toBeGreaterThan(0);
    expect(other.hits).toEqual([]);
  });
});

describe('webhooks post only to allowed addresses', () => {
  it('refuses a listed host name that resolves to loopback at delivery, for good, without connecting', async () => {
    const { createWebhook } = await mallory.gql(`mutation ($u: String!) { createWebhook(team: "ml", url: $u, events: ["probe.*"]) { webhook { id } } }`, {
      u: `http://localhost:${internal.port}/hook`,
    });
    const [{ id: team }] = (await strict.app.services.db.select({ id: teams.id }).from(teams).where(eq(teams.name, 'ml'))) as [{ id: string }];
    await emitWebhookEvent(strict.app.services.db, { type: 'probe.sent', team, subject: 'probe:1', payload: {} });
    strict.app.services.webhooks.kick();
    const [delivery] = await until(
      async () =>
        (
          await mallory.gql(
            `query ($id: ID!) { webhookDeliveries(webhookId: $id, first: 5) { edges { node { status attempts log { error responseSnippet } } } } }`,
            {
              id: createWebhook.webhook.id,
            },
          )
        ).webhookDeliveries.edges.map((e: any) => e.node),
      (d) => d[0]?.status === 'FAILED',
      'the refused delivery',
    );
    expect(delivery).toMatchObject({ attempts: 1, log: [{ error: expect.stringContaining('refused to connect to localhost'), responseSnippet: null }] });
    expect(internal.hits.filter((h) => h === '/hook')).toEqual([]);
  });
});
