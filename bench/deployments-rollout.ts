// Deployments through the control plane (embedded app, the real local deployer, the iris model over HTTP): an alias
// moved → the deployment answering with the new version, p50; a failover → every request answered by the fallback,
// p50. Floors from the same run: the local deployer alone applying a new revision (a server started and healthy), and
// the local deployer alone switching all traffic (`rollback`).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Revision } from '../plugins/deployer-sdk';
import { createLocalDeployer } from '../plugins/deployers/local';
import { irisVersion, predict, startDeploymentApp } from '../test/deployments/setup';
import { fixturesDir } from '../test/harness/app';
import { percentile, type Row, runWhenMain } from './lib';

const MOVES = 8;
const FAILOVERS = 20;

async function waitFor(check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function floors(): Promise<{ apply: number; rollback: number }> {
  const stateDir = await mkdtemp(path.join(tmpdir(), 'atelier-bench-rollout-'));
  const deployer = createLocalDeployer({ stateDir, isolation: 'none' });
  const revision = (number: number): Revision => ({
    number,
    modelVersion: { ref: `bench/iris/${number}`, digest: `sha256:bench-${number}`, files: path.join(fixturesDir, 'iris-model') },
    serve: { command: [process.execPath, 'serve.mjs'] },
  });
  const d = { id: 'floor', name: 'floor', model: 'bench/iris@champion', domain: 'experimentation', settings: {} };
  try {
    const applies: number[] = [];
    for (let n = 1; n <= MOVES; n++) {
      const start = performance.now();
      await deployer.apply(d, revision(n));
      applies.push(performance.now() - start);
    }
    const rollbacks: number[] = [];
    for (let i = 0; i < FAILOVERS; i++) {
      const start = performance.now();
      await deployer.rollback(d.id, i % 2 === 0 ? 1 : 2);
      rollbacks.push(performance.now() - start);
    }
    return { apply: percentile(applies, 50), rollback: percentile(rollbacks, 50) };
  } finally {
    await deployer.delete(d.id);
    await deployer.close?.();
    await rm(stateDir, { recursive: true, force: true });
  }
}

export async function deploymentsRolloutBench(): Promise<Row[]> {
  const floor = await floors();
  const t = await startDeploymentApp(15_000);
  try {
    await t.team('ml', [], ['ml']);
    for (let v = 1; v <= MOVES + 1; v++) await irisVersion(t, v);
    const alias = (v: number) => t.api.gql(`mutation { setModelAlias(model: "ml/iris", alias: "champion", version: "${v}") { version { version } } }`);
    await alias(1);
    await t.api.gql(`mutation { createDeployment(input: { name: "bench", model: "ml/iris@champion", domain: "experimentation" }) { id } }`);
    let url = '';
    await waitFor(async () => {
      url = (await t.api.gql(`{ deployment(name: "bench") { url ready } }`)).deployment.url ?? '';
      return !!url && (await predict(url)).version === 'ml/iris/1';
    });
    const moves: number[] = [];
    for (let v = 2; v <= MOVES + 1; v++) {
      const start = performance.now();
      await alias(v);
      await waitFor(async () => (await predict(url)).version === `ml/iris/${v}`);
      moves.push(performance.now() - start);
    }
    const failovers: number[] = [];
    for (let i = 0; i < FAILOVERS; i++) {
      const start = performance.now();
      const { failoverDeployment } = await t.api.gql(
        `mutation { failoverDeployment(id: "bench", reason: "bench") { fallback { revision } traffic { revision } } }`,
      );
      const to = String(failoverDeployment.traffic[0].revision);
      await waitFor(async () => (await predict(url)).revision === to);
      failovers.push(performance.now() - start);
      await t.api.gql(`mutation { restoreDeployment(id: "bench") { id } }`);
    }
    const [m50, f50] = [percentile(moves, 50), percentile(failovers, 50)];
    return [
      {
        bench: 'deployments',
        metric: `alias moved → the deployment answering with the new version, p50 (${MOVES} moves)`,
        value: m50,
        unit: 'ms',
        floor: floor.apply,
        ratio: m50 / floor.apply,
        note: 'floor: the local deployer alone applying a revision (server started and healthy), p50',
      },
      {
        bench: 'deployments',
        metric: `failoverDeployment → every request answered by the fallback, p50 (${FAILOVERS} failovers)`,
        value: f50,
        unit: 'ms',
        floor: floor.rollback,
        ratio: f50 / floor.rollback,
        note: 'aim ≤ 1 s; floor: the local deployer alone switching all traffic (rollback), p50',
      },
    ];
  } finally {
    await t.api.gql(`mutation { deleteDeployment(id: "bench") }`).catch(() => undefined);
    await t.stop();
  }
}

runWhenMain(import.meta.url, deploymentsRolloutBench);
