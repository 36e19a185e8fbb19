// The runs list in Chromium stays live however its feed (allRunEvents: live only, no snapshot, no resume) is broken:
// when the subscription ends with SUBSCRIBER_TOO_SLOW (it fell behind and missed events), or the live connection
// drops and comes back, the page reads the list anew and listens again. Before, an end left the list silently stale
// (a run that finished meanwhile showed RUNNING until a reload), and a reconnect lost what came while it was down.
// The page's socket goes through playwright's WebSocket route to the real server, so the test can hold back what
// the server sends: a browser's own buffers absorb megabytes, more than a test can make the server fall behind by
// (test/chaos/slow-subscriber.test.ts proves the server's SUBSCRIBER_TOO_SLOW over a real socket).
import { existsSync } from 'node:fs';
import type { Browser, Page, WebSocketRoute } from 'playwright-core';
import { afterAll, beforeAll, it } from 'vitest';
import { ensureDashboardsBuilt } from '../../dashboards/ensure-built';
import { createNoopExecutor } from '../../executors/noop';
import { defineExecutor, succeeded } from '../../plugins/sdk';
import { startTestApp, type TestApp } from '../harness/app';
import { releaseBrowser, sharedBrowser } from '../harness/browser';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

let t: TestApp;
let browser: Browser;
/** Per run id, what lets its task finish. */
const finish = new Map<string, () => void>();

// The noop executor, except that a task runs until the test lets it finish.
const noop = createNoopExecutor();
const gated = defineExecutor({
  ...noop,
  async wait(_handle, task) {
    await new Promise<void>((resolve) => finish.set(task.runId, resolve));
    return succeeded();
  },
});

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`No Chromium at ${CHROMIUM}: install Debian's (apt-get install -y chromium) or set CHROMIUM_PATH.`);
  [, t] = await Promise.all([ensureDashboardsBuilt({ quiet: true }), startTestApp({}, { executors: [gated] })]);
  await t.publishFixture('sleep');
  await t.createWorkflow({ name: 'held', tasks: [{ name: 'only', module: 'test/sleep', executor: 'noop', parameters: { ms: 0 } }] });
  browser = await sharedBrowser();
}, 120_000);
afterAll(async () => {
  for (const release of finish.values()) release();
  await releaseBrowser(browser);
  await t?.stop();
});

/** The runs page as the admin, its graphql-ws socket relayed to the server by `relay`. */
async function runsPage(relay: (ws: WebSocketRoute) => void): Promise<Page> {
  await listening(0); // the page before this one has gone
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  await context.addInitScript((token) => localStorage.setItem('atelier-token', token), t.app.adminToken);
  const page = await context.newPage();
  await page.routeWebSocket(/\/graphql$/, relay);
  await page.goto(`${t.url}/runs`);
  return page;
}

/** A run of `held`, running (its task waits for `finish`). */
async function runningRun(): Promise<string> {
  const { startRun } = await t.api.gql('mutation { startRun(workflow: "held") { id } }');
  const id = startRun.id as string;
  for (let i = 0; !finish.has(id); i++) {
    if (i > 1500) throw new Error(`run ${id} did not start`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return id;
}

async function succeededRun(id: string) {
  finish.get(id)!();
  for (let i = 0; ; i++) {
    const { run } = await t.api.gql('query ($id: ID!) { run(id: $id) { status } }', { id });
    if (run.status === 'SUCCEEDED') return;
    if (i > 1500) throw new Error(`run ${id} did not succeed: ${run.status}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Resolves once `count` live feeds listen on the server (a run started earlier would be missed by the last one). */
async function listening(count = 1) {
  for (let i = 0; t.app.services.feed.listenerCount() !== count; i++) {
    if (i > 1500) throw new Error(`${t.app.services.feed.listenerCount()} live feeds listen, not ${count}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const rowStatus = (page: Page, id: string, status: string) =>
  page.locator(`tbody tr[data-run-id="${id}"] [data-status="${status}"]`).waitFor({ timeout: 15_000 });

it('reads the list anew and listens again when its live feed ends with SUBSCRIBER_TOO_SLOW', async () => {
  let holding = false;
  let feedId: string | undefined;
  let ended: string | undefined;
  let page!: WebSocketRoute;
  let server!: WebSocketRoute;
  const browserPage = await runsPage((ws) => {
    page = ws;
    server = ws.connectToServer();
    ws.onMessage((message) => {
      const parsed = JSON.parse(String(message));
      if (parsed.type === 'subscribe' && /allRunEvents/.test(parsed.payload?.query ?? '')) feedId = parsed.id;
      // The server ended that one itself (below): the page's own end of it is news to nobody.
      if (parsed.type === 'complete' && parsed.id === ended) return;
      server.send(message);
    });
    // What the server sends while `holding` never reaches the page: the events a too slow subscriber misses.
    server.onMessage((message) => {
      if (!holding) ws.send(message);
    });
  });
  await listening();
  const id = await runningRun();
  await rowStatus(browserPage, id, 'RUNNING');
  while (!feedId) await new Promise((r) => setTimeout(r, 20));

  holding = true;
  await succeededRun(id);
  // The server's answer to a subscriber that fell behind: its feed ends there, and the page is told to subscribe again.
  ended = feedId;
  server.send(JSON.stringify({ type: 'complete', id: feedId }));
  await listening(0);
  page.send(
    JSON.stringify({
      type: 'error',
      id: feedId,
      payload: [{ message: 'This subscription fell more than 10000 events behind: subscribe again.', extensions: { code: 'SUBSCRIBER_TOO_SLOW' } }],
    }),
  );
  holding = false;
  await rowStatus(browserPage, id, 'SUCCEEDED');
  // And it is live again: a run started now appears, and its end shows in place.
  await listening();
  const next = await runningRun();
  await rowStatus(browserPage, next, 'RUNNING');
  await succeededRun(next);
  await rowStatus(browserPage, next, 'SUCCEEDED');
  await browserPage.context().close();
}, 60_000);

it('reads the list anew when its live connection comes back after a loss', async () => {
  let down = false;
  let current: { page: WebSocketRoute; server: WebSocketRoute } | undefined;
  const browserPage = await runsPage((ws) => {
    // While `down`, the server cannot be reached: the page's client keeps trying.
    if (down) return void ws.close({ code: 1012 });
    const server = ws.connectToServer();
    ws.onMessage((message) => server.send(message));
    server.onMessage((message) => ws.send(message));
    current = { page: ws, server };
  });
  await listening();
  const id = await runningRun();
  await rowStatus(browserPage, id, 'RUNNING');
  while (!current) await new Promise((r) => setTimeout(r, 20));

  down = true;
  await Promise.all([current.page.close({ code: 1012 }), current.server.close()]);
  await succeededRun(id);
  down = false;
  // graphql-ws reconnects and subscribes again by itself; what came meanwhile is read with the list.
  await rowStatus(browserPage, id, 'SUCCEEDED');
  await browserPage.context().close();
}, 60_000);

it('shows a run that started between the list being read and its live feed listening', async () => {
  // Before, the list was read once, as the feed was subscribed: a run that started in between was never in the list
  // and, its events having passed before the feed listened, appeared only once it changed again (or on a reload).
  const earlier = await runningRun();
  await succeededRun(earlier);
  let held: string[] | undefined = [];
  let server!: WebSocketRoute;
  const browserPage = await runsPage((ws) => {
    server = ws.connectToServer();
    ws.onMessage((message) => {
      const parsed = JSON.parse(String(message));
      // The feed's subscribe is held back until the test lets it through.
      if (held && parsed.type === 'subscribe' && /allRunEvents/.test(parsed.payload?.query ?? '')) held.push(String(message));
      else server.send(message);
    });
    server.onMessage((message) => ws.send(message));
  });
  await rowStatus(browserPage, earlier, 'SUCCEEDED'); // the list has been read
  while (!held?.length) await new Promise((r) => setTimeout(r, 20));
  const id = await runningRun();
  const waiting = held;
  held = undefined;
  for (const message of waiting) server.send(message);
  await listening();
  await rowStatus(browserPage, id, 'RUNNING');
  await succeededRun(id);
  await rowStatus(browserPage, id, 'SUCCEEDED');
  await browserPage.context().close();
}, 60_000);
