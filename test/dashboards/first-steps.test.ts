// The dashboards as a newcomer meets them, in Chromium (playwright-core) against a fresh control plane, on a phone's
// 390 px: an address that names nothing (a link to a deleted monitor, a run id mistyped) says there is no such
// thing, with a link on, instead of loading forever or offering "Try again"; a failed run says why in one click,
// and its graph's zoom buttons hide nothing of the card's title.
import { existsSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureDashboardsBuilt } from '../../dashboards/ensure-built';
import { startTestApp, type TestApp } from '../harness/app';
import { releaseBrowser, sharedBrowser } from '../harness/browser';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

let t: TestApp;
let browser: Browser;
let page: Page;
let failedRun = '';

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`No Chromium at ${CHROMIUM}: install Debian's (apt-get install -y chromium) or set CHROMIUM_PATH.`);
  [, t] = await Promise.all([ensureDashboardsBuilt({ quiet: true }), startTestApp()]);
  browser = await sharedBrowser();
  const context = await browser.newContext({ viewport: { width: 390, height: 844 } });
  await context.addInitScript((token) => localStorage.setItem('atelier-token', token), t.app.adminToken);
  page = await context.newPage();
}, 120_000);

afterAll(async () => {
  await releaseBrowser(browser);
  await t?.stop();
});

it('points a first start’s empty module and workflow lists to the repository’s example, commands as the README runs them', async () => {
  await page.goto(`${t.url}/modules`);
  await page.getByRole('heading', { name: 'No modules published yet' }).waitFor();
  await page.getByText('npx atelier module push examples/iris/prepare', { exact: true }).waitFor();
  await page.goto(`${t.url}/workflows`);
  await page.getByText('npx atelier workflow create examples/iris/workflow.yaml', { exact: true }).waitFor();
});

it('says on the webhooks page, before any team exists, that webhooks belong to a team and how to make one', async () => {
  await page.goto(`${t.url}/webhooks`);
  await page.getByRole('heading', { name: 'No teams yet' }).waitFor();
  await page.getByText('npx atelier team create NAME', { exact: true }).waitFor();
});

describe('a failed run', () => {
  beforeAll(async () => {
    await Promise.all([t.publishFixture('echo'), t.publishFixture('fail')]);
    await t.createWorkflow({
      name: 'first-failure',
      tasks: [
        { name: 'prepare', module: 'test/echo', parameters: { message: 'hi' } },
        { name: 'boom', module: 'test/fail', dependsOn: ['prepare'] },
      ],
    });
    failedRun = (await t.api.gql(`mutation { startRun(workflow: "first-failure") { id } }`)).startRun.id;
    for (let i = 0; i < 300; i++) {
      const { run } = await t.api.gql(`query ($id: ID!) { run(id: $id) { status } }`, { id: failedRun });
      if (run.status === 'FAILED') break;
      await new Promise((r) => setTimeout(r, 100));
    }
  }, 120_000);

  // The page's heading (level 1) where the address names nothing; the alert's, under the Alerts page's own heading.
  it.each([
    ['/monitors/00000000-0000-0000-0000-000000000000', 'No such monitor that you may read', 'See your monitors', '/monitors', 1],
    ['/monitors/not-an-id', 'No such monitor that you may read', 'See your monitors', '/monitors', 1],
    ['/runs/00000000-0000-0000-0000-000000000000', 'No such run', 'See all runs', '/runs', 1],
    ['/runs/7e8c0963', 'No such run', 'See all runs', '/runs', 1],
    ['/models/nobody/nothing', 'No model named “nobody/nothing”', 'See all models', '/models', 1],
    ['/nowhere', 'There is no page here', 'Go to the runs', '/runs', 1],
    ['/alerts?alert=00000000-0000-0000-0000-000000000000', 'No such alert that you may read', 'See the open alerts', '/alerts', 2],
  ])('%s says there is no such thing, with a link on', async (address, title, link, href, level) => {
    await page.goto(`${t.url}${address}`);
    await page.getByRole('heading', { name: title, level }).waitFor({ timeout: 15_000 });
    expect(await page.getByRole('heading', { level: 1 }).count()).toBe(1);
    await expect(page.getByRole('link', { name: link }).getAttribute('href')).resolves.toBe(href);
    expect(await page.getByRole('button', { name: 'Try again' }).count()).toBe(0);
  });

  it('says on a workflow without triggers the command that adds one, not an API mutation', async () => {
    await page.goto(`${t.url}/workflows/first-failure`);
    await page.getByText('npx atelier trigger create first-failure NAME --on …', { exact: true }).waitFor();
  });

  it('says why a failed run failed in one click, the error in view', async () => {
    await page.goto(`${t.url}/runs/${failedRun}`);
    await page.getByRole('button', { name: 'See why boom failed' }).click();
    const panel = page.locator('.task-panel');
    await panel.getByRole('heading', { name: /Task boom/ }).waitFor();
    const error = panel.getByText(/something went badly wrong/).first();
    await error.waitFor();
    const box = await error.boundingBox();
    expect(box && box.y >= 0 && box.y + box.height <= 844).toBe(true);
    await panel.getByRole('tab', { name: 'Logs' }).click();
    await panel.getByText('about to fail').waitFor();
  });

  it.each([390, 1280])('keeps the run graph’s zoom buttons clear of the card title at %i px', async (width) => {
    await page.setViewportSize({ width, height: 844 });
    await page.goto(`${t.url}/runs/${failedRun}`);
    const title = page.getByRole('heading', { name: /^Tasks/ });
    const zoom = page.getByRole('group', { name: 'Zoom the graph' });
    await zoom.waitFor();
    const [a, b] = [(await title.boundingBox())!, (await zoom.boundingBox())!];
    // the title's text, not its box (a block as wide as the card): its last character's right edge
    const textRight = await title.evaluate((h) => {
      const range = document.createRange();
      range.selectNodeContents(h);
      return Math.max(...[...range.getClientRects()].map((r) => r.right));
    });
    const overlaps = textRight > b.x && a.y < b.y + b.height && b.y < a.y + a.height;
    expect(overlaps, `title text ends at ${textRight}, zoom buttons at ${JSON.stringify(b)}`).toBe(false);
    await page.setViewportSize({ width: 390, height: 844 });
  });

  it('signs in with the token npm start prints, kept for the browser’s other tabs as the sign-in says', async () => {
    const context = await browser.newContext({ viewport: { width: 390, height: 844 } });
    try {
      const first = await context.newPage();
      await first.goto(`${t.url}/workflows`);
      const help = await first.locator('#token-help').textContent();
      expect(help).toMatch(/npm start prints the admin token; it is also in \.atelier\/admin-token/);
      expect(help).toMatch(/kept in this browser, for its other tabs too/);
      await first.getByLabel('Token').fill(`  ${t.app.adminToken}\n`);
      await first.getByRole('button', { name: 'Sign in' }).click();
      await first.getByRole('heading', { name: 'Workflows', level: 1 }).waitFor();
      const second = await context.newPage();
      await second.goto(`${t.url}/modules`);
      await second.getByRole('heading', { name: 'Modules', level: 1 }).waitFor();
    } finally {
      await context.close();
    }
  });

  it('counts one run and one point in the singular when a single run is compared', async () => {
    await page.goto(`${t.url}/compare?ids=${failedRun}`);
    await page.getByRole('heading', { name: 'Metrics' }).waitFor();
    await page
      .getByText(/· 1 run$/)
      .first()
      .waitFor();
    expect(await page.locator('main').textContent()).not.toMatch(/\b1 (runs|points)\b/);
    await page.goto(`${t.url}/runs`);
    await page
      .getByRole('navigation', { name: 'Pages of runs' })
      .getByText(/^1 run$/)
      .waitFor();
    await page.goto(`${t.url}/workflows/first-failure`);
    await page
      .getByRole('heading', { name: /Spec and versions/ })
      .getByText('1 version', { exact: true })
      .waitFor();
  });
});
