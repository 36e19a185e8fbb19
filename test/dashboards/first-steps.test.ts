// The dashboards as a newcomer meets them, in Chromium (playwright-core) against a fresh control plane: an address
// that names nothing (a link to a deleted monitor, a run id mistyped) says there is no such thing, with a link on,
// instead of loading forever or offering "Try again".
import { existsSync } from 'node:fs';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ensureDashboardsBuilt } from '../../dashboards/ensure-built';
import { startTestApp, type TestApp } from '../harness/app';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

let t: TestApp;
let browser: Browser;
let page: Page;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`No Chromium at ${CHROMIUM}: install Debian's (apt-get install -y chromium) or set CHROMIUM_PATH.`);
  [, t] = await Promise.all([ensureDashboardsBuilt({ quiet: true }), startTestApp()]);
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--no-first-run'] });
  const context = await browser.newContext({ viewport: { width: 390, height: 844 } });
  await context.addInitScript((token) => localStorage.setItem('atelier-token', token), t.app.adminToken);
  page = await context.newPage();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await t?.stop();
});

it.each([
  ['/monitors/00000000-0000-0000-0000-000000000000', 'No such monitor that you may read', 'See your monitors', '/monitors'],
  ['/monitors/not-an-id', 'No such monitor that you may read', 'See your monitors', '/monitors'],
  ['/runs/00000000-0000-0000-0000-000000000000', 'No such run', 'See all runs', '/runs'],
  ['/runs/7e8c0963', 'No such run', 'See all runs', '/runs'],
  ['/alerts?alert=00000000-0000-0000-0000-000000000000', 'No such alert that you may read', 'See the open alerts', '/alerts'],
])('%s says there is no such thing, with a link on', async (address, title, link, href) => {
  await page.goto(`${t.url}${address}`);
  await page.getByRole('heading', { name: title }).waitFor({ timeout: 15_000 });
  await expect(page.getByRole('link', { name: link }).getAttribute('href')).resolves.toBe(href);
  expect(await page.getByRole('button', { name: 'Try again' }).count()).toBe(0);
});
