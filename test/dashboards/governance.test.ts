// The governance pages in a real browser (Debian's Chromium driven by playwright-core) against one control plane on
// a free port: a dataset's labels and its UNCLASSIFIED flag, a member's preview (withheld columns named, never drawn;
// grouping by a readable column), catalog publishing (disabled with blockers, then done for a clean dataset),
// declassification decisions, and the audit log for an admin and its admins-only state for a member.
// Screenshots land in test/artifacts/. Needs /usr/bin/chromium (`apt-get install chromium`).
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureDashboardsBuilt } from '../../dashboards/ensure-built';
import { startTestApp, type TestApp } from '../harness/app';
import { releaseBrowser, sharedBrowser } from '../harness/browser';
import { type ApiClient, RUN_EVENTS } from '../harness/client';
import { screenshot } from './screenshots';

const here = path.dirname(fileURLToPath(import.meta.url));
const artifacts = path.join(here, '..', 'artifacts');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const DIGEST = `sha256:${'d'.repeat(64)}`;
const CREATE = `mutation ($n: String!, $d: Domain!, $c: [DatasetColumnInput!]!, $s: JSON) { createDataset(name: $n, domain: $d, columns: $c, digest: "${DIGEST}", sample: $s) { id } }`;

let t: TestApp;
let mia: ApiClient & { token: string };
let browser: Browser;
let admin: Page;
let member: Page;
const consoleErrors: string[] = [];
/** Console errors a step provokes on purpose (Chromium logs every 4xx response, and a refusal is a 403). */
let expectedError: RegExp | null = null;

const shot = (page: Page, name: string) => screenshot(page, path.join(artifacts, `governance-${name}.png`));

async function signedIn(token: string): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1366, height: 860 } });
  const page = await context.newPage();
  page.on('console', (message) => {
    if (message.type() !== 'error' || expectedError?.test(message.text())) return;
    consoleErrors.push(message.text());
  });
  page.on('pageerror', (error) => consoleErrors.push(`page error: ${error.message}`));
  await page.goto(t.url);
  await page.getByLabel('Token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Runs', level: 1 }).waitFor();
  return page;
}

describe('governance pages in Chromium', () => {
  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`No Chromium at ${CHROMIUM}: install Debian's (apt-get install -y chromium) or set CHROMIUM_PATH.`);
    await mkdir(artifacts, { recursive: true });
    [, t] = await Promise.all([ensureDashboardsBuilt({ quiet: true }), startTestApp()]);
    // mia writes to crm (so she may ask for declassifications there) but has no production grant: her clearance is
    // experimentation's, at most CONFIDENTIAL and never PII
    mia = await t.user('mia');
    await t.team('crm', ['mia'], ['crm']);
    await t.api.gql(CREATE, {
      n: 'crm/orders',
      d: 'production',
      c: [
        { name: 'id', type: 'int', label: { level: 'PUBLIC' } },
        { name: 'country', type: 'string', label: { level: 'INTERNAL' } },
        { name: 'email', type: 'string', label: { level: 'RESTRICTED', categories: ['PII'] } },
        { name: 'segment', type: 'string' },
      ],
      s: [
        { id: 1, country: 'FR', email: 'a@x', segment: 'gold' },
        { id: 2, country: 'FR', email: 'b@x', segment: 'gold' },
        { id: 3, country: 'DE', email: 'c@x', segment: 'tin' },
        { id: 4, country: 'FR', email: 'd@x', segment: 'tin' },
        { id: 5, country: null, email: 'e@x', segment: 'tin' },
      ],
    });
    await t.api.gql(CREATE, {
      n: 'crm/regions',
      d: 'experimentation',
      c: [
        { name: 'name', type: 'string', label: { level: 'PUBLIC' } },
        { name: 'code', type: 'string', label: { level: 'INTERNAL' } },
      ],
      s: [{ name: 'Europe', code: 'EU' }],
    });

    browser = await sharedBrowser();
    [admin, member] = await Promise.all([signedIn(t.app.adminToken), signedIn(mia.token)]);
  });

  afterAll(async () => {
    await releaseBrowser(browser);
    await t?.stop();
  });

  it('opens a dataset from the list, with its labels, versions, and an UNCLASSIFIED column flagged', async () => {
    await admin.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Datasets' }).click();
    const row = admin.locator('tr[data-dataset="crm/orders"]');
    await row.locator('[data-catalog="unpublished"]').getByText('not published').waitFor();
    await shot(admin, 'datasets');
    await row.getByRole('link', { name: 'crm/orders' }).click();
    await admin.waitForURL((url) => url.pathname === '/datasets/crm/orders');
    await admin.getByRole('heading', { name: /crm\/orders/, level: 1 }).waitFor();
    const columns = admin.getByRole('table', { name: 'Columns of crm/orders' });
    expect(await columns.locator('[data-column="email"] [data-level]').first().textContent()).toBe('RESTRICTED');
    await columns.locator('[data-column="email"]').getByText('PII', { exact: true }).waitFor();
    expect(await columns.locator('[data-column="segment"] [data-level]').first().textContent()).toContain('UNCLASSIFIED');
    await columns.locator('[data-column="segment"]').getByTestId('needs-classification').waitFor();
    expect(await columns.getByTestId('needs-classification').count()).toBe(1);
    expect(await admin.getByTestId('unclassified-count').textContent()).toContain('1 column unclassified');
    await admin.getByRole('table', { name: 'Versions' }).getByRole('rowheader', { name: '1' }).waitFor();
  });

  it('disables publishing while there are blockers, listing each on its own line', async () => {
    const blockers = admin.getByTestId('catalog-blockers').getByRole('listitem');
    await blockers.first().waitFor();
    expect(await blockers.allTextContents()).toEqual([
      expect.stringMatching(/^email \(RESTRICTED\{PII\}\): /),
      expect.stringMatching(/^segment \(UNCLASSIFIED\): UNCLASSIFIED; classify it with setColumnLabel/),
    ]);
    expect(await admin.getByRole('button', { name: 'Publish to catalog' }).isDisabled()).toBe(true);
    await shot(admin, 'dataset-blocked');
  });

  it('publishes a clean dataset, which the list then shows in the catalog, and withdraws it with a reason', async () => {
    await admin.goto(`${t.url}/datasets/crm/regions`);
    await admin.getByText('it may be published').waitFor();
    await admin.getByRole('button', { name: 'Publish to catalog' }).click();
    await admin.getByText(/Published by admin/).waitFor();
    await shot(admin, 'dataset-published');

    await admin.getByRole('link', { name: 'Datasets', exact: true }).first().click();
    await admin.getByLabel('Catalog').selectOption('published');
    await admin.waitForURL(/catalog=published/);
    await admin.waitForFunction(
      () => !document.querySelector('[data-dataset="crm/orders"]') && document.querySelector('[data-dataset="crm/regions"] [data-catalog="published"]'),
    );
    await admin.getByLabel('Catalog').selectOption('unpublished');
    await admin.waitForFunction(() => document.querySelector('[data-dataset="crm/orders"]') && !document.querySelector('[data-dataset="crm/regions"]'));

    await admin.goto(`${t.url}/datasets/crm/regions`);
    await admin.getByRole('button', { name: 'Withdraw…' }).click();
    await admin.getByLabel('Reason for withdrawing').fill('codes are being renumbered');
    await admin.getByRole('button', { name: 'Withdraw', exact: true }).click();
    await admin.getByRole('button', { name: 'Publish to catalog' }).waitFor();
    const { dataset } = await t.api.gql(`{ dataset(name: "crm/regions") { catalog { published } } }`);
    expect(dataset.catalog.published).toBe(false);
  });

  it("shows a member's preview without the withheld columns, named above the table, and counts per group", async () => {
    await member.goto(`${t.url}/datasets/crm/orders`);
    await member.getByTestId('withheld').filter({ hasText: 'Withheld at your clearance: email, segment' }).waitFor();
    const rows = member.getByRole('table', { name: 'Sample rows' });
    await rows.locator('tbody tr').nth(4).waitFor();
    expect(await rows.getByRole('columnheader').allTextContents()).toEqual(['id', 'country']);
    expect(await rows.textContent()).not.toMatch(/@x|gold|tin/);
    await shot(member, 'dataset-preview');

    const groupBy = member.getByLabel('Group by');
    expect(await groupBy.locator('option').allTextContents()).toEqual(['No grouping (sample rows)', 'id', 'country']);
    await groupBy.selectOption('country');
    const groups = member.getByRole('table', { name: 'Rows per country' });
    await groups.locator('tbody tr').nth(2).waitFor();
    expect(await groups.locator('tbody tr').evaluateAll((trs) => trs.map((tr) => [...tr.children].map((c) => c.textContent)))).toEqual([
      ['FR', '3'],
      ['DE', '1'],
      ['null', '1'],
    ]);
    await shot(member, 'dataset-grouped');
  });

  it("refuses a declassification's author her own approval with the API's message before the click, and lets someone else decide", async () => {
    await mia.gql(
      `mutation { requestDeclassification(dataset: "crm/orders", column: "country", label: { level: PUBLIC }, reason: "country codes are public knowledge") { id } }`,
    );
    await member.goto(`${t.url}/datasets/crm/orders`);
    // issue 16 item 6: the API says so before the click (Declassification.viewerCan), so the button is disabled
    const approve = member.getByRole('button', { name: 'Approve declassifying country' });
    await approve.waitFor();
    expect(await approve.isDisabled()).toBe(true);
    await member.locator('.denied-reason').filter({ hasText: 'You asked for this declassification, so someone else must decide it.' }).waitFor();
    await shot(member, 'declassification-refused');

    await admin.goto(`${t.url}/datasets/crm/orders`);
    await admin.getByRole('button', { name: 'Approve declassifying country' }).click();
    await admin.getByRole('table', { name: 'Pending declassifications' }).waitFor({ state: 'detached' });
    await admin.getByText('None waiting.').waitFor();
    await admin.waitForFunction(() => document.querySelector('[data-column="country"] [data-level]')?.textContent === 'PUBLIC');
  });

  it('lists the audit log for an admin, newest first, with the preview decisions', async () => {
    expect(await admin.getByRole('navigation', { name: 'Main' }).getByRole('link').allTextContents()).toContain('Audit');
    await admin.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Audit' }).click();
    const events = admin.getByRole('table', { name: 'Audit events' });
    await events.locator('tbody tr').first().waitFor();
    await admin.getByLabel('Subject').fill('crm/orders');
    await admin.waitForURL(/subject=crm/);
    // the search applies once typing settles: then every row left is about the dataset
    await admin.waitForFunction(() =>
      [...document.querySelectorAll('table[aria-label="Audit events"] tbody tr')].every((tr) => tr.textContent!.includes('crm/orders')),
    );
    const preview = events.locator('tr[data-action="data.preview"][data-decision="allow"]').first();
    await preview.waitFor();
    await preview.getByText('allow', { exact: true }).waitFor();
    await preview.getByText('dataset:crm/orders').waitFor();
    await preview.locator('summary').click();
    await preview
      .locator('pre')
      .filter({ hasText: /"(shown|groupBy)"/ })
      .waitFor();
    const times = await events.locator('tbody time').evaluateAll((ts) => ts.map((x) => Date.parse(x.getAttribute('datetime')!)));
    expect(times).toEqual([...times].sort((a, b) => b - a));
    await shot(admin, 'audit');
    await admin.getByLabel('Time').selectOption('hour');
    await admin.waitForURL(/window=hour/);
    await preview.waitFor();
  });

  it('shows a member who opens the audit address an admins-only state, and no Audit link', async () => {
    expect(await member.getByRole('navigation', { name: 'Main' }).getByRole('link').allTextContents()).not.toContain('Audit');
    expectedError = /status of 403/;
    await member.goto(`${t.url}/audit`);
    await member.getByRole('heading', { name: 'The audit log is for admins only' }).waitFor();
    expect(await member.getByTestId('admins-only').textContent()).not.toBe('');
    expect(await member.getByRole('alert').count()).toBe(0);
    expectedError = null;
    await shot(member, 'audit-member');
  });

  it("shows a member a production run's progress but withholds its data, saying why", async () => {
    await t.publishFixture('echo');
    await t.createWorkflow({
      name: 'nightly',
      domain: 'production',
      tasks: [{ name: 'report', module: 'test/echo', parameters: { message: 'secret-value', steps: 1 } }],
    });
    const { startRun } = await t.api.gql(`mutation { startRun(workflow: "nightly") { id } }`);
    await t.api.subscribe(RUN_EVENTS, { runId: startRun.id }, (e: any) => e.runEvents.__typename === 'RunStatusEvent' && e.runEvents.runStatus === 'SUCCEEDED');
    await member.goto(`${t.url}/runs/${startRun.id}?task=report`);
    await member.getByText('Withheld: none of your teams is granted the production domain.').waitFor();
    await member.locator('.task-panel').getByText('Withheld: none of your teams is granted this run’s domain.').first().waitFor();
    expect(await member.content()).not.toContain('secret-value');
    await shot(member, 'withheld-run');
    // the admin sees it all
    await admin.goto(`${t.url}/runs/${startRun.id}?task=report`);
    await admin
      .locator('.task-panel')
      .getByText(/secret-value/)
      .first()
      .waitFor();
  });

  it("shows a member a production workflow's spec as withheld (its task parameters and defaults are production data)", async () => {
    // (nightly, created above, has the literal task parameter "secret-value")
    await member.goto(`${t.url}/workflows/nightly`);
    await member.getByRole('heading', { name: /nightly/, level: 1 }).waitFor();
    await member
      .getByText(/^Withheld: the spec \(its tasks and parameter defaults\) is production data/)
      .first()
      .waitFor();
    expect(await member.content()).not.toContain('secret-value');
    await shot(member, 'withheld-workflow');
    await member.goto(`${t.url}/workflows`);
    await member.getByRole('link', { name: 'nightly' }).waitFor();
    expect(await member.getByText('withheld', { exact: true }).count()).toBeGreaterThanOrEqual(2);
    // the admin sees the spec's graph and the value (in a task's collapsed details)
    await admin.goto(`${t.url}/workflows/nightly`);
    await admin.getByRole('group', { name: 'Task graph of nightly' }).waitFor();
    await admin.getByText('"secret-value"').first().waitFor({ state: 'attached' });
    expect(await admin.getByText(/^Withheld: the spec/).count()).toBe(0);
  });

  it('logged no console errors', () => {
    expect(consoleErrors).toEqual([]);
  });
});
