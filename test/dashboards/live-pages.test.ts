// The deployments and executors pages follow live events instead of polling (Chromium via playwright-core, the
// embedded app with the real local deployer and a real executor host on its bus). Each page is opened with the
// fallback poll set to an hour (the `atelier-fallback-poll-ms` key); once it has read its list after its
// subscription's first event, every request for the list must follow an event the page received (its WebSocket
// frames) since the request before: a timer's request would not. A run's waiting reason follows the hosts the same
// way. A member of another team never sees the deployment; with the WebSocket down the page says so, asks every so
// often, and on reconnect shows what changed meanwhile. How often is the operator's (ATELIER_FALLBACK_POLL_MS, served
// with the page), unless the browser's key says otherwise.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { type Browser, chromium, type Page, type WebSocketRoute } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ensureDashboardsBuilt } from '../../dashboards/ensure-built';
import { createLocalExecutor } from '../../executors/local';
import { createExecutorHost, type ExecutorHost } from '../../plugins/host';
import { createExecutorRegistry } from '../../plugins/registry';
import { CREATE_DEPLOYMENT, endDeploymentWorld, irisVersion, startDeploymentApp, until } from '../deployments/setup';
import type { TestApp } from '../harness/app';
import type { ApiClient } from '../harness/client';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const HOUR_MS = '3600000';

let t: TestApp;
let browser: Browser;
let alice: ApiClient & { token: string };
let bob: ApiClient & { token: string };
let host: ExecutorHost | undefined;

/** What a page did, in order: its list queries (by operation name) and the subscription events it received. */
type Entry = { kind: 'query' | 'event'; name: string };

/** `pollMs`: this browser's `atelier-fallback-poll-ms` key (an hour unless given; null: none, the operator's setting holds). */
async function pageFor(token: string, options: { pollMs?: string | null; socket?: { blocked: boolean; open: Set<WebSocketRoute> } } = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  await context.addInitScript(
    ([tk, ms]) => {
      localStorage.setItem('atelier-token', tk!);
      if (ms !== null) localStorage.setItem('atelier-fallback-poll-ms', ms!);
    },
    [token, options.pollMs === undefined ? HOUR_MS : options.pollMs],
  );
  const page = await context.newPage();
  const log: Entry[] = [];
  page.on('request', (request) => {
    if (request.method() !== 'POST' || !request.url().endsWith('/graphql')) return;
    const name = (request.postDataJSON() as { operationName?: string } | null)?.operationName;
    if (name) log.push({ kind: 'query', name });
  });
  page.on('websocket', (ws) =>
    ws.on('framereceived', ({ payload }) => {
      const message = JSON.parse(String(payload));
      if (message.type === 'next') for (const name of Object.keys(message.payload?.data ?? {})) log.push({ kind: 'event', name });
    }),
  );
  const socket = options.socket;
  if (socket)
    await page.routeWebSocket(/\/graphql$/, (ws) => {
      if (socket.blocked) return void ws.close();
      ws.connectToServer();
      socket.open.add(ws);
    });
  return { page, log };
}

/** Waits until the page read `query` after the first `event` it received (the subscription's LISTENING); returns where its log is then. */
async function settled(log: Entry[], query: string, event: string): Promise<number> {
  await until(`${query} read after ${event} listened`, async () => {
    const first = log.findIndex((e) => e.kind === 'event' && e.name === event);
    return first >= 0 && log.slice(first).some((e) => e.kind === 'query' && e.name === query);
  });
  return log.length;
}

/** The `query` requests from `mark` on with none of `events` received since the request before (or the mark): a timer's. */
function unprompted(log: Entry[], mark: number, query: string, ...events: string[]): Entry[] {
  const found: Entry[] = [];
  let prompted = false;
  for (const e of log.slice(mark)) {
    if (e.kind === 'event' && events.includes(e.name)) prompted = true;
    else if (e.kind === 'query' && e.name === query) {
      if (!prompted) found.push(e);
      prompted = false;
    }
  }
  return found;
}

const live = (page: Page) => page.locator('.live-live').waitFor();

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`No Chromium at ${CHROMIUM}: install Debian's (apt-get install -y chromium) or set CHROMIUM_PATH.`);
  [, t] = await Promise.all([
    ensureDashboardsBuilt({ quiet: true }),
    startDeploymentApp(undefined, { ATELIER_HOST_STALE_SECONDS: '1', ATELIER_EMBEDDED_EXECUTOR: 'false', ATELIER_FALLBACK_POLL_MS: '2000' }),
  ]);
  [alice, bob] = await Promise.all([t.user('alice'), t.user('bob')]);
  await t.team('ml', ['alice'], ['ml']);
  await t.team('cv', ['bob'], ['cv']);
  await irisVersion(t, 1);
  await irisVersion(t, 11, undefined, 'cv');
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--no-first-run'] });
}, 120_000);

afterAll(async () => {
  await host?.stop();
  await browser?.close();
  if (t) await endDeploymentWorld(t);
});

it('shows a deployment created, turning ready and deleted as it happens, to its team only, with no poll', async () => {
  const a = await pageFor(alice.token);
  const b = await pageFor(bob.token);
  await Promise.all([a.page.goto(`${t.url}/deployments`), b.page.goto(`${t.url}/deployments`)]);
  await Promise.all([a.page.getByText('No deployments yet').waitFor(), b.page.getByText('No deployments yet').waitFor(), live(a.page), live(b.page)]);
  const [markA, markB] = await Promise.all([settled(a.log, 'Deployments', 'deploymentsChanged'), settled(b.log, 'Deployments', 'deploymentsChanged')]);

  await alice.gql(CREATE_DEPLOYMENT, { i: { name: 'live-list', model: 'ml/iris/1', domain: 'experimentation' } });
  await a.page.locator('tr[data-deployment="live-list"] [data-ready="true"]').waitFor();
  await bob.gql(CREATE_DEPLOYMENT, { i: { name: 'bob-own', model: 'cv/iris/11', domain: 'experimentation' } });
  await b.page.locator('tr[data-deployment="bob-own"]').waitFor();
  expect(await b.page.locator('tr[data-deployment="live-list"]').count()).toBe(0);

  await alice.gql(`mutation { deleteDeployment(id: "live-list") }`);
  await a.page.locator('tr[data-deployment="live-list"]').waitFor({ state: 'detached' });
  expect(await a.page.locator('tr[data-deployment="bob-own"]').count()).toBe(0);
  expect(unprompted(a.log, markA, 'Deployments', 'deploymentsChanged')).toEqual([]);
  expect(unprompted(b.log, markB, 'Deployments', 'deploymentsChanged')).toEqual([]);
  await bob.gql(`mutation { deleteDeployment(id: "bob-own") }`);
  await Promise.all([a.page.context().close(), b.page.context().close()]);
}, 90_000);

it('shows an executor host announced, then stale once silent, with no poll', async () => {
  const a = await pageFor(alice.token);
  await a.page.goto(`${t.url}/executors`);
  await Promise.all([a.page.getByText(/No executor host has sent a heartbeat/).waitFor(), live(a.page)]);
  const mark = await settled(a.log, 'Executors', 'executorsChanged');
  host = createExecutorHost({
    bus: t.app.bus,
    registry: createExecutorRegistry([createLocalExecutor()]),
    pools: ['live'],
    hostName: 'live-node',
    announceMs: 200,
    artifacts: { fetch: (digest) => t.app.services.store.path(digest) },
    workRoot: path.join(t.dataDir, 'live-work'),
    warn: () => undefined,
  });
  await host.start();
  const row = a.page.locator('[data-host="live-node"]');
  await row.locator('[data-host-state="live"]').waitFor();
  await host.stop();
  host = undefined;
  await row.locator('[data-host-state="stale"]').waitFor();
  expect(unprompted(a.log, mark, 'Executors', 'executorsChanged')).toEqual([]);
  await a.page.context().close();
}, 60_000);

it('says why a task waits as executor hosts change, with no poll', async () => {
  await t.publishFixture('gpu-echo');
  await t.createWorkflow({ name: 'needs-gpus', tasks: [{ name: 'train', module: 'test/gpu-echo' }] });
  const { startRun } = await t.api.gql(`mutation { startRun(workflow: "needs-gpus") { id } }`);
  const a = await pageFor(t.app.adminToken);
  await a.page.goto(`${t.url}/runs/${startRun.id}?task=train`);
  const node = a.page.locator('[data-node="train"]');
  await node.getByText(/waiting: no executor host serves pool gpu/).waitFor();
  await live(a.page);
  const mark = await settled(a.log, 'RunPage', 'executorsChanged');
  // A host of pool gpu with one GPU beats (a stand-in: it takes no task): the reason changes.
  const startedAt = new Date().toISOString();
  const beat = () =>
    t.app.bus.publishControl('host-heartbeat', {
      hostId: 'stand-in-gpu-small',
      host: 'gpu-small',
      executors: ['local'],
      pools: ['gpu'],
      capacity: 1,
      running: 0,
      gpus: 1,
      hotClusters: [],
      hotClusterExecutors: [],
      version: 'test',
      startedAt,
      at: new Date().toISOString(),
    });
  await beat();
  const beating = setInterval(() => void beat(), 200);
  try {
    await node.getByText(/waiting: needs 2 GPUs; the live hosts of pool gpu have at most 1/).waitFor();
  } finally {
    clearInterval(beating);
  }
  expect(unprompted(a.log, mark, 'RunPage', 'executorsChanged', 'runEvents')).toEqual([]);
  await t.api.gql(`mutation ($id: ID!) { cancelRun(id: $id) { id } }`, { id: startRun.id });
  await a.page.context().close();
}, 60_000);

it('says when live updates are down, and shows what changed meanwhile once they are back', async () => {
  const socket = { blocked: false, open: new Set<WebSocketRoute>() };
  const a = await pageFor(alice.token, { socket });
  await a.page.goto(`${t.url}/deployments`);
  await live(a.page);
  socket.blocked = true;
  for (const ws of socket.open) await ws.close();
  socket.open.clear();
  await a.page.locator('[data-live-down]').waitFor();
  await alice.gql(CREATE_DEPLOYMENT, { i: { name: 'while-down', model: 'ml/iris/1', domain: 'experimentation' } });
  socket.blocked = false;
  await a.page.locator('tr[data-deployment="while-down"]').waitFor();
  await a.page.locator('[data-live-down]').waitFor({ state: 'detached' });
  await a.page.context().close();
}, 60_000);

it('asks every so often while live updates are down', async () => {
  const socket = { blocked: true, open: new Set<WebSocketRoute>() };
  const a = await pageFor(alice.token, { socket, pollMs: '300' });
  await a.page.goto(`${t.url}/deployments`);
  await a.page.locator('[data-live-down]').waitFor();
  await alice.gql(`mutation { deleteDeployment(id: "while-down") }`);
  await a.page.locator('tr[data-deployment="while-down"]').waitFor({ state: 'detached' });
  await a.page.context().close();
}, 60_000);

it('asks as often as the operator set while live updates are down, unless the browser’s own key says otherwise', async () => {
  const socket = { blocked: true, open: new Set<WebSocketRoute>() };
  const a = await pageFor(alice.token, { socket, pollMs: null });
  await a.page.goto(`${t.url}/deployments`);
  await expect(a.page.locator('[data-live-down]').textContent()).resolves.toMatch(/asks again every 2 s/);
  // It asks again by itself: a deployment created meanwhile shows up with no live event (the socket is blocked).
  await alice.gql(CREATE_DEPLOYMENT, { i: { name: 'operator-poll', model: 'ml/iris/1', domain: 'experimentation' } });
  await a.page.locator('tr[data-deployment="operator-poll"]').waitFor();
  const own = await pageFor(alice.token, { socket, pollMs: HOUR_MS });
  await own.page.goto(`${t.url}/deployments`);
  await expect(own.page.locator('[data-live-down]').textContent()).resolves.toMatch(/asks again every 3600 s/);
  await Promise.all([a.page.context().close(), own.page.context().close()]);
  await alice.gql(`mutation { deleteDeployment(id: "operator-poll") }`);
}, 60_000);
