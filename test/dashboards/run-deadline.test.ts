// The run page's time limit, in Chromium against a real control plane: an open run says when it ends by and in how
// long; once its deadline has passed, the page shows the run failed with the reason, live.
import { existsSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ensureDashboardsBuilt } from '../../dashboards/ensure-built';
import { startTestApp, type TestApp } from '../harness/app';
import { releaseBrowser, sharedBrowser } from '../harness/browser';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

let t: TestApp;
let browser: Browser;
let page: Page;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`No Chromium at ${CHROMIUM}: install Debian's (apt-get install -y chromium) or set CHROMIUM_PATH.`);
  [, t] = await Promise.all([ensureDashboardsBuilt({ quiet: true }), startTestApp()]);
  await t.publishFixture('echo');
  // A pool no host serves: the run stays open until its deadline.
  await t.createWorkflow({ name: 'waits', tasks: [{ name: 'stuck', module: 'test/echo', pool: 'nowhere', parameters: { message: 'waits' } }] });
  browser = await sharedBrowser();
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 }, locale: 'en-GB' });
  await context.addInitScript((token) => localStorage.setItem('atelier-token', token), t.app.adminToken);
  page = await context.newPage();
}, 120_000);

afterAll(async () => {
  await releaseBrowser(browser);
  await t?.stop();
});

const start = async (seconds: number) =>
  (await t.api.gql(`mutation ($s: Float) { startRun(workflow: "waits", timeoutSeconds: $s) { id } }`, { s: seconds })).startRun.id as string;

it('says when an open run ends by, and in how long', async () => {
  const id = await start(900);
  await page.goto(`${t.url}/runs/${id}`);
  const limit = page.locator('.run-time-limit dd');
  await limit.waitFor();
  await expect.poll(async () => (await limit.textContent())?.trim()).toMatch(/^900 s · ends by .+, in 1[45] minutes$/);
});

it('shows the run failed, with the reason, once its deadline has passed', async () => {
  const id = await start(1);
  await page.goto(`${t.url}/runs/${id}`);
  await page.locator('.run-time-limit').waitFor();
  await page.locator('.run-message', { hasText: 'ran past its time limit of 1 s' }).waitFor({ timeout: 30_000 });
  expect((await page.locator('.run-time-limit dd').textContent())?.trim()).toBe('1 s');
});

it('shows the deadline of a run admitted while its page is open, live (no reload)', async () => {
  // Its task runs once admitted (no task waits for a host, so the page has no reason of its own to fetch the run again).
  await t.publishFixture('sleep');
  await t.createWorkflow({
    name: 'one-at-a-time',
    concurrency: { maxActiveRuns: 1 },
    tasks: [{ name: 'nap', module: 'test/sleep', parameters: { ms: 120_000 } }],
  });
  const startOne = async () => (await t.api.gql(`mutation { startRun(workflow: "one-at-a-time", timeoutSeconds: 900) { id } }`)).startRun.id as string;
  const first = await startOne();
  const held = await startOne(); // behind maxActiveRuns: no deadline until admitted
  await page.goto(`${t.url}/runs/${held}`);
  const limit = page.locator('.run-time-limit dd');
  await expect.poll(async () => (await limit.textContent())?.trim()).toBe('900 s · counted from its admission');
  await t.api.gql(`mutation ($id: ID!) { cancelRun(id: $id) { id } }`, { id: first });
  await expect.poll(async () => (await limit.textContent())?.trim(), { timeout: 20_000 }).toMatch(/^900 s · ends by .+, in 1[45] minutes$/);
});
