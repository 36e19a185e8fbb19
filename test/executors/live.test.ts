// `executorsChanged` over a real graphql-ws client, with a real executor host on the app's bus: a host announcing
// itself is a change, its beats with nothing new are not (coalesced where heartbeats are learned), a hot cluster
// created is one, and a host stopping is seen draining, then stale once it stays silent past
// ATELIER_HOST_STALE_SECONDS; tasks entering a pool's queue are one too. A token scoped away from executor hosts is
// refused. Subscribers sharing a token share each batch's execution (server/http/shared-results.ts).
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createLocalExecutor } from '../../executors/local';
import { createExecutorHost, type ExecutorHost } from '../../plugins/host';
import type { HostHeartbeat } from '../../plugins/protocol';
import { createExecutorRegistry } from '../../plugins/registry';
import { sharingStats } from '../../server/http/shared-results';
import { startTestApp, type TestApp } from '../harness/app';
import { apiClient } from '../harness/client';

const CHANGES = `subscription { executorsChanged { listening hostIds hotClusters pools } }`;
const HOSTS = `{ executorHosts { id name live draining } }`;

let t: TestApp;
let host: ExecutorHost | undefined;

beforeAll(async () => {
  // Stale after 3 s of silence: 1 s let a loaded CI run's late beat (the host beats every 50 ms) read as stale, then live
  // again, events the 'nothing new' check below does not expect.
  t = await startTestApp({ ATELIER_EMBEDDED_EXECUTOR: 'false', ATELIER_HOST_STALE_SECONDS: '3' });
});
afterAll(async () => {
  await host?.stop();
  await t?.stop();
});

/** A subscription's events as they come, and a way to wait for the first one from a given index that matches. */
function follow(client: ReturnType<typeof apiClient>) {
  const events: any[] = [];
  const waiters: (() => void)[] = [];
  let stop = false;
  const ended = client.subscribe(
    CHANGES,
    {},
    () => stop,
    (e: any) => {
      events.push(e.executorsChanged);
      for (const w of waiters.splice(0)) w();
    },
  );
  ended.catch(() => undefined);
  const waitFor = (from: number, match: (e: any) => boolean): Promise<number> =>
    new Promise((resolve, reject) => {
      const look = () => {
        const at = events.findIndex((e, i) => i >= from && match(e));
        if (at >= 0) resolve(at);
        else waiters.push(look);
      };
      ended.catch(reject);
      look();
    });
  return { events, waitFor, end: () => (stop = true) };
}

/** Resolves once `ok` holds (checked every 20 ms). */
const until = (ok: () => boolean) =>
  new Promise<void>((resolve) => {
    const check = setInterval(() => ok() && (clearInterval(check), resolve()), 20);
  });

it('tells a viewer when a host announces, changes, drains and goes stale, and not when it beats with nothing new', async () => {
  const vic = apiClient(t.url, (await t.user('vic', 'viewer')).token);
  const live = follow(vic);
  const beats: HostHeartbeat[] = [];
  const heard = await t.app.bus.subscribeControl('host-heartbeat', (b) => void beats.push(b));
  try {
    await live.waitFor(0, (e) => e.listening);
    host = createExecutorHost({
      bus: t.app.bus,
      registry: createExecutorRegistry([createLocalExecutor()]),
      pools: ['live'],
      hostName: 'live-node',
      announceMs: 50,
      artifacts: { fetch: (digest) => t.app.services.store.path(digest) },
      workRoot: path.join(t.dataDir, 'live-work'),
      warn: () => undefined,
    });
    await host.start();
    const announced = await live.waitFor(1, (e) => e.hostIds.length > 0);
    const { executorHosts } = await vic.gql(HOSTS);
    const id = executorHosts.find((h: any) => h.name === 'live-node').id;
    expect(live.events[announced].hostIds).toEqual([id]);

    // Five more beats saying the same: no event. Then a hot cluster: the next event is about it.
    const after = beats.length;
    await new Promise<void>((resolve) => {
      const check = setInterval(() => beats.length >= after + 5 && (clearInterval(check), resolve()), 20);
    });
    await t.api.gql(`mutation { createHotCluster(name: "warm-live", executor: "local", pool: "live") { name } }`);
    const cluster = await live.waitFor(announced + 1, (e) => e.hotClusters.includes('warm-live'));
    expect(live.events.slice(announced + 1, cluster).filter((e) => e.hostIds.length)).toEqual([]);

    // Stopping: it says it drains, then falls silent and goes stale. Read at each event about it until it is both: on a
    // loaded machine a beat can come later than ATELIER_HOST_STALE_SECONDS, and the host then reads stale for a moment
    // before its drain is heard (a CI run stopped there, at live: false, draining: false).
    const before = live.events.length;
    await host.stop();
    host = undefined;
    const seen: any[] = [];
    for (let from = before; !(seen.at(-1) && !seen.at(-1).live && seen.at(-1).draining); ) {
      from = (await live.waitFor(from, (e) => e.hostIds.includes(id))) + 1;
      seen.push((await vic.gql(HOSTS)).executorHosts.find((h: any) => h.id === id));
    }
    expect(seen.at(-1)).toMatchObject({ live: false, draining: true });
  } finally {
    // Ended whatever happened: the batch test below waits for every subscription to end.
    live.end();
    await heard.stop();
  }
}, 60_000);

it('tells a viewer when tasks enter a pool’s queue, so its waiting count can be read again', async () => {
  await t.publishFixture('echo');
  await t.createWorkflow({ name: 'nowhere', tasks: [{ name: 'only', module: 'test/echo', pool: 'nowhere' }] });
  const vic = apiClient(t.url, (await t.user('vic2', 'viewer')).token);
  const live = follow(vic);
  await live.waitFor(0, (e) => e.listening);
  await t.api.gql(`mutation { startRun(workflow: "nowhere") { id } }`);
  await live.waitFor(1, (e) => e.pools);
  const { executorPools } = await vic.gql(`{ executorPools { name queued } }`);
  expect(executorPools.find((p: any) => p.name === 'nowhere')).toEqual({ name: 'nowhere', queued: 1 });
  live.end();
});

it('executes each batch once for all the subscriptions of one access, once more for another', async () => {
  // The earlier tests' subscriptions end at their next event: one, then none left to count with ours.
  await t.api.gql(`mutation { createHotCluster(name: "flush-live", executor: "local", pool: "shared") { name } }`);
  await until(() => t.app.services.subscriptions.count() === 0);
  const wen = apiClient(t.url, (await t.user('wen', 'viewer')).token);
  const xia = apiClient(t.url, (await t.user('xia', 'viewer')).token);
  const subs = [follow(wen), follow(wen), follow(wen), follow(xia)];
  await Promise.all(subs.map((s) => s.waitFor(0, (e) => e.listening)));
  const before = { ...sharingStats };
  await t.api.gql(`mutation { createHotCluster(name: "shared-live", executor: "local", pool: "shared") { name } }`);
  await Promise.all(subs.map((s) => s.waitFor(1, (e) => e.hotClusters.includes('shared-live'))));
  // Every batch since the snapshot received by all four (a later one may still be on its way: waited for).
  const received = () => subs.map((s) => s.events.length - 1);
  await until(() => received().every((c) => c === received()[0]) && sharingStats.deliveries - before.deliveries === received()[0]! * 4);
  for (const s of subs.slice(1)) expect(s.events.slice(1)).toEqual(subs[0]!.events.slice(1));
  expect(sharingStats.executions - before.executions).toBe(2 * received()[0]!);
  for (const s of subs) s.end();
});

it('refuses a token whose scopes do not reach executor hosts', async () => {
  const { createServiceAccount } = await t.api.gql(`mutation { createServiceAccount(name: "runs-only", scopes: ["read:Run"]) { token } }`);
  const scoped = apiClient(t.url, createServiceAccount.token);
  await expect(scoped.subscribe(CHANGES, {}, () => true)).rejects.toThrow(/executor/i);
});
