// What one GraphQL request over HTTP costs the control plane's CPU, the resolver's own work aside: a control plane as
// its own process (`atelier start`, as S4 runs it), sent `requests` POSTs of one small operation one at a time by a
// keep-alive client in this process, and the process's CPU (utime + stime from /proc) over them divided by their number.
// The idle process's own CPU (its loops) is measured first and taken off. The operation is the viewer's id (its session remembered, no statement) unless REQUEST_CPU_QUERY says otherwise.
// `npx tsx bench/peers/request-cpu.ts [requests] [rounds]`; REQUEST_CPU_PROFILE=dir writes the control plane's CPU
// profile there (`--cpu-prof-interval 100`) for bench/peers/cpu-profile-table.ts.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startControlPlaneProcess } from '../../test/harness/control-plane-process';
import { startNats } from '../../test/harness/nats';
import { freePort } from '../../test/harness/ports';
import { startPostgres } from '../../test/harness/postgres';
import { percentile, round, runWhenMain } from '../lib';
import { keepAliveClient } from './keep-alive-client';

const TOKEN = 'atl_request-cpu-bench-token';
const TICK_MS = 1000 / 100; // /proc's clock ticks (USER_HZ is 100 on Linux)

async function cpuMs(pid: number): Promise<number> {
  const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * TICK_MS; // utime, stime (fields 14 and 15 of the line)
}

export interface RequestCpu {
  /** The control plane's CPU a request, µs, each round. */
  cpuUsPerRequest: number[];
  /** The idle process's CPU, ms a second (taken off each round's). */
  idleMsPerSecond: number;
  /** Each round's p50 request, ms (client sent → answer read). */
  p50Ms: number[];
}

export async function requestCpu(requests: number, rounds: number, query: string): Promise<RequestCpu> {
  const [pg, nats] = await Promise.all([startPostgres(), startNats()]);
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'atelier-request-cpu-'));
  const profileDir = process.env.REQUEST_CPU_PROFILE;
  const plane = await startControlPlaneProcess(
    { PORT: String(await freePort()), DATABASE_URL: pg.url, NATS_URL: nats.url, ATELIER_DATA_DIR: dataDir, ATELIER_ADMIN_TOKEN: TOKEN },
    // node's profiler flags go before the script (NODE_OPTIONS may not carry them): `sh -c` puts them there.
    profileDir ? { wrap: ['sh', '-c', `exec "$0" --cpu-prof --cpu-prof-dir=${profileDir} --cpu-prof-interval=100 "$@"`] } : {},
  );
  const client = keepAliveClient(plane.url, TOKEN);
  const body = JSON.stringify({ query, variables: {} });
  const result: RequestCpu = { cpuUsPerRequest: [], p50Ms: [], idleMsPerSecond: 0 };
  try {
    const first = await client.post(body);
    if (first.status !== 200 || first.text.includes('"errors"')) throw new Error(`${first.status} ${first.text}`);
    for (let i = 0; i < 3000; i++) await client.post(body); // warm: JIT (the first thousands run slower), caches, the token's session
    // What the idle process spends (its loops' ticks), taken off each round's CPU by the round's length.
    const idleFrom = await cpuMs(plane.pid);
    const idleWall = performance.now();
    await new Promise((resolve) => setTimeout(resolve, 3000));
    result.idleMsPerSecond = ((await cpuMs(plane.pid)) - idleFrom) / ((performance.now() - idleWall) / 1000);
    for (let round = 0; round < rounds; round++) {
      const samples: number[] = [];
      const before = await cpuMs(plane.pid);
      const began = performance.now();
      for (let i = 0; i < requests; i++) {
        const t0 = performance.now();
        await client.post(body);
        samples.push(performance.now() - t0);
      }
      const after = await cpuMs(plane.pid);
      const idle = (result.idleMsPerSecond * (performance.now() - began)) / 1000;
      result.cpuUsPerRequest.push(((after - before - idle) * 1000) / requests);
      result.p50Ms.push(percentile(samples, 50));
    }
    return result;
  } finally {
    await plane.kill('SIGTERM');
    await nats.stop();
    await pg.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

runWhenMain(import.meta.url, async () => {
  const requests = Number(process.argv[2] ?? 5000);
  const rounds = Number(process.argv[3] ?? 3);
  const query = process.env.REQUEST_CPU_QUERY ?? 'query { viewer { id } }';
  const r = await requestCpu(requests, rounds, query);
  console.log(
    `${query}: ${requests} requests × ${rounds}: control plane CPU µs a request ${r.cpuUsPerRequest.map((n) => round(n, 1)).join(', ')}; p50 ms ${r.p50Ms.map((n) => round(n, 3)).join(', ')}; idle ${round(r.idleMsPerSecond, 1)} ms/s (load ${os.loadavg()[0]!.toFixed(2)})`,
  );
  return [];
});
