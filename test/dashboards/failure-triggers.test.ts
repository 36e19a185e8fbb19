// A failure trigger on the workflow page, in Chromium against a real control plane: listed with its kind, and its
// firing names the run that failed (linked, with why it failed) beside the run it started.
import { existsSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ensureDashboardsBuilt } from '../../dashboards/ensure-built';
import { startTestApp, type TestApp } from '../harness/app';
import { releaseBrowser, sharedBrowser } from '../harness/browser';
import { CREATE_TRIGGER, decided, until } from '../triggers/world';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

let t: TestApp;
let browser: Browser;
let page: Page;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`No Chromium at ${CHROMIUM}: install Debian's (apt-get install -y chromium) or set CHROMIUM_PATH.`);
  [, t] = await Promise.all([ensureDashboardsBuilt({ quiet: true }), startTestApp()]);
  await Promise.all([t.publishFixture('echo'), t.publishFixture('fail')]);
  await t.createWorkflow({ name: 'breaks', tasks: [{ name: 'boom', module: 'test/fail' }] });
  await t.createWorkflow({ name: 'pager', tasks: [{ name: 'page', module: 'test/echo', pool: 'parked', parameters: { message: 'page' } }] });
  browser = await sharedBrowser();
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 }, locale: 'en-GB' });
  await context.addInitScript((token) => localStorage.setItem('atelier-token', token), t.app.adminToken);
  page = await context.newPage();
}, 120_000);

afterAll(async () => {
  await releaseBrowser(browser);
  await t?.stop();
});

it('lists a RUN_FAILED trigger, its firing naming the failed run (linked, with its reason) and the run it started', async () => {
  await t.api.gql(CREATE_TRIGGER, { input: { workflow: 'pager', name: 'page-on-breaks', kind: 'RUN_FAILED', source: 'breaks' } });
  const failed = (await t.api.gql(`mutation { startRun(workflow: "breaks") { id } }`)).startRun.id as string;
  await until('the run to fail', async () => (await t.api.gql(`query ($id: ID!) { run(id: $id) { status } }`, { id: failed })).run.status === 'FAILED');
  const [firing] = await decided(t, 'page-on-breaks', 1);
  await page.goto(`${t.url}/workflows/pager`);
  const item = page.locator('[data-trigger="page-on-breaks"]');
  await item.locator('.chip', { hasText: 'run failed' }).waitFor();
  const row = item.locator('tr[data-firing="STARTED"]');
  const about = row.locator(`[data-signal-run="${failed}"]`);
  await about.waitFor();
  expect(await about.locator('a').getAttribute('href')).toBe(`/runs/${failed}`);
  expect(await about.textContent()).toMatch(/failed.*boom/);
  const started = row.locator(`a[href="/runs/${firing.run.id}"]`);
  expect(await started.count()).toBe(1);
});
