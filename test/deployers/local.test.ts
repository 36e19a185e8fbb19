// The local deployer against the deployer contract, with real processes and real HTTP: the iris fixture model
// (test/fixtures/iris-model) served per revision, a router process splitting requests. Then its own faults: a
// crashing server restarted with backoff and then FAILED with its stderr, a crash mid-service restarted, a port
// in use refused.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Deployer, Deployment, Revision } from '../../plugins/deployer-sdk';
import { deployerContract } from '../../plugins/deployer-testkit';
import { createLocalDeployer, liveProcesses } from '../../plugins/deployers/local';
import { freePort } from '../../plugins/deployers/local/processes';
import { probeBwrap } from '../../plugins/deployers/local/sandbox';

const iris = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'iris-model');
const fast = { startupMs: 10_000, backoffMs: 20, checkMs: 50, maxRestarts: 2 };

const irisRevision = (number: number, env: Record<string, string> = {}): Revision => ({
  number,
  modelVersion: { ref: `contract/iris/${number}`, digest: `sha256:iris-${number}`, files: iris },
  serve: { command: [process.execPath, 'serve.mjs'] },
  env,
});

deployerContract('local', async () => {
  const stateDir = await mkdtemp(path.join(tmpdir(), 'atelier-deployer-local-'));
  return {
    deployer: createLocalDeployer({ stateDir, ...fast }),
    restartedDeployer: () => createLocalDeployer({ stateDir, ...fast }),
    revision: (n) => irisRevision(n),
    running: () => liveProcesses(stateDir),
    request: { path: '/predict', body: { features: [5.1, 3.5, 1.4, 0.2] } },
    cleanup: async () => {
      expect(await liveProcesses(stateDir), 'every process stopped by delete').toBe(0);
      await rm(stateDir, { recursive: true, force: true });
    },
  };
});

describe('local deployer faults', () => {
  let stateDir: string;
  let deployer: Deployer;
  let n = 0;
  const deployment = (settings: Record<string, unknown> = {}): Deployment => ({
    id: `faults-${++n}`,
    name: `faults-${n}`,
    model: 'contract/iris@champion',
    domain: 'staging',
    settings,
  });

  beforeAll(async () => {
    stateDir = await mkdtemp(path.join(tmpdir(), 'atelier-deployer-faults-'));
    deployer = createLocalDeployer({ stateDir, ...fast, ports: { from: 1024, to: 65_535 } }); // any: the port tests name free ones
  });
  afterAll(async () => {
    await deployer.close?.();
    expect(await liveProcesses(stateDir)).toBe(0);
    await rm(stateDir, { recursive: true, force: true });
  });

  it('answers predictions from the model files', async () => {
    const d = deployment();
    const { url } = await deployer.apply(d, irisRevision(1));
    const predict = async (features: number[]) =>
      (await fetch(`${url}/predict`, { method: 'POST', body: JSON.stringify({ features }) })).json() as Promise<{ class: string; version: string }>;
    expect(await predict([5.1, 3.5, 1.4, 0.2])).toEqual({ class: 'setosa', version: 'contract/iris/1' });
    expect(await predict([6.7, 3.0, 5.2, 2.3])).toMatchObject({ class: 'virginica' });
    expect((await fetch(`${url}/predict`, { method: 'POST', body: '{}' })).status, 'the model’s own 400 passes through').toBe(400);
    // The router's measurements reach the control plane through status(), and none of its own paths answer a client.
    expect((await deployer.status(d.id)).serving?.revisions[1]?.requests).toBe(3);
    for (const own of ['/__atelier/stats', '/__atelier/routes']) expect((await fetch(`${url}${own}`)).status, own).toBe(404);
    await deployer.delete(d.id);
  });

  it('health-checks by TCP connect when the serve entrypoint names no health path', async () => {
    const d = deployment();
    const status = await deployer.apply(d, { ...irisRevision(1), serve: { command: [process.execPath, 'serve.mjs'], healthPath: null } });
    expect(status).toMatchObject({ ready: true, revisions: [{ health: 'READY' }] });
    await deployer.delete(d.id);
  });

  it('restarts a server that keeps crashing with backoff, then marks it FAILED with its stderr', async () => {
    const d = deployment();
    const status = await deployer.apply(d, irisRevision(1, { IRIS_CRASH: 'start' }));
    expect(status.ready).toBe(false);
    expect(status.revisions[0]).toMatchObject({ health: 'FAILED', restarts: 3 });
    expect(status.revisions[0]!.message).toContain('2 restarts used');
    expect(status.revisions[0]!.message).toContain('simulated crash at start');
    await expect(deployer.setTraffic(d.id, { 1: 100 })).rejects.toMatchObject({ code: 'REVISION_FAILED' });
    await deployer.delete(d.id);
  });

  it('restarts a server that dies while serving, on the same port', async () => {
    const d = deployment();
    const { url } = await deployer.apply(d, irisRevision(1));
    const state = JSON.parse(await readFile(path.join(stateDir, 'deployments', d.id, 'state.json'), 'utf8'));
    const pid = state.revisions['1'].process.pid as number;
    process.kill(pid, 'SIGKILL');
    const deadline = Date.now() + 10_000;
    for (;;) {
      const s = await deployer.status(d.id);
      if (s.ready && s.revisions[0]!.restarts === 1) break;
      if (Date.now() > deadline) throw new Error(`not restarted: ${JSON.stringify(s)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    expect((await fetch(`${url}/health`)).status).toBe(200);
    await deployer.delete(d.id);
  });

  it('keeps serving without a deployer; a new one restarts what died meanwhile, router included, on the same port', async () => {
    const d = deployment();
    const fetched: string[] = [];
    const revision = {
      ...irisRevision(1),
      modelVersion: {
        ...irisRevision(1).modelVersion,
        files: async () => {
          fetched.push('1');
          return iris;
        },
      },
    };
    const { url } = await deployer.apply(d, revision);
    expect(fetched, 'files fetched once, at apply').toEqual(['1']);
    await deployer.close?.();
    expect((await fetch(`${url}/health`)).status, 'the router outlives the deployer').toBe(200);
    const state = JSON.parse(await readFile(path.join(stateDir, 'deployments', d.id, 'state.json'), 'utf8'));
    process.kill(state.revisions['1'].process.pid, 'SIGKILL');
    process.kill(state.router.pid, 'SIGKILL');
    // Both gone (not merely signalled) before the new deployer looks.
    const dead = async (pid: number) =>
      !(await readFile(`/proc/${pid}/stat`, 'utf8').then(
        (t) => !/^\S+ \(.*\) [ZX]/.test(t),
        () => false,
      ));
    while (!(await dead(state.router.pid)) || !(await dead(state.revisions['1'].process.pid))) await new Promise((r) => setTimeout(r, 5));
    deployer = createLocalDeployer({ stateDir, ...fast, ports: { from: 1024, to: 65_535 } });
    const deadline = Date.now() + 10_000;
    for (;;) {
      const s = await deployer.status(d.id);
      if (s.ready) {
        expect(s).toMatchObject({ url, traffic: { 1: 100 }, revisions: [{ health: 'READY', restarts: 1 }] });
        break;
      }
      expect(s.revisions[0]!.health).not.toBe('FAILED');
      if (Date.now() > deadline) throw new Error(`not re-attached: ${JSON.stringify(s)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    expect((await fetch(`${url}/health`)).status).toBe(200);
    await deployer.delete(d.id);
  });

  it('runs servers in bubblewrap where it works: model files read-only, the state directory and hidden paths unseen', async (ctx) => {
    if (!probeBwrap().ok) ctx.skip();
    const secret = await mkdtemp(path.join(tmpdir(), 'atelier-deployer-secret-'));
    const sandboxed = createLocalDeployer({ stateDir, ...fast, isolation: 'bwrap', hidePaths: [secret] });
    const d = deployment();
    try {
      const stateFile = path.join(stateDir, 'deployments', d.id, 'state.json');
      const { url } = await sandboxed.apply(d, irisRevision(1, { IRIS_PROBE_PATHS: [stateFile, secret, path.join(secret, 'token')].join(':') }));
      await writeFile(path.join(secret, 'token'), 'admin');
      const seen = await (await fetch(`${url}/sandbox`)).json();
      expect(seen).toEqual({ cwd: '/run/model', modelDir: '/run/model', writable: false, sees: [secret] });
      expect((await fetch(`${url}/predict`, { method: 'POST', body: JSON.stringify({ features: [5.1, 3.5, 1.4, 0.2] }) })).status).toBe(200);
    } finally {
      await sandboxed.delete(d.id);
      await sandboxed.close?.();
      await rm(secret, { recursive: true, force: true });
    }
  });

  it('refuses a settings.port outside the operator’s range alike whether something listens there or not (no port oracle)', async () => {
    const bounded = createLocalDeployer({ stateDir, ...fast, ports: { from: 8100, to: 8199 } });
    const blocker: Server = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const used = (blocker.address() as { port: number }).port;
    const free = await freePort();
    const running = await liveProcesses(stateDir);
    try {
      const refusals = [];
      for (const port of [used, free]) {
        const d = deployment({ port });
        const refused = await bounded.apply(d, irisRevision(1)).catch((e) => e);
        expect(refused).toMatchObject({ code: 'BAD_SETTINGS', message: expect.stringContaining('from 8100 to 8199') });
        await expect(bounded.status(d.id)).rejects.toMatchObject({ code: 'UNKNOWN_DEPLOYMENT' });
        refusals.push(refused.message.replace(String(port), 'PORT'));
      }
      expect(refusals[0]).toBe(refusals[1]);
      expect(await liveProcesses(stateDir)).toBe(running);
    } finally {
      blocker.close();
      await bounded.close?.();
    }
  });

  it('refuses a port in use, saying so, and creates nothing', async () => {
    const blocker: Server = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as { port: number }).port;
    const d = deployment({ port });
    const running = await liveProcesses(stateDir);
    await expect(deployer.apply(d, irisRevision(1))).rejects.toMatchObject({ code: 'PORT_IN_USE', message: expect.stringContaining(`port ${port}`) });
    await expect(deployer.status(d.id)).rejects.toMatchObject({ code: 'UNKNOWN_DEPLOYMENT' });
    expect(await liveProcesses(stateDir)).toBe(running);
    blocker.close();
  });
});
