// The Experiments page in Chromium (playwright-core): opened from the main navigation, it lists experiments with their
// runs (leading to them in the runs list), their tags and who made them; the creator renames, deletes and restores one
// in place (deleted ones shown on request); someone else sees the buttons disabled with the API's reason. And a task
// shows the datasets its MLflow client declared.
import { existsSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ensureDashboardsBuilt } from '../../dashboards/ensure-built';
import { startTestApp, type TestApp } from '../harness/app';
import { releaseBrowser, sharedBrowser } from '../harness/browser';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

let t: TestApp;
let browser: Browser;
const tokens: Record<string, string> = {};
let sweepRun: { id: string; tasks: { id: string }[] };

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`No Chromium at ${CHROMIUM}: install Debian's (apt-get install -y chromium) or set CHROMIUM_PATH.`);
  [, t] = await Promise.all([ensureDashboardsBuilt({ quiet: true }), startTestApp()]);
  await t.publishFixture('echo');
  const [alice, bob] = await Promise.all([t.user('exp-alice'), t.user('exp-bob')]);
  await t.createWorkflow({ name: 'lab', tasks: [{ name: 'hello', module: 'test/echo' }] });
  sweepRun = (await alice.gql(`mutation { startRun(workflow: "lab", experiment: "sweep") { id tasks { id } } }`)).startRun;
  // its task's MLflow client declares the dataset it read
  const declared = await fetch(`${t.url}/api/2.0/mlflow/runs/log-inputs`, {
    method: 'POST',
    headers: { authorization: `Bearer ${alice.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      run_id: sweepRun.tasks[0]!.id,
      datasets: [
        { tags: [{ key: 'mlflow.data.context', value: 'training' }], dataset: { name: 'iris', digest: '5b1ff0d2', source_type: 'local', source: '{}' } },
      ],
    }),
  });
  expect(declared.status).toBe(200);
  await alice.gql(`mutation { startRun(workflow: "lab") { id } }`); // the workflow's own experiment
  await alice.gql(`mutation { updateExperiment(experiment: "sweep", setTags: [{ key: "goal", value: "recall" }]) { id } }`);
  tokens.alice = alice.token;
  tokens.bob = bob.token;
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

it('lists experiments with their runs and tags; its creator renames, deletes and restores one in place', async () => {
  const page = await as('alice');
  await page.goto(`${t.url}/runs`);
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Experiments' }).click();
  await page.waitForURL(/\/experiments$/);
  const sweep = page.locator('tr[data-experiment="sweep"]');
  await sweep.waitFor();
  expect(await sweep.locator('.chip.tag').allTextContents()).toEqual(['goal=recall']);
  expect(await sweep.getByRole('link', { name: '1' }).count()).toBe(1);
  // the workflow's own experiment, with its workflow
  expect(await page.locator('tr[data-experiment="lab"]').getByRole('link', { name: 'lab' }).count()).toBe(1);

  await sweep.getByRole('button', { name: 'Rename sweep' }).click();
  await page.getByLabel('New name for sweep').fill('sweep-2');
  await page.getByRole('button', { name: 'Save' }).click();
  const renamed = page.locator('tr[data-experiment="sweep-2"]');
  await renamed.waitFor();

  await renamed.getByRole('button', { name: 'Delete sweep-2' }).click();
  await renamed.waitFor({ state: 'detached' });
  await page.getByLabel('Show deleted').check();
  const deleted = page.locator('tr[data-experiment="sweep-2"][data-deleted="true"]');
  await deleted.waitFor();
  expect(await deleted.locator('.chip.warn').textContent()).toContain('deleted');
  await deleted.getByRole('button', { name: 'Restore sweep-2' }).click();
  await page.locator('tr[data-experiment="sweep-2"]:not([data-deleted])').waitFor();
  const { experiment } = await t.api.gql(`{ experiment(name: "sweep-2") { deletedAt tags { key value } } }`);
  expect(experiment).toEqual({ deletedAt: null, tags: [{ key: 'goal', value: 'recall' }] });

  // its runs: the runs list searching the experiment
  await renamed.getByRole('link', { name: '1' }).click();
  await page.waitForURL(/\/runs\?q=/);
  await page.locator('table tbody tr').first().waitFor();
  expect(await page.locator('table tbody tr').count()).toBe(1);
});

it('shows someone else the buttons disabled with the API’s reason', async () => {
  const page = await as('bob');
  await page.goto(`${t.url}/experiments`);
  const row = page.locator('tr[data-experiment="sweep-2"]');
  await row.waitFor();
  expect(await row.getByRole('button', { name: 'Rename sweep-2' }).isDisabled()).toBe(true);
  expect(await row.getByRole('button', { name: 'Delete sweep-2' }).isDisabled()).toBe(true);
  expect(await row.locator('.denied-reason').allTextContents()).toEqual([expect.stringMatching(/belongs to the identity that created it/)]);
  // a workflow's own experiment offers no Delete at all
  expect(await page.locator('tr[data-experiment="lab"]').getByRole('button', { name: 'Delete lab' }).count()).toBe(0);
});

it('shows on a task the datasets its MLflow client declared', async () => {
  const page = await as('alice');
  await page.goto(`${t.url}/runs/${sweepRun.id}?task=hello`);
  const row = page.getByRole('table', { name: 'Declared datasets' }).locator('tr[data-declared="iris@5b1ff0d2"]');
  await row.waitFor();
  expect((await row.locator('td').allTextContents()).map((c) => c.trim())).toEqual(['iris', '5b1ff0d2', 'training', 'local']);
});
