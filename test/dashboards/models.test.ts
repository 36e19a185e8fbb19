// The model registry in the dashboards (Chromium via playwright-core): the catalog (search, team, aliases, label
// chips), a model's page (versions, metrics side by side, alias history, the lineage graph from the dataset, and one
// its MLflow client declared, through the run to the version and its aliases), and promotions: Approve disabled with the API's reason for the requester
// and a viewer, enabled for a second admin whose approval moves the alias (still there after a reload); a promotion
// asked from a version row. Versions come from real runs (test/registry/setup.ts).
import { existsSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ensureDashboardsBuilt } from '../../dashboards/ensure-built';
import { startTestApp, type TestApp } from '../harness/app';
import { releaseBrowser, sharedBrowser } from '../harness/browser';
import type { ApiClient } from '../harness/client';
import { REGISTER, runToEnd, setUpRegistryWorld } from '../registry/setup';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

let t: TestApp;
let browser: Browser;
const tokens: Record<string, string> = {};
let requestId = '';
let vera: ApiClient;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`No Chromium at ${CHROMIUM}: install Debian's (apt-get install -y chromium) or set CHROMIUM_PATH.`);
  [, t] = await Promise.all([ensureDashboardsBuilt({ quiet: true }), startTestApp()]);
  const { alice } = await setUpRegistryWorld(t);
  const [first, second] = await Promise.all([runToEnd(t, 'train', { seed: 1 }), runToEnd(t, 'train', { seed: 2 })]);
  for (const run of [first, second]) await alice.gql(REGISTER, { m: 'ml/churn', t: run.task.train!.id, o: 'model', f: 'sklearn' });
  // The second run's MLflow client declared a dataset it trained on (runs/log-inputs).
  const declared = await fetch(`${t.url}/api/2.0/mlflow/runs/log-inputs`, {
    method: 'POST',
    headers: { authorization: `Bearer ${t.app.adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      run_id: second.task.train!.id,
      datasets: [
        {
          tags: [{ key: 'mlflow.data.context', value: 'training' }],
          dataset: { name: 'churn-sample', digest: 'ab12cd34', source_type: 'local', source: '{}' },
        },
      ],
    }),
  });
  expect(declared.status).toBe(200);
  for (const [v, reason] of [
    ['1', 'first eval'],
    ['2', 'better eval'],
  ])
    await alice.gql(`mutation ($v: String!, $r: String) { setModelAlias(model: "ml/churn", alias: "challenger", version: $v, reason: $r) { alias } }`, {
      v,
      r: reason,
    });
  // the admin asks: the admin may not decide it, a second admin may
  const { requestModelPromotion } = await t.api.gql(
    `mutation { requestModelPromotion(model: "ml/churn", version: "1", alias: "champion", reason: "beats baseline") { id } }`,
  );
  requestId = requestModelPromotion.id;
  tokens.admin = t.app.adminToken;
  tokens.alice = alice.token;
  tokens.root2 = (await t.user('root2', 'admin')).token;
  vera = await t.user('vera', 'viewer');
  tokens.vera = (vera as ApiClient & { token: string }).token;
  browser = await sharedBrowser();
}, 120_000);
afterAll(async () => {
  await releaseBrowser(browser);
  await t?.stop();
});

const pages = new Map<string, Page>();
async function as(who: string): Promise<Page> {
  let page = pages.get(who);
  if (!page) {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    await context.addInitScript((token) => localStorage.setItem('atelier-token', token), tokens[who]!);
    page = await context.newPage();
    pages.set(who, page);
  }
  return page;
}
const approve = (page: Page) => page.locator(`tr[data-promotion="${requestId}"]`).getByRole('button', { name: 'Approve' });

it('lists a model in the catalog with its team, alias and label chip, and searches by name', async () => {
  const page = await as('admin');
  await page.goto(`${t.url}/runs`);
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Models' }).click();
  const row = page.locator('tr[data-model="ml/churn"]');
  await row.waitFor();
  expect(await row.locator('.chip.tag').allTextContents()).toEqual(['challenger → 2']);
  expect(await row.locator('[data-level]').getAttribute('data-level')).toBe('INTERNAL');
  expect(await row.textContent()).toContain('ml');
  await page.getByLabel('Search', { exact: true }).fill('nothing-like-it');
  await page.getByRole('button', { name: 'Search', exact: true }).click();
  await page.getByText('No model matches “nothing-like-it”').waitFor();
  await page.getByLabel('Search', { exact: true }).fill('ml/churn');
  await page.getByRole('button', { name: 'Search', exact: true }).click();
  await page.waitForURL(/q=ml%2Fchurn/);
  await row.click();
  await page.waitForURL(/\/models\/ml\/churn$/);
});

it('shows versions, metrics side by side, alias history, and the lineage graph from the dataset through the run', async () => {
  const page = await as('admin');
  await page.goto(`${t.url}/models/ml/churn`);
  const versions = page.locator('table[aria-label="Versions"] tbody tr');
  await versions.nth(1).waitFor();
  expect(await versions.evaluateAll((rows) => rows.map((r) => r.getAttribute('data-version')))).toEqual(['2', '1']);
  expect(await versions.first().textContent()).toContain('sklearn');
  const accuracy = page.locator('table.metric-compare tr[data-metric="accuracy"] td');
  expect(await accuracy.allTextContents()).toEqual(['0.95', '0.95']);
  expect(await accuracy.first().getAttribute('data-best')).toBe('true');
  const history = page.locator('table[aria-label="Alias history"] tbody tr');
  expect(await history.count()).toBe(2);
  expect(await history.first().textContent()).toMatch(/challenger.*1 → 2.*alice.*better eval/);
  // the newest version's lineage, then version 1's (selected from its row)
  await page.locator('[data-lineage-version="2"] .dag-node[data-node="dataset:crm/users@1"]').waitFor();
  expect(await page.locator('[data-lineage-version="2"] .dag-node[data-node="alias:challenger"]').count()).toBe(1);
  // a dataset the run's MLflow client declared, beside the traced one
  const declared = page.locator('[data-lineage-version="2"] .dag-node[data-node="declared:churn-sample@ab12cd34"]');
  expect(await declared.textContent()).toContain('churn-sample (declared)');
  expect(await declared.getAttribute('title')).toMatch(/training · local · ab12cd34/);
  // While version 1's lineage is on its way, its card says so; it never shows version 2's graph under version 1's
  // title (urql keeps the previous variables' answer until the new one arrives; dashboards/src/lib/query.ts hides it).
  let release = () => {};
  const held = new Promise<void>((resolve) => (release = resolve));
  await page.route(`${t.url}/graphql`, async (route) => {
    if (route.request().postData()?.includes('ModelVersionLineage')) await held;
    await route.fallback();
  });
  await page.locator('tr[data-version="1"]').getByRole('button', { name: 'Lineage' }).click();
  const graph = page.locator('[data-lineage-version="1"]');
  await graph.getByText('Loading the lineage…').waitFor();
  expect(await graph.locator('.dag-node').count()).toBe(0);
  release();
  await page.unroute(`${t.url}/graphql`);
  await graph.locator('.dag-node[data-node="dataset:crm/users@1"]').waitFor();
  expect(await graph.locator('.dag-node[data-node="dataset:crm/users@1"]').getAttribute('title')).toMatch(/country PUBLIC.*id INTERNAL/);
  const task = graph.locator('.dag-node[data-node^="task:"]');
  expect(await task.textContent()).toMatch(/train · train.*run [0-9a-f]{8}/);
  expect(await graph.locator('.dag-node[data-node^="alias:"]').count()).toBe(0);
  expect(await graph.locator('.dag-node[data-node^="declared:"]').count()).toBe(0);
  // the requester may not decide their own request: the API's reason, beside a disabled button
  expect(await approve(page).isDisabled()).toBe(true);
  expect(await page.locator(`tr[data-promotion="${requestId}"] .denied-reason`).textContent()).toMatch(/You asked for this promotion/);
});

it('shows a viewer Approve disabled with the reason', async () => {
  const page = await as('vera');
  await page.goto(`${t.url}/models/ml/churn`);
  await approve(page).waitFor();
  expect(await approve(page).isDisabled()).toBe(true);
  const reason = await page.locator(`tr[data-promotion="${requestId}"] .denied-reason`).textContent();
  expect(reason).toMatch(/reads the model registry but may not change it/);
  // the reason is the mutation's own answer, word for word
  const refused = await vera.raw(`mutation ($id: ID!) { decideModelPromotion(id: $id, approve: true) { state } }`, { id: requestId });
  expect(refused.errors?.[0]?.message).toBe(reason);
  expect(await page.locator(`tr[data-promotion="${requestId}"]`).getByRole('button', { name: 'Reject' }).count()).toBe(0);
  expect(await page.getByRole('button', { name: 'Request promotion of version 1' }).isDisabled()).toBe(true);
});

it('lets a second admin approve: the alias moves, its history says so, and after a reload too', async () => {
  const page = await as('root2');
  await page.goto(`${t.url}/models/ml/churn`);
  await approve(page).click();
  const champion = page.locator('table[aria-label="Aliases"] tr[data-alias="champion"]');
  for (const round of ['approved', 'reloaded']) {
    if (round === 'reloaded') await page.reload();
    await champion.waitFor();
    expect(await champion.locator('td').first().textContent()).toBe('1');
    expect(await champion.textContent()).toMatch(/production.*root2/);
    expect(await page.locator('table[aria-label="Alias history"] tr[data-action="promote"]').textContent()).toMatch(
      /champion.*∅ → 1.*root2.*promoted: beats baseline/,
    );
    expect(await page.locator(`table[aria-label="Decided promotions"] tr[data-promotion="${requestId}"]`).getAttribute('data-state')).toBe('APPROVED');
    expect(await page.getByText('No pending promotion requests.').count()).toBe(1);
  }
});

it('asks for a promotion from a version row', async () => {
  const page = await as('alice');
  await page.goto(`${t.url}/models/ml/churn`);
  await page.getByRole('button', { name: 'Request promotion of version 2' }).click();
  const form = page.getByRole('form', { name: 'Request promotion of version 2' });
  expect(await form.getByLabel('Alias').inputValue()).toBe('champion');
  await form.getByLabel('Reason').fill('newer data');
  await form.getByRole('button', { name: 'Request' }).click();
  const pending = page.locator('table[aria-label="Pending promotions"] tbody tr');
  await pending.waitFor();
  expect(await pending.textContent()).toMatch(/champion.*2.*alice.*newer data/);
  expect(await pending.getByRole('button', { name: 'Approve' }).isDisabled()).toBe(true);
  // on a 390 px phone the page still fits: wide tables and the graph scroll in their own boxes
  await page.setViewportSize({ width: 390, height: 844 });
  expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
});
