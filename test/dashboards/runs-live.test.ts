// The runs list as a daily user keeps it open, in Chromium against a real control plane: a run listed while it waits
// in the queue moves to running and to its end in place, its duration counting while it runs and kept once it ends
// (the row's own start time is empty: it was read while queued, so the live feed's times must fill it); and a run
// that ended while the live connection was down shows as ended once it is back (the feed replays nothing).
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Browser, Page, WebSocketRoute } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ensureDashboardsBuilt } from '../../dashboards/ensure-built';
import { executorsFromEnv } from '../../server/executors';
import { startTestApp, type TestApp } from '../harness/app';
import { releaseBrowser, sharedBrowser } from '../harness/browser';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

let t: TestApp;
let browser: Browser;
let page: Page;
/** The page's live connections (through Playwright's WebSocket routing), and whether new ones are refused. */
const sockets = new Set<WebSocketRoute>();
let offline = false;
/** A folder a sandboxed module may read, and the file in it whose creation ends the `hold` workflow's task. */
let scratch: string;
let released: string;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`No Chromium at ${CHROMIUM}: install Debian's (apt-get install -y chromium) or set CHROMIUM_PATH.`);
  // One task at a time on the local pool: a second run waits, queued, until the first is done.
  scratch = await mkdtemp(path.join(os.tmpdir(), 'atelier-runs-live-'));
  await chmod(scratch, 0o755); // a sandboxed module may run as nobody
  released = path.join(scratch, 'released');
  const executors = await executorsFromEnv({ ...process.env, ATELIER_MODULE_READONLY_PATHS: scratch });
  [, t] = await Promise.all([ensureDashboardsBuilt({ quiet: true }), startTestApp({ ATELIER_POOL_LIMITS: 'local=1' }, { executors })]);
  await t.publishFixture('sleep');
  // runs until the test creates the file its run names (in scratch)
  await t.createWorkflow({
    name: 'nap',
    parameters: { release: {} },
    tasks: [{ name: 'nap', module: 'test/sleep', parameters: { ms: 0, until: '${params.release}' } }],
  });
  // until the test lets it end: a run started behind it is still queued when the page has read it, however loaded the machine
  await t.createWorkflow({ name: 'hold', tasks: [{ name: 'hold', module: 'test/sleep', parameters: { ms: 0, until: released } }] });
  browser = await sharedBrowser();
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  await context.addInitScript((token) => localStorage.setItem('atelier-token', token), t.app.adminToken);
  page = await context.newPage();
  await page.routeWebSocket(/\/graphql$/, (ws) => {
    if (offline) return void ws.close({ code: 3000, reason: 'offline' });
    ws.connectToServer();
    sockets.add(ws);
  });
}, 120_000);

afterAll(async () => {
  await releaseBrowser(browser);
  await t?.stop();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

const start = async (workflow: string, parameters?: object) =>
  (await t.api.gql(`mutation ($w: String!, $p: JSON) { startRun(workflow: $w, parameters: $p) { id } }`, { w: workflow, p: parameters ?? null })).startRun
    .id as string;
/** Starts a `nap` run, and what ends it. */
const startNap = async (name: string) => {
  const release = path.join(scratch, name);
  return { id: await start('nap', { release }), release: () => writeFile(release, '') };
};
const statusOf = async (id: string) => (await t.api.gql(`query ($id: ID!) { run(id: $id) { status } }`, { id })).run.status as string;

it('times a run listed while queued as it runs and once it has ended', async () => {
  await page.goto(`${t.url}/runs`);
  await page.getByText('No runs yet').waitFor();
  const first = await start('hold');
  const { id: second, release } = await startNap('second');
  const row = page.locator(`tr[data-run-id="${second}"]`);
  const duration = row.locator('td.num');
  await row.getByText('Queued').waitFor();
  expect((await duration.textContent())?.trim()).toBe('—');
  await writeFile(released, ''); // the page has read the row while queued: the first run may end now

  await row.getByText('Running').waitFor({ timeout: 30_000 });
  // the row the list read had no start time; the feed's start counts from here on
  await expect.poll(async () => (await duration.textContent())?.trim(), { timeout: 5_000 }).toMatch(/^\d/);
  await release();

  await row.getByText('Succeeded').waitFor({ timeout: 30_000 });
  const ended = (await duration.textContent())?.trim() ?? '';
  expect(ended).toMatch(/^\d/);
  await page.waitForTimeout(1_500);
  expect((await duration.textContent())?.trim(), 'an ended run’s duration stays').toBe(ended);
  await page.locator(`tr[data-run-id="${first}"]`).getByText('Succeeded').waitFor();
});

it('shows a run that ended while the live connection was down as ended once it is back', async () => {
  const { id, release } = await startNap('offline');
  const row = page.locator(`tr[data-run-id="${id}"]`);
  await row.getByText('Running').waitFor({ timeout: 30_000 });
  offline = true;
  for (const ws of sockets) await ws.close({ code: 3000, reason: 'offline' });
  sockets.clear();
  await page.locator('.live-connecting').waitFor();
  await release(); // it ends while the page is offline
  await expect.poll(() => statusOf(id), { timeout: 30_000 }).toBe('SUCCEEDED');
  offline = false;
  await page.locator('.live-live').waitFor({ timeout: 30_000 });
  await row.getByText('Succeeded').waitFor({ timeout: 10_000 });
});
