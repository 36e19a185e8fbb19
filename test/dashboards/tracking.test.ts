// Experiment tracking in the dashboards (Chromium via playwright-core): the runs list's search box (a malformed
// filter's column shown inline), a metric column picked and sorted, a tag chip that adds a filter, and runs
// selected into the compare view (overlaid curves, the param diff, the scatter), which is still there after a reload.
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ensureDashboardsBuilt } from '../../dashboards/ensure-built';
import { andClause, fieldName, parseColumns, quoted } from '../../dashboards/src/lib/run-filter';
import { startTestApp, type TestApp } from '../harness/app';
import { releaseBrowser, sharedBrowser } from '../harness/browser';
import { seedRun } from '../tracking/seed';
import { screenshot } from './screenshots';

const artifacts = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'artifacts');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

let t: TestApp;
let browser: Browser;
let page: Page;
const ids: Record<string, string> = {};

/** A falling loss and a rising accuracy over 5 steps, ending at `acc`. */
const curve = (acc: number): [string, number, number][] =>
  [0, 1, 2, 3, 4].flatMap((s): [string, number, number][] => [
    ['loss', 1 - (acc * (s + 1)) / 6, s],
    ['acc', acc - (4 - s) * 0.05, s],
  ]);

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`No Chromium at ${CHROMIUM}: install Debian's (apt-get install -y chromium) or set CHROMIUM_PATH.`);
  [, t] = await Promise.all([ensureDashboardsBuilt({ quiet: true }), startTestApp(), mkdir(artifacts, { recursive: true })]);
  const db = t.app.services.db;
  const runs = [
    ['base', 0.7, 0.1, 'v1'],
    ['wide', 0.92, 0.01, 'v2'],
    ['deep', 0.85, 0.001, 'v2'],
    ['tiny', 0.6, 0.1, 'v1'],
  ] as const;
  for (const [name, acc, lr, dataset] of runs)
    ids[name] = await seedRun(db, { name, experiment: 'dash-exp', parameters: { lr, opt: 'adam' }, tags: { dataset }, tasks: [curve(acc)] });
  browser = await sharedBrowser();
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  await context.addInitScript((token) => localStorage.setItem('atelier-token', token), t.app.adminToken);
  page = await context.newPage();
}, 120_000);
afterAll(async () => {
  await releaseBrowser(browser);
  await t?.stop();
});

const rowNames = () => page.locator('tbody tr[data-run-id] td:nth-child(2) a').allTextContents();
const search = async (filter: string) => {
  await page.getByLabel('Search', { exact: true }).fill(filter);
  await page.getByRole('button', { name: 'Search', exact: true }).click();
};

it('searches, shows a malformed filter’s error, sorts by a picked metric column and filters by a tag chip', async () => {
  await page.goto(`${t.url}/runs`);
  await page.locator('tbody tr[data-run-id]').nth(3).waitFor();

  // pick the acc metric column from the shown runs' metrics
  await page.getByText('Columns', { exact: true }).click();
  await page.getByLabel('metrics.acc').check();
  await page.locator('td[data-column="metrics.acc"]').filter({ hasText: '0.92' }).waitFor();
  expect(new URL(page.url()).searchParams.get('cols')).toBe('metrics.acc');

  await search('metrics.acc > 0.8');
  await page.waitForFunction(() => document.querySelectorAll('tbody tr[data-run-id]').length === 2);
  expect((await rowNames()).sort()).toEqual(['deep', 'wide']);

  await search('metrics.acc >');
  const error = page.locator('.filter-error');
  await error.waitFor();
  expect(await error.textContent()).toMatch(/column 14: expected a number or a 'string'/);

  // back to the good search; then sort by the column (descending first, then ascending)
  await page.goBack();
  await page.waitForFunction(() => document.querySelectorAll('tbody tr[data-run-id]').length === 2);
  await search('');
  await page.locator('button.sort[data-column="metrics.acc"]').click();
  await page.waitForFunction(() => new URL(location.href).searchParams.get('order') === 'metrics.acc DESC');
  await expect.poll(rowNames).toEqual(['wide', 'deep', 'base', 'tiny']);
  await page.locator('button.sort[data-column="metrics.acc"]').click();
  await expect.poll(rowNames).toEqual(['tiny', 'base', 'deep', 'wide']);

  // a tag chip adds its clause to the filter
  await page.locator(`tr[data-run-id="${ids.base}"] button.chip`, { hasText: 'dataset=v1' }).click();
  await expect.poll(() => page.getByLabel('Search', { exact: true }).inputValue()).toBe("tags.dataset = 'v1'");
  await expect.poll(rowNames).toEqual(['tiny', 'base']);
  await screenshot(page, path.join(artifacts, 'tracking-runs.png'));
});

it('compares selected runs: overlaid curves, the param diff, the scatter, and again after a reload', async () => {
  await page.goto(`${t.url}/runs`);
  for (const name of ['base', 'wide', 'deep']) await page.locator(`input[data-select="${ids[name]}"]`).check();
  await page.getByRole('button', { name: 'Compare 3 runs' }).click();
  await page.waitForURL(/\/compare\?ids=/);

  for (const round of ['opened', 'reloaded']) {
    if (round === 'reloaded') await page.reload();
    await page.locator('figure[data-metric="acc"][data-runs="3"] canvas').waitFor();
    expect(await page.locator('figure[data-metric="loss"][data-runs="3"]').count()).toBe(1);
    // lr differs and shows; opt (adam everywhere) shows only with "all parameters"
    expect(await page.locator('.param-diff tr[data-param="lr"] td').allTextContents()).toEqual(['0.1', '0.01', '0.001']);
    expect(await page.locator('.param-diff tr[data-param="opt"]').count()).toBe(0);
    await page.getByLabel('Show all parameters').check();
    await page.locator('.param-diff tr[data-param="opt"]').waitFor();
    expect(await page.locator('.metric-summary tr[data-metric="acc"][data-which="last"] td').allTextContents()).toEqual(['0.7', '0.92', '0.85']);
    expect(await page.locator('figure.scatter[data-param="lr"][data-metric="acc"] circle').count()).toBe(3);
  }
  await screenshot(page, path.join(artifacts, 'tracking-compare.png'));

  // a metric or param in the address that none of these runs has: said, and the default plotted instead of nothing
  await page.goto(`${t.url}/compare?ids=${ids.base},${ids.wide}&metric=acu&param=learning_rate`);
  await page.locator('figure.scatter[data-param="lr"][data-metric="acc"] circle').first().waitFor();
  expect(await page.getByTestId('unknown-axis').textContent()).toBe(
    'No compared run has parameter learning_rate; showing lr. No compared run reports metric acu; showing acc.',
  );

  // an id that names no run, and one that is no id at all: listed as missing, the rest compared
  const unknown = '00000000-0000-4000-8000-000000000000';
  await page.goto(`${t.url}/compare?ids=${ids.tiny},${unknown},not-an-id`);
  await page.locator('figure[data-metric="acc"][data-runs="1"]').waitFor();
  const missing = await page.getByTestId('missing-runs').textContent();
  expect(missing).toContain(unknown);
  expect(missing).toContain('not-an-id');
});

it('writes the clauses a tag chip adds in the filter language, whatever the key and value', async () => {
  expect(`${fieldName('tags', 'data.set')} = ${quoted("it's")}`).toBe("tags.`data.set` = 'it''s'");
  expect(andClause("status = 'FAILED' or metrics.acc > 0.9", "tags.a = 'b'")).toBe("(status = 'FAILED' or metrics.acc > 0.9) and tags.a = 'b'");
  expect(andClause("tags.a = 'b'", "tags.a = 'b'")).toBe("tags.a = 'b'");
  expect(parseColumns('metrics.val.loss,params.lr,nonsense,params.lr')).toEqual([
    { kind: 'metrics', name: 'val.loss' },
    { kind: 'params', name: 'lr' },
  ]);
  // and the server reads such a clause: a run tagged with a dotted key and a quote in its value is found by it
  const id = await seedRun(t.app.services.db, { name: 'quoted', experiment: 'dash-exp', tags: { 'data.set': "it's" } });
  const { searchRuns } = await t.api.gql(`query ($f: String) { searchRuns(filter: $f) { edges { node { id } } } }`, {
    f: `${fieldName('tags', 'data.set')} = ${quoted("it's")}`,
  });
  expect(searchRuns.edges.map((e: { node: { id: string } }) => e.node.id)).toEqual([id]);
});
