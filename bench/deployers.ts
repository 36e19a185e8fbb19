// The local deployer's prediction overhead: POST /predict to the iris fixture through the deployment's router vs
// straight to the revision's own server (the floor, same process, same run), interleaved in random order on one
// client with one keep-alive connection per target, p50 over 1,000 requests after a warm-up. Beside it, in the same run: a plain TCP
// relay process (no HTTP parsing at all: the cheapest any separate proxy process can be) over the same server, the
// router's node:http part (a chunked request: not one its fast path takes), and the router over a model that spends
// 2 ms computing each prediction (pinned to that revision). Also a rollback (all
// traffic switched to another revision, confirmed by the router), p50.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PIN_REVISION_HEADER, type Revision } from '../plugins/deployer-sdk';
import { createLocalDeployer } from '../plugins/deployers/local';
import { freePort } from '../plugins/deployers/local/processes';
import { percentile, type Row } from './lib';

const SAMPLES = 1_000;
const SWITCHES = 50;
const WORK_MS = 2;
const iris = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'test', 'fixtures', 'iris-model');
const revision = (number: number, env: Record<string, string> = {}): Revision => ({
  number,
  modelVersion: { ref: `bench/iris/${number}`, digest: `sha256:bench-${number}`, files: iris },
  serve: { command: [process.execPath, 'serve.mjs'] },
  env,
});

const agent = new Agent({ keepAlive: true, maxSockets: 1 });
const chunkedAgent = new Agent({ keepAlive: true, maxSockets: 1 });
const body = JSON.stringify({ features: [5.1, 3.5, 1.4, 0.2] });

/** One prediction on a kept-alive connection; its wall time in ms. `chunked`: its body sent chunked, on its own connection. */
function predict(port: number, pin?: number, chunked = false): Promise<number> {
  const start = performance.now();
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (pin !== undefined) headers[PIN_REVISION_HEADER] = String(pin);
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/predict', method: 'POST', agent: chunked ? chunkedAgent : agent, headers }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve(performance.now() - start) : reject(new Error(`predict answered ${res.statusCode}`))));
    });
    req.on('error', reject);
    if (chunked) req.write(body); // no content-length: node's client sends it chunked
    req.end(chunked ? undefined : body);
  });
}

/** A byte relay process: each connection piped to `target`, no HTTP parsing (the floor of any proxy process). */
async function tcpRelay(target: number): Promise<{ port: number; child: ChildProcess }> {
  const port = await freePort();
  const script = `const net=require('node:net');net.createServer((c)=>{const u=net.connect(${target},'127.0.0.1');c.pipe(u);u.pipe(c);c.on('error',()=>u.destroy());u.on('error',()=>c.destroy());}).listen(${port},'127.0.0.1',()=>console.log('up'))`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((resolve) => child.stdout!.once('data', resolve));
  return { port, child };
}

export async function deployersBench(): Promise<Row[]> {
  const stateDir = await mkdtemp(path.join(tmpdir(), 'atelier-bench-deployers-'));
  const deployer = createLocalDeployer({ stateDir });
  const id = 'bench-iris';
  let relay: ChildProcess | undefined;
  try {
    const deployment = { id, name: id, model: 'bench/iris@champion', domain: 'staging', settings: {} };
    const { url } = await deployer.apply(deployment, revision(1));
    await deployer.apply(deployment, revision(2));
    await deployer.apply(deployment, revision(3, { IRIS_WORK_MS: String(WORK_MS) }));
    const state = JSON.parse(await readFile(path.join(stateDir, 'deployments', id, 'state.json'), 'utf8'));
    const routerPort = Number(new URL(url!).port);
    const directPort = state.revisions['1'].port as number;
    const workPort = state.revisions['3'].port as number;
    const tcp = await tcpRelay(directPort);
    relay = tcp.child;
    const targets: Array<[string, () => Promise<number>]> = [
      ['routed', () => predict(routerPort)],
      ['routed node:http', () => predict(routerPort, undefined, true)],
      ['direct', () => predict(directPort)],
      ['relay', () => predict(tcp.port)],
      ['work routed', () => predict(routerPort, 3)],
      ['work direct', () => predict(workPort)],
    ];
    for (let i = 0; i < 100; i++) for (const [, call] of targets) await call();
    const times = new Map(targets.map(([k]) => [k, [] as number[]]));
    // Interleaved, so all see the same machine load, in a new random order each round: a request right after another
    // one's (or a computing model's) CPU trail is slower, which a fixed order would charge to one target every time.
    for (let i = 0; i < SAMPLES; i++) for (const [k, call] of [...targets].sort(() => Math.random() - 0.5)) times.get(k)!.push(await call());
    const switches: number[] = [];
    for (let i = 0; i < SWITCHES; i++) {
      const start = performance.now();
      await deployer.rollback(id, i % 2 === 0 ? 2 : 1);
      switches.push(performance.now() - start);
    }
    const p = (k: string) => percentile(times.get(k)!, 50);
    const [r50, d50, t50, wr50, wd50] = [p('routed'), p('direct'), p('relay'), p('work routed'), p('work direct')];
    const s50 = p('routed node:http');
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
        metric: 'local deployer: the same through a plain TCP relay process (no HTTP), p50',
        value: t50,
        unit: 'ms',
        floor: d50,
        ratio: t50 / d50,
        note: 'the floor of any proxy in its own process: one more loopback hop each way',
      },
      {
        bench: 'deployers',
        metric: 'local deployer: the same, body sent chunked (the router’s node:http part), p50',
        value: s50,
        unit: 'ms',
        floor: d50,
        ratio: s50 / d50,
        note: 'what a request the fast path does not take costs (floor: a plain request straight to the model)',
      },
      {
        bench: 'deployers',
        metric: 'local deployer: the router’s own cost per prediction (p50 through it − p50 direct)',
        value: r50 - d50,
        unit: 'ms',
        note: `a fixed hop (relay alone: ${(t50 - d50).toFixed(2)} ms): within 1.2× for models taking ≥ ${Math.ceil((r50 - d50) / 0.2)} ms`,
      },
      {
        bench: 'deployers',
        metric: `local deployer: prediction through the router, model computing ${WORK_MS} ms, p50`,
        value: wr50,
        unit: 'ms',
        floor: wd50,
        ratio: wr50 / wd50,
        note: 'aim ≤ 1.2×; floor: the same model process called directly',
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
    chunkedAgent.destroy();
    relay?.kill();
    await deployer.delete(id);
    await deployer.close?.();
    await rm(stateDir, { recursive: true, force: true });
  }
}
