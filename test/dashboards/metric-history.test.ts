// The run page charts a finished run's stored metric history (not only what streamed while it was open): a run
// ends before the page opens, and its loss curve is there, and again after a reload. Chromium via playwright-core.
import { existsSync } from 'node:fs';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ensureDashboardsBuilt } from '../../dashboards/ensure-built';
import { startTestApp, type TestApp } from '../harness/app';
import { releaseBrowser, sharedBrowser } from '../harness/browser';
import { PUBLISH, RUN_EVENTS } from '../harness/client';
import { metricsModuleArchive } from '../tracking/metric-module';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ended = (e: any) => e.runEvents.__typename === 'RunStatusEvent' && ['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(e.runEvents.runStatus);

let t: TestApp;
let browser: Browser;
let runId: string;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`No Chromium at ${CHROMIUM}: install Debian's (apt-get install -y chromium) or set CHROMIUM_PATH.`);
  [, t] = await Promise.all([ensureDashboardsBuilt({ quiet: true }), startTestApp()]);
  expect((await t.api.upload(PUBLISH, { tags: ['latest'] }, 'artifact', await metricsModuleArchive())).errors).toBeUndefined();
  await t.createWorkflow({ name: 'charted', tasks: [{ name: 'train', module: 'test/metrics', parameters: { count: 50, special: true } }] });
  const { startRun } = await t.api.gql(`mutation { startRun(workflow: "charted") { id } }`);
  runId = startRun.id;
  await t.api.subscribe<any>(RUN_EVENTS, { runId }, ended);
  browser = await sharedBrowser();
}, 120_000);
afterAll(async () => {
  await releaseBrowser(browser);
  await t?.stop();
});

it('charts a finished run’s stored points, and again after a reload', async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  await context.addInitScript((token) => localStorage.setItem('atelier-token', token), t.app.adminToken);
  const page = await context.newPage();
  await page.goto(`${t.url}/runs/${runId}?task=train&tab=metrics`);
  const caption = page.locator('figure[data-metric="loss"] figcaption');
  for (const round of ['opened', 'reloaded']) {
    if (round === 'reloaded') await page.reload();
    await caption.filter({ hasText: '50 points' }).waitFor();
    expect(await caption.textContent()).toMatch(/latest 0\.02000 at step 49/);
    // A series of NaN and ±Infinity draws its finite points only; it still has a chart.
    expect(await page.locator('figure[data-metric="odd"] figcaption').textContent()).toMatch(/2 points/);
    expect(await page.locator('figure[data-metric="loss"] canvas').count()).toBe(1);
  }
  await context.close();
});
