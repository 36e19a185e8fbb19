// 1,000 graphql-ws subscribers to one run's events, against the control plane as its own process (as deployed):
// each event's delivery latency (the logging mutation sent → the event at each subscriber), its p50 and p99 over
// every subscriber and event, and the control plane's resident memory (peak, from /proc). The floor, measured in
// the same run: the same events watched by ONE subscriber, so the ratio is what the other 999 cost.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { startControlPlaneProcess } from '../test/harness/control-plane-process';
import { freePort } from '../test/harness/ports';
import { percentile, type Row } from './lib';

export interface Infra {
  pgUrl: string;
  natsUrl: string;
}

const TOKEN = 'bench-subscribers-admin-token-0123456789';

/** A dashboard's run page selection (the shape most subscribers share). */
const QUERY = /* GraphQL */ `
  subscription ($runId: ID!) {
    runEvents(runId: $runId) {
      __typename
      ... on RunStatusEvent { runStatus seq }
      ... on TaskStatusEvent { node status attempt seq }
      ... on TaskMetricEvent { node step metrics seq }
    }
  }
`;

async function gql(url: string, query: string, variables: Record<string, unknown> = {}) {
  const response = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as { data?: Record<string, { id: string }>; errors?: unknown };
  if (body.errors) throw new Error(JSON.stringify(body.errors));
  return body.data!;
}

async function rssOf(pid: number): Promise<{ rss: number; peak: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string) => Number(new RegExp(`${name}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
  return { rss: kb('VmRSS') / 1024, peak: kb('VmHWM') / 1024 };
}

/** `subscribers` clients on their own sockets watch one external run while `events` metric points are logged into it. */
async function measure(url: string, pid: number, subscribers: number, events: number, gapMs: number) {
  const { startExternalRun } = await gql(url, 'mutation { startExternalRun(name: "bench-subscribers") { id } }');
  const runId = startExternalRun!.id;
  const sentAt = new Map<number, number>();
  const latencies: number[] = [];
  let received = 0;
  let settle: () => void = () => undefined;
  const clients = Array.from({ length: subscribers }, () =>
    createClient({
      url: `${url.replace(/^http/, 'ws')}/graphql`,
      webSocketImpl: WebSocket,
      connectionParams: { authorization: `Bearer ${TOKEN}` },
      retryAttempts: 0,
    }),
  );
  let ready = 0;
  let allReady!: () => void;
  const readyAll = new Promise<void>((resolve) => (allReady = resolve));
  const stops = clients.map((client) => {
    let first = true;
    return client.subscribe<{ runEvents: { __typename: string; step?: number } }>(
      { query: QUERY, variables: { runId } },
      {
        next: ({ data }) => {
          const e = data?.runEvents;
          if (first) {
            first = false;
            if (++ready === subscribers) allReady();
          }
          if (e?.__typename !== 'TaskMetricEvent' || e.step === undefined) return;
          const sent = sentAt.get(e.step);
          if (sent !== undefined) latencies.push(performance.now() - sent);
          if (++received === subscribers * events) settle();
        },
        error: (error) => console.error('subscriber error', error),
        complete: () => undefined,
      },
    );
  });
  await readyAll;
  const before = await rssOf(pid);
  const done = new Promise<void>((resolve) => (settle = resolve));
  const started = performance.now();
  for (let step = 1; step <= events; step++) {
    sentAt.set(step, performance.now());
    await gql(url, 'mutation ($runId: ID!, $step: Int!) { logRunMetrics(runId: $runId, points: [{ name: "loss", value: 0.5, step: $step }]) { id } }', {
      runId,
      step,
    });
    await new Promise((resolve) => setTimeout(resolve, gapMs));
  }
  await Promise.race([done, new Promise((resolve) => setTimeout(resolve, 60_000))]);
  const wall = performance.now() - started;
  const after = await rssOf(pid);
  for (const stop of stops) stop();
  await Promise.all(clients.map((client) => client.dispose()));
  await gql(url, 'mutation ($runId: ID!) { endExternalRun(runId: $runId) { id } }', { runId });
  return {
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    lost: subscribers * events - latencies.length,
    rssBefore: before.rss,
    peak: after.peak,
    wall,
  };
}

export async function subscribersBench(infra: Infra, options: { subscribers?: number; events?: number; gapMs?: number } = {}): Promise<Row[]> {
  const subscribers = options.subscribers ?? 1000;
  const events = options.events ?? 100;
  const gapMs = options.gapMs ?? 20;
  const dir = await mkdtemp(path.join(os.tmpdir(), 'atelier-bench-subscribers-'));
  const cp = await startControlPlaneProcess({
    PORT: String(await freePort()),
    DATABASE_URL: infra.pgUrl,
    NATS_URL: infra.natsUrl,
    ATELIER_DATA_DIR: dir,
    ATELIER_ADMIN_TOKEN: TOKEN,
    ATELIER_MAX_SUBSCRIPTIONS_PER_TOKEN: String(subscribers + 10),
    ATELIER_MAX_SUBSCRIPTIONS: String(subscribers + 10),
    ATELIER_LOG_LEVEL: 'silent',
  });
  try {
    const floor = await measure(cp.url, cp.pid, 1, events, gapMs);
    const many = await measure(cp.url, cp.pid, subscribers, events, gapMs);
    const note = `${events} events ${gapMs} ms apart; ${many.lost} not received`;
    return [
      {
        bench: 'subscribers',
        metric: `${subscribers} graphql-ws subscribers, delivery p50`,
        value: many.p50,
        unit: 'ms',
        floor: floor.p50,
        ratio: many.p50 / floor.p50,
        note,
      },
      {
        bench: 'subscribers',
        metric: `${subscribers} graphql-ws subscribers, delivery p99`,
        value: many.p99,
        unit: 'ms',
        floor: floor.p99,
        ratio: many.p99 / floor.p99,
      },
      {
        bench: 'subscribers',
        metric: `${subscribers} graphql-ws subscribers, control-plane peak RSS`,
        value: many.peak,
        unit: 'MB',
        floor: floor.peak,
        ratio: many.peak / floor.peak,
        note: `RSS with all subscribed, before the events: ${Math.round(many.rssBefore)} MB; floor: one subscriber`,
      },
    ];
  } finally {
    await cp.kill('SIGTERM');
    await rm(dir, { recursive: true, force: true });
  }
}
