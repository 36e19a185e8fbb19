// The local deployer past startup: a READY server that hangs (lives, answers nothing) is found by its periodic health
// probes and restarted with the crash backoff, counted in its restarts, the reason in its message; a revision's
// resources (memory limited by RLIMIT_DATA, CPU said to be unenforced, GPUs this host lacks refused); and a first
// apply that fails after starting its server (the router lost the port) leaves no process and no deployment behind.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Deployer, Deployment, DeploymentStatus, Revision } from '../../plugins/deployer-sdk';
import { createLocalDeployer, liveProcesses } from '../../plugins/deployers/local';
import { freePort } from '../../plugins/deployers/local/processes';
import { hostGpus, place } from '../../plugins/deployers/local/resources';

const iris = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'iris-model');

const irisRevision = (number: number, more: Partial<Revision> = {}): Revision => ({
  number,
  modelVersion: { ref: `health/iris/${number}`, digest: `sha256:iris-${number}`, files: iris },
  serve: { command: [process.execPath, 'serve.mjs'] },
  ...more,
});

describe('local deployer: health while READY, resources, failed first applies', () => {
  let stateDir: string;
  let deployer: Deployer;
  let n = 0;
  const deployment = (settings: Record<string, unknown> = {}): Deployment => ({
    id: `health-${++n}`,
    name: `health-${n}`,
    model: 'health/iris@champion',
    domain: 'staging',
    settings,
  });

  async function until(id: string, what: string, ok: (s: DeploymentStatus) => boolean): Promise<DeploymentStatus> {
    const deadline = Date.now() + 15_000;
    for (;;) {
      const s = await deployer.status(id);
      if (ok(s)) return s;
      if (Date.now() > deadline) throw new Error(`${what}: ${JSON.stringify(s)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  beforeAll(async () => {
    stateDir = await mkdtemp(path.join(tmpdir(), 'atelier-deployer-health-'));
    deployer = createLocalDeployer({
      stateDir,
      startupMs: 10_000,
      backoffMs: 20,
      checkMs: 50,
      maxRestarts: 2,
      healthEveryMs: 100,
      healthTimeoutMs: 200,
      healthFailures: 2,
      ports: { from: 1024, to: 65_535 }, // any: the port test below names a free one the kernel picked
    });
  });
  afterAll(async () => {
    await deployer.close?.();
    expect(await liveProcesses(stateDir), 'every process stopped').toBe(0);
    await rm(stateDir, { recursive: true, force: true });
  });

  it('restarts a READY server that stops answering its health path, counted in restarts, saying why', async () => {
    const d = deployment();
    const { url } = await deployer.apply(d, irisRevision(1));
    expect((await fetch(`${url}/hang`, { method: 'POST' })).status).toBe(200);
    // Alive but silent: only the health probes can tell.
    const s = await until(d.id, 'not restarted', (x) => x.ready && x.revisions[0]!.restarts === 1);
    expect(s.revisions[0]!.message).toMatch(/restarted after: the server stopped answering GET \/health \(2 checks in a row, 200 ms each\)/);
    const answer = await fetch(`${url}/predict`, { method: 'POST', body: JSON.stringify({ features: [5.1, 3.5, 1.4, 0.2] }) });
    expect(await answer.json()).toEqual({ class: 'setosa', version: 'health/iris/1' });
    await deployer.delete(d.id);
  });

  it('the router lets go of a request its client gave up on: no connection to a hung model is kept', async () => {
    // Health probes off: only the router may close these connections here.
    const patient = createLocalDeployer({ stateDir, startupMs: 10_000, checkMs: 50, healthFailures: 1_000_000 });
    const d = deployment();
    try {
      const { url } = await patient.apply(d, irisRevision(1));
      const state = JSON.parse(await readFile(path.join(stateDir, 'deployments', d.id, 'state.json'), 'utf8'));
      const serverPort = state.revisions['1'].port as number;
      expect((await fetch(`${url}/hang`, { method: 'POST' })).status).toBe(200);
      for (let i = 0; i < 3; i++) await expect(fetch(`${url}/predict`, { method: 'POST', body: '{}', signal: AbortSignal.timeout(150) })).rejects.toThrow();
      // Connections the model's server holds open (ESTABLISHED, its port local), from /proc/net/tcp.
      const held = async () =>
        (await readFile('/proc/net/tcp', 'utf8'))
          .split('\n')
          .slice(1)
          .filter((l) => {
            const [, local, , st] = l.trim().split(/\s+/);
            return st === '01' && local?.endsWith(`:${serverPort.toString(16).toUpperCase().padStart(4, '0')}`);
          }).length;
      const deadline = Date.now() + 5_000;
      while ((await held()) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(await held()).toBe(0);
    } finally {
      await patient.delete(d.id);
      await patient.close?.();
    }
  });

  it('limits a server’s memory to resources.memoryMb: past it the server fails, FAILED saying the limit', async () => {
    // No restarts: a server out of memory takes seconds to give up, the same each time.
    const once = createLocalDeployer({ stateDir, startupMs: 10_000, checkMs: 50, maxRestarts: 0 });
    const d = deployment();
    const s = await once.apply(d, irisRevision(1, { env: { IRIS_ALLOCATE_MB: '256' }, resources: { memoryMb: 128 } }));
    expect(s.revisions[0]).toMatchObject({ health: 'FAILED', restarts: 1 });
    expect(s.revisions[0]!.message).toContain('resources.memoryMb 128');
    await once.delete(d.id);
    await once.close?.();
  });

  it('serves within its memory, and says that CPU is not enforced', async () => {
    const d = deployment();
    const s = await deployer.apply(d, irisRevision(1, { env: { IRIS_ALLOCATE_MB: '16' }, resources: { memoryMb: 128, cpu: 2 } }));
    expect(s).toMatchObject({ ready: true, revisions: [{ health: 'READY', restarts: 0 }] });
    expect(s.message).toContain('revision 1: cpu 2 not enforced');
    expect(s.revisions[0]!.message).toContain('cpu 2 not enforced');
    await deployer.delete(d.id);
  });

  it('refuses GPUs this host does not have, and bad resources, creating nothing', async (ctx) => {
    expect(place({ gpus: 2 }, 2)).toMatchObject({ env: { CUDA_VISIBLE_DEVICES: '0,1' }, note: expect.stringContaining('not reserved') });
    if (hostGpus() > 0) ctx.skip();
    const running = await liveProcesses(stateDir);
    for (const [resources, says] of [
      [{ gpus: 1 }, 'asks for 1 GPU and this host has 0'],
      [{ memoryMb: -5 }, 'resources.memoryMb must be a number ≥ 0'],
      [{ gpus: 0.5 }, 'resources.gpus must be a whole number'],
    ] as const) {
      const d = deployment();
      await expect(deployer.apply(d, irisRevision(1, { resources }))).rejects.toMatchObject({ code: 'BAD_SETTINGS', message: expect.stringContaining(says) });
      await expect(deployer.status(d.id)).rejects.toMatchObject({ code: 'UNKNOWN_DEPLOYMENT' });
    }
    expect(await liveProcesses(stateDir)).toBe(running);
  });

  it('a first apply whose router loses its port after the server started leaves nothing running and no deployment', async () => {
    const port = await freePort();
    const d = deployment({ port });
    const blocker: Server = createServer();
    const running = await liveProcesses(stateDir);
    // The port is free when apply checks it; it is taken while the files are fetched, before the router starts.
    const revision = irisRevision(1, {
      modelVersion: {
        ref: 'health/iris/1',
        digest: 'sha256:iris-1',
        files: async () => {
          await new Promise<void>((r) => blocker.listen(port, '127.0.0.1', r));
          return iris;
        },
      },
    });
    try {
      await expect(deployer.apply(d, revision)).rejects.toMatchObject({ code: 'PORT_IN_USE' });
      await expect(deployer.status(d.id)).rejects.toMatchObject({ code: 'UNKNOWN_DEPLOYMENT' });
      expect(await liveProcesses(stateDir), 'the revision server it started is stopped').toBe(running);
    } finally {
      blocker.close();
    }
  });
});
