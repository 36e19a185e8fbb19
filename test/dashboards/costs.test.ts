// The Costs page in Chromium (playwright-core): after real runs, a team member opens it from the main navigation and
// sees its team's execution time and GPU time by team, workflow and model (another team's rows absent); someone in
// no team sees the empty state.
import { existsSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ensureDashboardsBuilt } from '../../dashboards/ensure-built';
import { startTestApp, type TestApp } from '../harness/app';
import { releaseBrowser, sharedBrowser } from '../harness/browser';
import type { ApiClient } from '../harness/client';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

let t: TestApp;
let browser: Browser;
const tokens: Record<string, string> = {};

async function runToEnd(client: ApiClient, workflow: string): Promise<void> {
  const { startRun } = await client.gql(`mutation ($w: String!) { startRun(workflow: $w) { id } }`, { w: workflow });
  const deadline = Date.now() + 30_000;
  for (;;) {
    const { run } = await t.api.gql(`query ($id: ID!) { run(id: $id) { status } }`, { id: startRun.id });
    if (run.status === 'SUCCEEDED') return;
    if (Date.now() > deadline) throw new Error(`run of ${workflow} did not succeed: ${run.status}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`No Chromium at ${CHROMIUM}: install Debian's (apt-get install -y chromium) or set CHROMIUM_PATH.`);
  [, t] = await Promise.all([ensureDashboardsBuilt({ quiet: true }), startTestApp()]);
  await t.publishFixture('echo');
  const [alice, bob, vera] = await Promise.all([t.user('alice'), t.user('bob'), t.user('vera')]);
  await t.team('vision', ['alice']);
  await t.team('nlp', ['bob']);
  const create = (c: ApiClient, name: string) =>
    c.gql(`mutation ($s: String!) { createWorkflow(spec: $s) { created } }`, {
      s: JSON.stringify({ name, tasks: [{ name: 'score', module: 'test/echo', parameters: { message: name } }] }),
    });
  await create(alice, 'vision-scoring');
  await create(bob, 'nlp-scoring');
  await Promise.all([runToEnd(alice, 'vision-scoring'), runToEnd(bob, 'nlp-scoring')]);
  tokens.alice = alice.token;
  tokens.vera = vera.token;
  browser = await sharedBrowser();
}, 120_000);
afterAll(async () => {
  await releaseBrowser(browser);
  await t?.stop();
});

async function as(who: string): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  await context.addInitScript((token) => localStorage.setItem('atelier-token', token), tokens[who]!);
  return context.newPage();
}

it('shows a team member its team’s costs by team, workflow and model, opened from the navigation', async () => {
  const page = await as('alice');
  await page.goto(`${t.url}/runs`);
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Costs' }).click();
  await page.waitForURL(/\/costs$/);
  await page.getByRole('heading', { name: 'Costs', level: 1 }).waitFor();
  const team = page.getByRole('table', { name: 'Costs by team' });
  await team.locator('tr[data-group="vision"]').waitFor();
  expect(await team.locator('tr[data-group]').count()).toBe(1);
  const workflow = page.getByRole('table', { name: 'Costs by workflow' });
  expect(await workflow.locator('tr[data-group]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-group')))).toEqual(['vision-scoring']);
  await expect(workflow.getByRole('link', { name: 'vision-scoring' }).getAttribute('href')).resolves.toBe('/workflows/vision-scoring');
  expect(await page.getByTestId('execution-time').textContent()).toMatch(/\d/);
  // an echo task asks for no GPUs
  expect(await page.getByTestId('gpu-time').textContent()).toMatch(/^0(\.0)? s$/);
});

it('shows someone in no team the empty state', async () => {
  const page = await as('vera');
  await page.goto(`${t.url}/costs?range=24h`);
  await page.getByText('No executed tasks of your teams in the last 24 hours').waitFor();
});
