// The webhook deployer against the deployer contract, through a real HTTP "other team's serving service"
// (webhook-service.ts) that verifies every signature, keeps revisions and splits, and serves predictions tagged by
// revision. Then its own cases: a rotated secret, 5xx and timeouts retried under one request id, 4xx refusals with
// the service's message, malformed answers naming the field, a service gone down (a stale status, never a blocked
// one), and re-attach from the service's answers alone.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Deployer, Deployment, Revision } from '../../plugins/deployer-sdk';
import { deployerContract } from '../../plugins/deployer-testkit';
import { createWebhookDeployer, type WebhookDeployerOptions } from '../../plugins/deployers/webhook';
import { type FakeServingService, startFakeServingService } from './webhook-service';

const SECRET = 'whsec_current-secret-for-tests';
const OLD_SECRET = 'whsec_rotated-out-secret';
const fast = { refreshMs: 40, startupPollMs: 10, timeoutMs: 2_000, retry: { retries: 3, backoffMs: 10, maxBackoffMs: 50 } };

const revision = (number: number): Revision => ({
  number,
  modelVersion: { ref: `contract/iris/${number}`, digest: `sha256:iris-${number}`, files: '/var/lib/atelier/models/iris' },
  serve: { command: ['python3', 'serve.py'] },
});

/** Polls `check` until it holds or the deadline passes (no sleeps as assertions). */
async function eventually(check: () => Promise<boolean>, what: string, deadlineMs = 5_000) {
  const until = Date.now() + deadlineMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

deployerContract('webhook', async () => {
  const service = await startFakeServingService([SECRET]);
  const make = () => createWebhookDeployer({ url: service.url, secret: SECRET, ...fast });
  return {
    deployer: make(),
    restartedDeployer: make,
    revision,
    running: () => service.held(),
    request: { path: 'predict', body: { features: [5.1, 3.5, 1.4, 0.2] } },
    cleanup: () => service.close(),
  };
});

describe('webhook deployer', () => {
  let service: FakeServingService;
  let deployer: Deployer;
  let n = 0;
  const deployment = (): Deployment => ({
    id: `hook-${++n}`,
    name: `hook-${n}`,
    model: 'vision/resnet@champion',
    domain: 'staging',
    settings: { team: 'vision' },
  });
  const make = (extra: Partial<WebhookDeployerOptions> = {}) => createWebhookDeployer({ url: service.url, secret: SECRET, ...fast, ...extra });
  const posts = (path: string) => service.received.filter((r) => r.method === 'POST' && r.path.endsWith(path));

  beforeAll(async () => {
    service = await startFakeServingService([SECRET]);
    deployer = make();
  });
  afterAll(async () => {
    await deployer.close?.();
    await service.close();
  });

  it('POSTs a signed body: the deployment, the revision without local paths, a request id and when it was sent', async () => {
    const d = deployment();
    await deployer.apply(d, revision(1));
    const [sent] = posts(`/deployments/${d.id}/apply`);
    expect(sent).toMatchObject({
      verified: true,
      body: { deployment: d, requestId: sent!.id, revision: { number: 1, modelVersion: { ref: 'contract/iris/1', digest: 'sha256:iris-1' } } },
    });
    expect(sent!.body!.revision).not.toHaveProperty('modelVersion.files');
    expect(new Date(String(sent!.body!.sentAt)).getTime()).toBeGreaterThan(Date.now() - 60_000);
  });

  it('signs with the rotated-out secret too, so a service that still holds only the old one verifies', async () => {
    service.secrets.splice(0, service.secrets.length, OLD_SECRET);
    try {
      const rotating = make({ previousSecret: OLD_SECRET });
      const d = deployment();
      expect(await rotating.apply(d, revision(1))).toMatchObject({ ready: true });
      await rotating.close?.();
      const newOnly = make();
      const refused = newOnly.apply(deployment(), revision(1));
      await expect(refused).rejects.toMatchObject({
        name: 'DeployerError',
        code: 'BAD_SETTINGS',
        message: expect.stringContaining('signature does not match'),
      });
      await expect(refused).rejects.toThrow(/previousSecret/);
      await newOnly.close?.();
    } finally {
      service.secrets.splice(0, service.secrets.length, SECRET);
    }
  });

  it('retries 5xx and timeouts with backoff under one request id, then succeeds', async () => {
    const d = deployment();
    await deployer.apply(d, revision(1));
    await deployer.apply(d, revision(2));
    service.inject({ answer: 503 }, 2, 'POST');
    expect((await deployer.setTraffic(d.id, { 1: 80, 2: 20 })).traffic).toEqual({ 1: 80, 2: 20 });
    const tries = posts(`/deployments/${d.id}/traffic`);
    expect(tries).toHaveLength(3);
    expect(new Set(tries.map((t) => t.id)).size, 'one request id on every retry').toBe(1);
    expect(tries.map((t) => t.body!.requestId)).toEqual(tries.map((t) => t.id));

    const impatient = make({ timeoutMs: 300 });
    service.inject({ hang: true }, 1, 'POST');
    expect((await impatient.rollback(d.id, 1)).traffic).toEqual({ 1: 100 });
    const rollbacks = posts(`/deployments/${d.id}/rollback`);
    // The hung attempt and at least one more (a loaded machine may time out another): all under one request id.
    expect(rollbacks.length).toBeGreaterThanOrEqual(2);
    expect(new Set(rollbacks.map((r) => r.id)).size).toBe(1);
    await impatient.close?.();
  });

  it('gives up after its retries with an error that says nothing was confirmed', async () => {
    const d = deployment();
    await deployer.apply(d, revision(1));
    service.inject({ answer: 502 }, 4, 'POST');
    await expect(deployer.rollback(d.id, 1)).rejects.toThrow(/failed after 4 attempts \(last: HTTP 502.*calling again is safe/);
  });

  it('turns a 4xx into a DeployerError with the service’s message, without retrying, changing nothing', async () => {
    const d = deployment();
    await deployer.apply(d, revision(1));
    const was = await deployer.apply(d, revision(2));
    service.inject({ answer: 422, body: JSON.stringify({ message: 'team vision has no GPU quota left in eu-west' }) }, 1, 'POST');
    await expect(deployer.setTraffic(d.id, { 2: 100 })).rejects.toMatchObject({
      name: 'DeployerError',
      code: 'BAD_SETTINGS',
      message: expect.stringContaining('team vision has no GPU quota left in eu-west'),
    });
    expect(posts(`/deployments/${d.id}/traffic`), 'a 4xx is never retried').toHaveLength(1);
    service.inject({ answer: 400, body: JSON.stringify({ code: 'REVISION_FAILED', message: 'revision 2 crashed: CUDA out of memory' }) }, 1, 'POST');
    await expect(deployer.setTraffic(d.id, { 2: 100 })).rejects.toMatchObject({
      code: 'REVISION_FAILED',
      message: expect.stringContaining('CUDA out of memory'),
    });
    service.inject({ answer: 403, body: 'forbidden by the gateway' }, 1, 'POST');
    await expect(deployer.setTraffic(d.id, { 2: 100 })).rejects.toThrow(/HTTP 403\): forbidden by the gateway/);
    expect(await deployer.status(d.id)).toEqual(was);
  });

  it('refuses a malformed answer with an error naming the field, and never crashes', async () => {
    const d = deployment();
    const was = await deployer.apply(d, revision(1));
    service.inject({ malformed: { ...was, ready: 'yes' } }, 1, 'POST');
    await expect(deployer.rollback(d.id, 1)).rejects.toThrow(/malformed status: ready must be boolean/);
    service.inject({ malformed: { ...was, revisions: [{ number: 1, modelVersion: 'x', health: 'GREAT' }] } }, 1, 'POST');
    await expect(deployer.rollback(d.id, 1)).rejects.toThrow(
      /revisions\[0\]\.health must be equal to one of the allowed values \(STARTING, READY, RESTARTING, FAILED\)/,
    );
    service.inject({ malformed: { ready: true } }, 1, 'POST');
    await expect(deployer.rollback(d.id, 1)).rejects.toThrow(/url is missing/);
    // Malformed until healed: one malformed refresh is stale for one refresh interval (40 ms here), a window a loaded
    // machine's polling can miss.
    service.inject({ malformed: { ...was, traffic: { one: 100 } } }, 10_000, 'GET', `/deployments/${d.id}`);
    await eventually(async () => (await deployer.status(d.id)).message.includes('traffic'), 'the malformed refresh marked stale');
    expect((await deployer.status(d.id)).message).toMatch(/stale: .*malformed status: traffic/);
    service.heal();
    await eventually(async () => (await deployer.status(d.id)).message === was.message, 'the next refresh fresh again');
  });

  it('follows a revision the service reports STARTING until it is READY', async () => {
    service.startingFor = 3;
    try {
      const d = deployment();
      const status = await deployer.apply(d, revision(1));
      expect(status.revisions).toMatchObject([{ number: 1, health: 'READY' }]);
      expect(service.received.filter((r) => r.method === 'GET' && r.path === `/deployments/${d.id}`).length).toBeGreaterThanOrEqual(3);
    } finally {
      service.startingFor = 0;
    }
  });

  it('answers status from its cache while the service is down, saying it is stale; fresh again once it is back', async () => {
    const d = deployment();
    const was = await deployer.apply(d, revision(1));
    await service.down();
    try {
      await eventually(async () => (await deployer.status(d.id)).message.includes('stale'), 'a stale status');
      const stale = await deployer.status(d.id);
      expect(stale).toMatchObject({ ready: was.ready, url: was.url, traffic: was.traffic, revisions: was.revisions });
      expect(stale.message).toMatch(
        /^serving revision 1 at 100% \[stale: the service has not answered for \d+ s \(GET .* failed after 1 attempt \(last: [A-Z_]+\)\); this is its last view\]$/,
      );
    } finally {
      await service.up();
    }
    await eventually(async () => (await deployer.status(d.id)).message === was.message, 'a fresh status');
  });

  it('re-attaches from the service alone: a new instance knows what the service knows, nothing else', async () => {
    const d = deployment();
    await deployer.apply(d, revision(1));
    await deployer.apply(d, revision(2));
    const was = await deployer.setTraffic(d.id, { 1: 30, 2: 70 });
    const restarted = make();
    expect(await restarted.status(d.id)).toEqual(was);
    expect(await restarted.apply(d, revision(2))).toEqual(was);
    await expect(restarted.status('hook-never')).rejects.toMatchObject({ name: 'DeployerError', code: 'UNKNOWN_DEPLOYMENT' });
    await restarted.delete(d.id);
    await eventually(
      async () =>
        deployer.status(d.id).then(
          () => false,
          (err) => err.code === 'UNKNOWN_DEPLOYMENT',
        ),
      'the other instance to see it gone',
    );
    await restarted.close?.();
  });

  it('lists by installation with a signed GET; a service without the list call is CANNOT_LIST, nothing else', async () => {
    const mine = { ...deployment(), installation: 'install-a' };
    const theirs = { ...deployment(), installation: 'install-b' };
    await deployer.apply(mine, revision(1));
    await deployer.apply(theirs, revision(1));
    expect(await deployer.list!('install-a')).toEqual([{ id: mine.id, name: mine.name }]);
    const asked = service.received.filter((r) => r.method === 'GET' && r.path === '/deployments').at(-1);
    expect(asked).toMatchObject({ verified: true });
    service.listing = false;
    try {
      await expect(deployer.list!('install-a')).rejects.toMatchObject({
        name: 'DeployerError',
        code: 'CANNOT_LIST',
        message: expect.stringContaining('GET /deployments'),
      });
      expect((await deployer.status(theirs.id)).revisions).toHaveLength(1);
    } finally {
      service.listing = true;
      await deployer.delete(mine.id);
      await deployer.delete(theirs.id);
    }
  });

  it('refuses options it cannot work with at construction', () => {
    expect(() => createWebhookDeployer({ url: 'not a url', secret: SECRET })).toThrow(/is not a URL/);
    expect(() => createWebhookDeployer({ url: 'ftp://x', secret: SECRET })).toThrow(/http or https/);
    expect(() => createWebhookDeployer({ url: 'https://u:p@x', secret: SECRET })).toThrow(/credentials/);
    expect(() => createWebhookDeployer({ url: 'https://x', secret: '' })).toThrow(/secret is required/);
  });

  it('shows no secret its url carries: a query or fragment refused (it would swallow the calls’ path), an unparsable url redacted', () => {
    const refusal = (url: string) => {
      try {
        createWebhookDeployer({ url, secret: SECRET });
      } catch (error) {
        return (error as Error).message;
      }
      throw new Error(`${url} was taken`);
    };
    for (const url of [`${service.url}?token=T0KEN`, `${service.url}/?access_token=T0KEN&x=1`, `${service.url}#T0KEN`, `${service.url}?T0KEN`]) {
      const message = refusal(url);
      expect(message, url).toMatch(/may not carry a query or fragment/);
      expect(message, url).not.toContain('T0KEN');
    }
    const message = refusal('https://u:S3CRET@exa mple.com/atelier?token=T0KEN');
    expect(message).toMatch(/is not a URL/);
    expect(message).not.toMatch(/S3CRET|T0KEN/);
  });
});
