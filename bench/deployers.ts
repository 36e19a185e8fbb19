// The local deployer's prediction overhead: POST /predict to the iris fixture through the deployment's router vs
// straight to the revision's own server (the floor, same process, same run), interleaved, p50 over 1,000 requests on
// keep-alive connections. Also a rollback (all traffic switched to another revision, confirmed by the router), p50.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Revision } from '../plugins/deployer-sdk';
import { createLocalDeployer } from '../plugins/deployers/local';
import { percentile, type Row } from './lib';

const SAMPLES = 1_000;
const SWITCHES = 50;
const iris = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'test', 'fixtures', 'iris-model');
const revision = (number: number): Revision => ({
  number,
  modelVersion: { ref: `bench/iris/${number}`, digest: `sha256:bench-${number}`, files: iris },
  serve: { command: [process.execPath, 'serve.mjs'] },
});

const agent = new Agent({ keepAlive: true, maxSockets: 1 });
const body = JSON.stringify({ features: [5.1, 3.5, 1.4, 0.2] });

/** One prediction on a kept-alive connection; its wall time in ms. */
function predict(port: number): Promise<number> {
  const start = performance.now();
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/predict', method: 'POST', agent, headers: { 'content-type': 'application/json' } }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve(performance.now() - start) : reject(new Error(`predict answered ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end(body);
  });
}

export async function deployersBench(): Promise<Row[]> {
  const stateDir = await mkdtemp(path.join(tmpdir(), 'atelier-bench-deployers-'));
  const deployer = createLocalDeployer({ stateDir });
  const id = 'bench-iris';
  try {
    const deployment = { id, name: id, model: 'bench/iris@champion', domain: 'staging', settings: {} };
    const { url } = await deployer.apply(deployment, revision(1));
    await deployer.apply(deployment, revision(2));
    const state = JSON.parse(await readFile(path.join(stateDir, 'deployments', id, 'state.json'), 'utf8'));
    const routerPort = Number(new URL(url!).port);
    const directPort = state.revisions['1'].port as number;
    for (let i = 0; i < 50; i++) await Promise.all([predict(routerPort), predict(directPort)]);
    const routed: number[] = [];
    const direct: number[] = [];
    // Interleaved, so both see the same machine load.
    for (let i = 0; i < SAMPLES; i++) {
      routed.push(await predict(routerPort));
      direct.push(await predict(directPort));
    }
    const switches: number[] = [];
    for (let i = 0; i < SWITCHES; i++) {
      const start = performance.now();
      await deployer.rollback(id, i % 2 === 0 ? 2 : 1);
      switches.push(performance.now() - start);
    }
    const [r50, d50] = [percentile(routed, 50), percentile(direct, 50)];
    return [
      {
        bench: 'deployers',
        metric: `local deployer: prediction through the router, p50 (${SAMPLES} requests)`,
        value: r50,
        unit: 'ms',
        floor: d50,
        ratio: r50 / d50,
        note: 'aim ≤ 1.2×; floor: the same request straight to the model process, p50',
      },
      {
        bench: 'deployers',
        metric: 'local deployer: the router’s own cost per prediction (p50 through it − p50 direct)',
        value: r50 - d50,
        unit: 'ms',
        note: `a fixed hop: within 1.2× for models taking ≥ ${Math.ceil((r50 - d50) / 0.2)} ms a prediction`,
      },
      {
        bench: 'deployers',
        metric: `local deployer: rollback → router serving the new split, p50 (${SWITCHES} switches)`,
        value: percentile(switches, 50),
        unit: 'ms',
        note: 'aim ≤ 1 s for failover (the control plane adds its own transaction)',
      },
    ];
  } finally {
    agent.destroy();
    await deployer.delete(id);
    await deployer.close?.();
    await rm(stateDir, { recursive: true, force: true });
  }
}
