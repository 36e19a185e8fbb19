// N graphql-ws subscribers of one token on `executorsChanged` (the executors page and every open run page with a
// waiting task listen to it), and K changes one after another, each a host touched as host-changes.ts does: how long
// each change takes to reach every subscriber (p50, p99), and how many GraphQL executions the server ran per change
// (server/http/shared-results.ts: once for all who share a document and access, instead of once per subscriber).
// Delivery is timed from the moment the coalesced batch is handed to the listeners (a listener added before the
// subscribers' own), so the touch's gathering window (live-changes.ts's BATCH_MS) is left out. In-process: the
// subscribers' clients share the CPU and the event loop, so compare it only against a base run in turns.
import { sharingStats } from '../server/http/shared-results';
import { startTestApp } from '../test/harness/app';
import { openSubscribers } from './fanout-subscribers';
import { percentile, type Row } from './lib';

const QUERY = /* GraphQL */ `
  subscription {
    executorsChanged {
      listening
      hostIds
      hotClusters
      pools
      at
    }
  }
`;

export async function executorsFanoutBench(infra: { pgUrl?: string } = {}, options: { subscribers?: number; changes?: number } = {}): Promise<Row[]> {
  const subscribers = options.subscribers ?? 200;
  const changes = options.changes ?? 40;
  const t = await startTestApp({
    ...(infra.pgUrl ? { DATABASE_URL: infra.pgUrl } : {}),
    // no host of its own: its announcements would be changes too
    ATELIER_EMBEDDED_EXECUTOR: 'false',
    ATELIER_MAX_SUBSCRIPTIONS_PER_TOKEN: String(subscribers + 10),
  });
  const { liveChanges } = t.app.services;
  // When each change's batch reached the listeners: this one was added first, so it hears it first.
  const flushedAt = new Map<string, number>();
  const unlisten = liveChanges.listen('executors', (keys) => {
    for (const key of keys) flushedAt.set(key.replace(/^host:/, ''), performance.now());
  });
  const latencies: number[] = [];
  let seen = 0;
  let listening = 0;
  const subs = openSubscribers<{ executorsChanged: { listening: boolean; hostIds: string[] } }>(t.url, t.app.adminToken, subscribers, QUERY, (data) => {
    const now = performance.now();
    const e = data?.executorsChanged;
    if (e?.listening) listening++;
    for (const host of e?.hostIds ?? []) {
      const flushed = flushedAt.get(host);
      if (flushed === undefined) continue;
      latencies.push(now - flushed);
      seen++;
    }
  });
  const { until } = subs;
  await until(() => listening === subscribers);
  const executions0 = sharingStats.executions;
  const deliveries0 = sharingStats.deliveries;
  const cpu0 = process.cpuUsage();
  for (let i = 1; i <= changes; i++) {
    liveChanges.touch('executors', [`host:bench-${i}`]);
    await until(() => seen >= i * subscribers);
  }
  const cpu = process.cpuUsage(cpu0);
  const executions = sharingStats.executions - executions0;
  const deliveries = sharingStats.deliveries - deliveries0;
  unlisten();
  await subs.dispose();
  await t.stop();
  const note = `${subscribers} subscribers of one token, ${changes} changes one after another`;
  return [
    { bench: 'executors-fanout', metric: 'delivery p50 (batch handed out → subscriber)', value: percentile(latencies, 50), unit: 'ms', note },
    { bench: 'executors-fanout', metric: 'delivery p99 (batch handed out → subscriber)', value: percentile(latencies, 99), unit: 'ms', note },
    { bench: 'executors-fanout', metric: 'GraphQL executions per change', value: executions / changes, unit: 'executions', note },
    { bench: 'executors-fanout', metric: 'results handed out per change', value: deliveries / changes, unit: 'results', note },
    { bench: 'executors-fanout', metric: 'CPU per change (server and clients)', value: (cpu.user + cpu.system) / 1000 / changes, unit: 'ms', note },
  ];
}
