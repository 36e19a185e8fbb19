// The deployer contract: a vitest suite every deployer must pass, like the executors' (testkit.ts). A deployer maps
// revisions onto its backend (real processes, a stand-in's resources, an in-memory fake); the suite checks apply's
// idempotency, traffic splits (counted over real requests for deployers that serve), rollback, delete, refusals that
// change nothing, re-attach by a new instance over the same state, and (for deployers that can) listing what one
// installation holds and nothing of another's.
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type Deployer, type Deployment, type DeploymentStatus, REVISION_HEADER, type Revision } from './deployer-sdk';

export interface DeployerContractSetup {
  /** The deployer under test. */
  deployer: Deployer;
  /** A revision numbered `number` serving a model version that works (each number a distinct version). */
  revision(number: number): Revision;
  /** How many things (processes, pods, fake endpoints) the deployer keeps running now, over all deployments. */
  running(): number | Promise<number>;
  /**
   * A prediction request for a serving deployer: the suite sends it to the deployment's URL and counts responses by
   * their `x-atelier-revision` header. Omit for deployers whose URLs do not answer in tests (then only status is
   * checked).
   */
  request?: { path: string; method?: string; body?: unknown };
  /** The deployer a restarted control plane builds: a new instance over the same state (after `close` of the old). */
  restartedDeployer(): Deployer;
  /** Deployment settings for the deployer (default `{}`). */
  settings?: Record<string, unknown>;
  /** Called after each case (stop stand-ins, remove files). */
  cleanup?(): Promise<void>;
}

let counter = 0;

/** The installation the suite's deployments are applied with; each listing case adds another of its own. */
const INSTALLATION = randomUUID();

/** Registers the contract suite for one deployer; call it at the top level of a test file. */
export function deployerContract(name: string, setup: () => DeployerContractSetup | Promise<DeployerContractSetup>, options: { caseTimeoutMs?: number } = {}) {
  describe(`deployer contract: ${name}`, { timeout: options.caseTimeoutMs ?? 30_000 }, () => {
    let s: DeployerContractSetup;
    let deployer: Deployer;
    let deployment: Deployment;
    let before: number;

    beforeEach(async () => {
      s = await setup();
      deployer = s.deployer;
      counter++;
      deployment = {
        id: `contract-${process.pid}-${counter}`,
        name: `contract-${counter}`,
        model: 'contract/iris@champion',
        domain: 'staging',
        settings: s.settings ?? {},
        installation: INSTALLATION,
      };
      before = await s.running();
    });
    afterEach(async () => {
      await deployer.delete(deployment.id);
      await deployer.close?.();
      await s.cleanup?.();
    });

    /** Sends `n` requests to the URL; the count per revision that answered. */
    async function send(url: string, n: number): Promise<Record<string, number>> {
      const counts: Record<string, number> = {};
      const req = s.request!;
      for (let i = 0; i < n; i++) {
        const res = await fetch(new URL(req.path, url), {
          method: req.method ?? 'POST',
          headers: { 'content-type': 'application/json' },
          body: req.body === undefined ? undefined : JSON.stringify(req.body),
        });
        await res.arrayBuffer();
        expect(res.status, `${req.path} through the deployment's URL`).toBe(200);
        const rev = res.headers.get(REVISION_HEADER) ?? 'none';
        counts[rev] = (counts[rev] ?? 0) + 1;
      }
      return counts;
    }

    const expectUnchanged = async (was: DeploymentStatus) => expect(await deployer.status(deployment.id)).toEqual(was);

    it('applies a revision: READY, with a URL that answers and all traffic on it', async () => {
      const status = await deployer.apply(deployment, s.revision(1));
      expect(status).toMatchObject({ deploymentId: deployment.id, ready: true, traffic: { 1: 100 } });
      expect(status.url).toEqual(expect.any(String));
      expect(status.revisions).toMatchObject([{ number: 1, health: 'READY' }]);
      expect(await deployer.status(deployment.id)).toEqual(status);
      if (s.request) expect(await send(status.url!, 3)).toEqual({ 1: 3 });
    });

    it('apply is idempotent per (deployment, revision): one server, the same status; a changed revision is refused', async () => {
      const first = await deployer.apply(deployment, s.revision(1));
      const running = await s.running();
      expect(running, 'the revision runs').toBeGreaterThan(before);
      expect(await deployer.apply(deployment, s.revision(1))).toEqual(first);
      expect(await s.running()).toBe(running);
      const changed = s.revision(1);
      changed.modelVersion = { ...changed.modelVersion, digest: `${changed.modelVersion.digest}-other` };
      await expect(deployer.apply(deployment, changed)).rejects.toMatchObject({ name: 'DeployerError', code: 'REVISION_CONFLICT' });
      await expectUnchanged(first);
    });

    it('splits traffic 90/10 over two revisions; a new revision takes no traffic until told', async () => {
      await deployer.apply(deployment, s.revision(1));
      const applied = await deployer.apply(deployment, s.revision(2));
      expect(applied.traffic, 'apply does not move traffic').toEqual({ 1: 100 });
      expect(applied.revisions.map((r) => [r.number, r.health])).toEqual([
        [1, 'READY'],
        [2, 'READY'],
      ]);
      const split = await deployer.setTraffic(deployment.id, { 1: 90, 2: 10 });
      expect(split).toMatchObject({ ready: true, traffic: { 1: 90, 2: 10 } });
      expect((await deployer.status(deployment.id)).traffic).toEqual({ 1: 90, 2: 10 });
      if (s.request) {
        const counts = await send(split.url!, 200);
        // 10% of 200 is 20; a fair split lands in [4, 50] with overwhelming probability.
        expect(counts[2] ?? 0, `revision 2's share of 200 requests (${JSON.stringify(counts)})`).toBeGreaterThanOrEqual(4);
        expect(counts[2] ?? 0).toBeLessThanOrEqual(50);
        expect((counts[1] ?? 0) + (counts[2] ?? 0)).toBe(200);
        await expectServingCovers(counts);
      }
    });

    /**
     * A deployer whose status says what its router measured (DeploymentStatus.serving) counted at least the requests
     * each revision answered here, its errors among them and every one in its latency histogram. (Counted as answers
     * end: a moment is allowed for the last to be counted.)
     */
    async function expectServingCovers(counts: Record<string, number>): Promise<void> {
      let serving = (await deployer.status(deployment.id)).serving;
      for (let i = 0; i < 40 && serving && Object.entries(counts).some(([rev, n]) => (serving!.revisions[Number(rev)]?.requests ?? 0) < n); i++) {
        await new Promise((r) => setTimeout(r, 50));
        serving = (await deployer.status(deployment.id)).serving;
      }
      if (!serving) return;
      expect(serving.epoch).toEqual(expect.any(String));
      for (const [rev, n] of Object.entries(counts))
        expect(serving.revisions[Number(rev)]?.requests ?? 0, `revision ${rev}'s requests`).toBeGreaterThanOrEqual(n);
      for (const c of Object.values(serving.revisions)) {
        expect(c.errors).toBeLessThanOrEqual(c.requests);
        expect(c.buckets.reduce((sum, b) => sum + b, 0)).toBe(c.requests);
      }
    }

    it('rolls back: all traffic to the old revision at once; the new one stays for a roll-forward', async () => {
      await deployer.apply(deployment, s.revision(1));
      await deployer.apply(deployment, s.revision(2));
      await deployer.setTraffic(deployment.id, { 1: 10, 2: 90 });
      const back = await deployer.rollback(deployment.id, 1);
      expect(back).toMatchObject({ ready: true, traffic: { 1: 100 } });
      expect(back.revisions.map((r) => r.number)).toEqual([1, 2]);
      if (s.request) expect(await send(back.url!, 20), 'every request after the rollback call').toEqual({ 1: 20 });
      expect((await deployer.setTraffic(deployment.id, { 2: 100 })).traffic).toEqual({ 2: 100 });
    });

    it('deletes: nothing left running, the deployment unknown, deleting again is fine', async () => {
      await deployer.apply(deployment, s.revision(1));
      await deployer.apply(deployment, s.revision(2));
      await deployer.delete(deployment.id);
      expect(await s.running()).toBe(before);
      await expect(deployer.status(deployment.id)).rejects.toMatchObject({ name: 'DeployerError', code: 'UNKNOWN_DEPLOYMENT' });
      await deployer.delete(deployment.id);
    });

    it("lists what it holds for one installation: never another installation's, nor a deleted one (if it can list)", async (ctx) => {
      if (!deployer.list) return ctx.skip();
      // Another control plane's deployment on the same backend: the same deployer, another installation id.
      const { port: _port, ...settings } = s.settings ?? {};
      const other: Deployment = { ...deployment, id: `${deployment.id}-other`, name: `${deployment.name}-other`, settings, installation: randomUUID() };
      await deployer.apply(deployment, s.revision(1));
      try {
        await deployer.apply(other, s.revision(1));
        const mine = await deployer.list(INSTALLATION);
        expect(mine.map((d) => d.id)).toContain(deployment.id);
        expect(mine.map((d) => d.id)).not.toContain(other.id);
        expect(mine.find((d) => d.id === deployment.id)?.name ?? deployment.name).toBe(deployment.name);
        expect((await deployer.list(other.installation!)).map((d) => d.id)).toEqual([other.id]);
        await deployer.delete(deployment.id);
        expect((await deployer.list(INSTALLATION)).map((d) => d.id)).not.toContain(deployment.id);
        expect(
          (await deployer.list(other.installation!)).map((d) => d.id),
          "another installation's deployment is untouched",
        ).toEqual([other.id]);
        expect((await deployer.status(other.id)).revisions.map((r) => r.number)).toEqual([1]);
      } finally {
        await deployer.delete(other.id);
      }
    });

    it('refuses bad input with typed errors and changes nothing', async () => {
      await deployer.apply(deployment, s.revision(1));
      const was = await deployer.apply(deployment, s.revision(2));
      const running = await s.running();
      const refusals: [string, () => Promise<unknown>, string][] = [
        ['a split summing to 90', () => deployer.setTraffic(deployment.id, { 1: 50, 2: 40 }), 'BAD_SPLIT'],
        ['a split over 100', () => deployer.setTraffic(deployment.id, { 1: 60, 2: 60 }), 'BAD_SPLIT'],
        ['fractional percents', () => deployer.setTraffic(deployment.id, { 1: 50.5, 2: 49.5 }), 'BAD_SPLIT'],
        ['a negative percent', () => deployer.setTraffic(deployment.id, { 1: 110, 2: -10 }), 'BAD_SPLIT'],
        ['an empty split', () => deployer.setTraffic(deployment.id, {}), 'BAD_SPLIT'],
        ['an unknown revision in a split', () => deployer.setTraffic(deployment.id, { 1: 50, 7: 50 }), 'UNKNOWN_REVISION'],
        ['a rollback to an unknown revision', () => deployer.rollback(deployment.id, 7), 'UNKNOWN_REVISION'],
        ['a revision with no serve entrypoint', () => deployer.apply(deployment, { ...s.revision(3), serve: null }), 'NO_SERVE_ENTRYPOINT'],
        ['a split for an unknown deployment', () => deployer.setTraffic(`${deployment.id}-none`, { 1: 100 }), 'UNKNOWN_DEPLOYMENT'],
      ];
      for (const [what, call, code] of refusals) {
        await expect(call(), what).rejects.toMatchObject({ name: 'DeployerError', code, message: expect.any(String) });
        await expectUnchanged(was);
      }
      expect(await s.running(), 'a refused apply starts nothing').toBe(running);
    });

    it('re-attaches: a new instance over the same state knows the deployment and starts nothing twice', async () => {
      await deployer.apply(deployment, s.revision(1));
      await deployer.apply(deployment, s.revision(2));
      const was = await deployer.setTraffic(deployment.id, { 1: 50, 2: 50 });
      const running = await s.running();
      await deployer.close?.();
      deployer = s.restartedDeployer();
      // Serving figures are counters since an epoch: a new instance may keep the epoch (a router that lives on, whose
      // counters go on) or start a new one (counting from its first sight); within one epoch they never go back.
      const same = (now: DeploymentStatus) => {
        const { serving: a, ...rest } = now;
        const { serving: b, ...before } = was;
        expect(rest).toEqual(before);
        if (a && b && a.epoch === b.epoch)
          for (const [rev, c] of Object.entries(b.revisions)) expect(a.revisions[Number(rev)]?.requests ?? 0).toBeGreaterThanOrEqual(c.requests);
      };
      same(await deployer.status(deployment.id));
      same(await deployer.apply(deployment, s.revision(2)));
      expect(await s.running(), 'no server started twice').toBe(running);
      if (s.request) {
        const counts = await send(was.url!, 40);
        expect(Object.keys(counts).sort()).toEqual(['1', '2']);
      }
      expect((await deployer.rollback(deployment.id, 2)).traffic).toEqual({ 2: 100 });
    });
  });
}
