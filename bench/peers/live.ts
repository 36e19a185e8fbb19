// The live side of the peers bench, Atelier alone: S3, startRun → the first progress event at a graphql-ws
// subscriber (a real `graphql-ws` client over a real WebSocket), and S4, one run's events delivered to 1,000
// graphql-ws subscribers by a control plane running as its own process (so its RSS is its own).
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { traceHop, traceNow } from '../../plugins/trace';
import { packDirectory } from '../../server/artifacts/archive';
import { apiClient, PUBLISH } from '../../test/harness/client';
import { startControlPlaneProcess } from '../../test/harness/control-plane-process';
import { startExecutorProcess } from '../../test/harness/executor-process';
import { freePort } from '../../test/harness/ports';
import { percentile } from '../lib';
import { type AtelierUnderTest, independent, noopModuleDir } from './atelier';
import { keepAliveClient } from './keep-alive-client';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** S3: `runs` one-task runs, one at a time; each sample is startRun sent → that run's first TaskProgressEvent received. */
export async function firstProgress(a: AtelierUnderTest, workflow: string, runs: number): Promise<{ p50: number; p99: number }> {
  const ws = createClient({
    url: `${a.t.url.replace(/^http/, 'ws')}/graphql`,
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${a.t.app.adminToken}` },
  });
  const waiters = new Map<string, () => void>();
  const progressed = new Set<string>();
  let subscribed!: () => void;
  const ready = new Promise<void>((r) => (subscribed = r));
  const off = ws.subscribe<{ allRunEvents?: { __typename: string; runId: string } }>(
    { query: 'subscription { allRunEvents { __typename ... on TaskProgressEvent { runId } ... on RunStatusEvent { runId } } }' },
    {
      next: ({ data }) => {
        const e = data?.allRunEvents;
        if (!e) return;
        subscribed();
        if (e.__typename !== 'TaskProgressEvent') return;
        traceHop('client: progress received', e.runId);
        progressed.add(e.runId);
        waiters.get(e.runId)?.();
      },
      error: (err) => console.error('S3 subscription error', err),
      complete: () => {},
    },
  );
  // startRun as the tests' client sends it, through node's HTTP client on a kept-alive socket (keep-alive-client.ts
  // says why); S3_CLIENT=fetch: through `fetch`, as before session 35.
  const api = process.env.S3_CLIENT === 'fetch' ? a.t.api : keepAliveClient(a.t.url, a.t.app.adminToken);
  try {
    // The subscription is live once it has seen an event: start runs until it has.
    for (let i = 0; i < 50; i++) {
      await api.gql(`mutation ($w: String!) { startRun(workflow: $w) { id } }`, { w: workflow });
      if (await Promise.race([ready.then(() => true), sleep(200).then(() => false)])) break;
    }
    const samples: number[] = [];
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      const sent = traceNow();
      const { startRun } = await api.gql<{ startRun: { id: string } }>(`mutation ($w: String!) { startRun(workflow: $w) { id } }`, { w: workflow });
      const id = startRun.id;
      traceHop('client: startRun sent', id, sent);
      traceHop('client: startRun answered', id);
      if (!progressed.has(id)) await new Promise<void>((resolve) => waiters.set(id, resolve));
      samples.push(performance.now() - t0);
      waiters.delete(id);
    }
    return { p50: percentile(samples, 50), p99: percentile(samples, 99) };
  } finally {
    off();
    await ws.dispose();
  }
}

export interface FanOutResult {
  subscribers: number;
  events: number;
  /** Events every subscriber received (a server may coalesce progress for a subscriber that fell behind). */
  eventsToAll: number;
  deliveries: number;
  /** Each delivery: its arrival − the event's own `at`, in ms (one machine, one wall clock). */
  p50: number;
  p99: number;
  /** Per event, the arrival at the last of the subscribers − its `at`; the p99 over events. */
  p99ToAll: number;
  /** When each live event happened, in ms after the first: S4's floor replays them at the same moments. */
  schedule: number[];
  rssIdleMiB: number;
  rssSubscribedMiB: number;
  rssPeakMiB: number;
}

async function rssMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? NaN) / 1024;
}

/**
 * S4: a run of `tasks` independent no-op tasks is started while no executor serves its pool, `subscribers`
 * graphql-ws clients subscribe to its runEvents and get their snapshot, then the executor host starts: every
 * event after that is measured at every subscriber, against its `at`.
 */
export async function fanOut(infra: { pgUrl: string; natsUrl: string }, subscribers: number, tasks: number): Promise<FanOutResult> {
  const token = 'atl_peers-bench-admin-token';
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'atelier-peers-s4-'));
  const plane = await startControlPlaneProcess({
    PORT: String(await freePort()),
    DATABASE_URL: infra.pgUrl,
    NATS_URL: infra.natsUrl,
    ATELIER_DATA_DIR: dataDir,
    ATELIER_ADMIN_TOKEN: token,
    // One token holds them all (a wall of dashboards): the per-token cap (100 by default) is lifted for this bench.
    ATELIER_MAX_SUBSCRIPTIONS_PER_TOKEN: String(subscribers + 10),
    ATELIER_MAX_SUBSCRIPTIONS: String(Math.max(5000, subscribers + 10)),
  });
  const clients: ReturnType<typeof createClient>[] = [];
  let executor: Awaited<ReturnType<typeof startExecutorProcess>> | undefined;
  let peak = 0;
  const sampler = setInterval(() => {
    rssMiB(plane.pid).then(
      (m) => (peak = Math.max(peak, m)),
      () => {},
    );
  }, 50);
  try {
    const api = apiClient(plane.url, token);
    const published = await api.upload(PUBLISH, {}, 'artifact', await packDirectory(noopModuleDir));
    if (published.errors) throw new Error(JSON.stringify(published.errors));
    await api.gql(`mutation ($s: String!) { createWorkflow(spec: $s) { created } }`, { s: JSON.stringify(independent('fan-out', tasks)) });
    const { startRun } = await api.gql(`mutation { startRun(workflow: "fan-out") { id } }`);
    const runId = startRun.id as string;
    const rssIdleMiB = await rssMiB(plane.pid);

    let liveFrom = Number.POSITIVE_INFINITY;
    const arrivals = new Map<number, number[]>(); // seq → each subscriber's latency
    const happened = new Map<number, number>(); // seq → its `at`
    let snapshots = 0;
    const failures: string[] = [];
    let completed = 0;
    let allSnapshots!: () => void;
    const snapshotted = new Promise<void>((r) => (allSnapshots = r));
    let allCompleted!: () => void;
    const ended = new Promise<void>((r) => (allCompleted = r));
    const query = `subscription ($runId: ID!) { runEvents(runId: $runId) { __typename
      ... on RunStatusEvent { seq at } ... on TaskStatusEvent { seq at } ... on TaskProgressEvent { seq at } } }`;
    for (let i = 0; i < subscribers; i++) {
      const client = createClient({
        url: `${plane.url.replace(/^http/, 'ws')}/graphql`,
        webSocketImpl: WebSocket,
        connectionParams: { authorization: `Bearer ${token}` },
        retryAttempts: 0,
      });
      clients.push(client);
      let first = true;
      client.subscribe<{ runEvents: { __typename: string; seq?: number; at?: string } }>(
        { query, variables: { runId } },
        {
          next: ({ data, errors }) => {
            const arrived = Date.now();
            if (errors?.length) {
              failures.push(errors.map((e) => e.message).join('; '));
              return;
            }
            if (first) {
              first = false;
              if (++snapshots === subscribers) allSnapshots();
            }
            const e = data?.runEvents;
            if (!e?.at || e.seq === undefined) return;
            const at = Date.parse(e.at);
            if (at < liveFrom) return; // the snapshot, or an event from before the executor started
            let list = arrivals.get(e.seq);
            if (!list) arrivals.set(e.seq, (list = []));
            happened.set(e.seq, at);
            list.push(arrived - at);
          },
          error: (err) => {
            failures.push(err instanceof Error ? err.message : `socket closed ${(err as { code?: number }).code ?? JSON.stringify(err)}`);
            if (++completed === subscribers) allCompleted();
          },
          complete: () => {
            if (++completed === subscribers) allCompleted();
          },
        },
      );
    }
    await Promise.race([
      snapshotted,
      sleep(120_000).then(() =>
        Promise.reject(
          new Error(
            `${snapshots} of ${subscribers} subscribers had their snapshot after 120 s` +
              (failures.length ? `; ${failures.length} failed, e.g. ${failures[0]}` : '; none failed: a subscription is stuck') +
              `\ncontrol plane's errors:\n${plane
                .output()
                .split('\n')
                .filter((l) => /ERR|rror/.test(l))
                .slice(-40)
                .join('\n')}`,
          ),
        ),
      ),
    ]);
    const rssSubscribedMiB = await rssMiB(plane.pid);
    peak = rssSubscribedMiB;
    liveFrom = Date.now();
    executor = await startExecutorProcess(
      { NATS_URL: infra.natsUrl, ATELIER_URL: plane.url, ATELIER_TOKEN: token, ATELIER_DATA_DIR: `${dataDir}/executor` },
      ['noop'],
      ['--concurrency', '256'],
    );
    await Promise.race([ended, sleep(300_000).then(() => Promise.reject(new Error(`${completed} of ${subscribers} subscriptions completed after 300 s`)))]);
    const all = [...arrivals.values()].flat();
    const first = Math.min(...happened.values());
    const schedule = [...happened.values()].map((at) => at - first).sort((a, b) => a - b);
    const toAll = [...arrivals.values()].filter((l) => l.length === subscribers).map((l) => Math.max(...l));
    if (failures.length) throw new Error(`${failures.length} of ${subscribers} subscriptions failed, e.g. ${failures[0]}`);
    return {
      subscribers,
      events: arrivals.size,
      eventsToAll: toAll.length,
      deliveries: all.length,
      p50: percentile(all, 50),
      p99: percentile(all, 99),
      p99ToAll: percentile(toAll, 99),
      schedule,
      rssIdleMiB,
      rssSubscribedMiB,
      rssPeakMiB: Math.max(peak, rssSubscribedMiB),
    };
  } finally {
    clearInterval(sampler);
    await Promise.all(clients.map((c) => c.dispose()));
    await executor?.stop();
    await plane.kill('SIGTERM');
    await rm(dataDir, { recursive: true, force: true });
  }
}
