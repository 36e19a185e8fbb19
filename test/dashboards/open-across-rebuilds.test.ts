// A dashboards tab left open while the dashboards are rebuilt (an upgrade) keeps working: its lazily loaded pages come
// from the build it was opened on, which the control plane still answers after two rebuilds; once that build is
// pruned, the failed import reloads the tab onto the build in use, at the address it was going to. Before, two
// rebuilds removed the tab's build and its next lazy page 404ed into "This page could not be loaded".
// The builds are the real one (vite) copied with every hashed name changed, as a rebuild after an edit writes them.
import { existsSync } from 'node:fs';
import { cp, mkdtemp, readdir, readFile, realpath, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type Builder, buildDashboards, dashboardsDir, ensureDashboardsBuilt } from '../../dashboards/ensure-built';
import { startTestApp, type TestApp } from '../harness/app';
import { CHROMIUM, releaseBrowser, sharedBrowser } from '../harness/browser';

let t: TestApp;
let browser: Browser;
let own = '';

/** The real build with each hashed name's hash ending in `tag` instead, and every reference to it rewritten. */
function rebuildOf(tag: string): Builder {
  return async (outDir) => {
    await cp(await realpath(path.join(dashboardsDir, 'dist')), outDir, { recursive: true });
    const assets = path.join(outDir, 'assets');
    const renamed = new Map<string, string>();
    for (const name of await readdir(assets)) {
      const m = /^(.*-[\w-]{6})[\w-]{2}(\.(?:js|css|woff2?|svg|png))$/.exec(name);
      if (m) renamed.set(name, `${m[1]}${tag}${m[2]}`);
    }
    for (const name of await readdir(assets)) {
      const to = renamed.get(name) ?? renamed.get(name.replace(/\.map$/, ''))?.concat('.map');
      if (to) await rename(path.join(assets, name), path.join(assets, to));
    }
    for (const file of [path.join(outDir, 'index.html'), ...(await readdir(assets)).map((name) => path.join(assets, name))]) {
      let text = await readFile(file, 'utf8');
      for (const [from, to] of renamed) text = text.replaceAll(from, to);
      await writeFile(file, text);
    }
  };
}

/** The page's entry script: one per build. */
const entryOf = (page: Page) => page.locator('script[type="module"][src]').getAttribute('src');
/** The entry script of the build the control plane serves now. */
const servedEntry = async () => /<script type="module"[^>]* src="([^"]+)"/.exec(await (await fetch(`${t.url}/runs`)).text())?.[1];

/** A client-side navigation, as a link in the app makes. */
const goInApp = (page: Page, to: string) =>
  page.evaluate((href) => {
    history.pushState(null, '', href);
    dispatchEvent(new PopStateEvent('popstate'));
  }, to);

async function openTab(): Promise<Page> {
  const context = await browser.newContext();
  await context.addInitScript((token) => localStorage.setItem('atelier-token', token), t.app.adminToken);
  const page = await context.newPage();
  await page.goto(`${t.url}/runs`);
  await page.locator('nav[aria-label="Main"]').waitFor();
  return page;
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`No Chromium at ${CHROMIUM}: install Debian's (apt-get install -y chromium) or set CHROMIUM_PATH.`);
  own = await mkdtemp(path.join(os.tmpdir(), 'atelier-rebuilds-'));
  await ensureDashboardsBuilt({ quiet: true });
  await buildDashboards({ dir: own, build: rebuildOf('_1') });
  [t, browser] = await Promise.all([startTestApp({}, { dashboardsDir: own }), sharedBrowser()]);
}, 120_000);
afterAll(async () => {
  await releaseBrowser(browser);
  await t?.stop();
  await rm(own, { recursive: true, force: true });
});

it('loads a lazy page of the build a tab was opened on after two rebuilds', async () => {
  const page = await openTab();
  const opened = await entryOf(page);
  await buildDashboards({ dir: own, build: rebuildOf('_2') });
  await buildDashboards({ dir: own, build: rebuildOf('_3') });
  expect(await servedEntry()).not.toBe(opened);
  await goInApp(page, '/compare');
  await page.getByRole('heading', { name: 'Compare runs' }).waitFor();
  // its own build's chunk, from the tab's own build (no reload)
  expect(await entryOf(page)).toBe(opened);
  await page.context().close();
});

it('reloads a tab whose build was pruned onto the build in use, at the page it was going to', async () => {
  const page = await openTab();
  const opened = await entryOf(page);
  await page.evaluate(() => Object.assign(window, { openedBefore: true }));
  await buildDashboards({ dir: own, build: rebuildOf('_4'), retain: { builds: 1, graceMs: 0 } });
  expect(await readdir(path.join(own, 'dist.builds'))).toHaveLength(1);
  const current = await servedEntry();
  expect(current).not.toBe(opened);
  await goInApp(page, '/workflows/nope');
  await page.getByText('No workflow named “nope”').waitFor();
  expect(await entryOf(page)).toBe(current);
  expect(await page.evaluate(() => 'openedBefore' in window)).toBe(false);
  expect(new URL(page.url()).pathname).toBe('/workflows/nope');
  await page.context().close();
});

it('reloads only once when the build in use lacks the page too, then shows the error', async () => {
  const page = await openTab();
  // a chunk missing from every build (one deleted by hand): the reload cannot help
  const current = await realpath(path.join(own, 'dist'));
  const chunk = (await readdir(path.join(current, 'assets'))).find((name) => /^monitors-detail-.*\.js$/.test(name));
  await rm(path.join(current, 'assets', chunk!));
  let loads = 0;
  page.on('load', () => loads++);
  await goInApp(page, '/monitors/gone');
  await page.getByText('This page could not be loaded').waitFor();
  expect(loads).toBe(1);
  expect(new URL(page.url()).pathname).toBe('/monitors/gone');
  await page.context().close();
});
