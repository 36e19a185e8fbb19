// Deployments in the dashboards (Chromium via playwright-core), on the embedded app with the real local deployer
// serving the iris fixture model: the list and a deployment's page render (split bar, rollout steps with the
// current one marked, revisions linked to their model versions), a failover click switches the split and shows the
// event, a viewer of the team sees every action disabled with the reason and the page follow a promotion live
// (deploymentChanged), the model page lists its deployments and follows what rolling an alias back there does to them,
// and no page is wider than the window at 390 px.
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { inArray } from 'drizzle-orm';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ensureDashboardsBuilt } from '../../dashboards/ensure-built';
import { deployments } from '../../server/db/tables/deployments';
import { modelVersions } from '../../server/db/tables/registry';
import { runs, tasks } from '../../server/db/tables/runs';
import { experiments } from '../../server/db/tables/tracking';
import { irisVersion, startDeploymentApp, until } from '../deployments/setup';
import type { TestApp } from '../harness/app';
import { releaseBrowser, sharedBrowser } from '../harness/browser';
import type { ApiClient } from '../harness/client';
import { screenshot } from './screenshots';

const artifacts = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'artifacts');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

let t: TestApp;
let browser: Browser;
let alice: ApiClient & { token: string };
let vic: ApiClient & { token: string };
let member: Page;
let viewer: Page;

const split = async (name: string) => {
  const { deployment } = await alice.gql(`query ($n: String!) { deployment(name: $n) { traffic { revision percent } } }`, { n: name });
  return Object.fromEntries(deployment.traffic.filter((x: any) => x.percent > 0).map((x: any) => [x.revision, x.percent]));
};
const atSplit = (name: string, want: Record<number, number>) =>
  until(`${name} at ${JSON.stringify(want)}`, async () => JSON.stringify(await split(name)) === JSON.stringify(want));

/** The fixture versions are written straight into the registry; the model page's lineage wants the run and task they came from. */
async function fromRun(versionIds: string[]) {
  const { db } = t.app.services;
  const [experiment] = await db.insert(experiments).values({ name: 'iris-fixture' }).returning();
  const [run] = await db.insert(runs).values({ experimentId: experiment!.id, status: 'SUCCEEDED', trigger: 'EXTERNAL' }).returning();
  const [task] = await db
    .insert(tasks)
    .values({ runId: run!.id, node: 'train', status: 'SUCCEEDED', timeoutMs: 60_000, pool: 'default', executor: 'local' })
    .returning();
  await db.update(modelVersions).set({ runId: run!.id, taskId: task!.id }).where(inArray(modelVersions.id, versionIds));
}

async function pageFor(token: string, width = 1280): Promise<Page> {
  const context = await browser.newContext({ viewport: { width, height: 900 } });
  await context.addInitScript((tk) => localStorage.setItem('atelier-token', tk), token);
  return context.newPage();
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`No Chromium at ${CHROMIUM}: install Debian's (apt-get install -y chromium) or set CHROMIUM_PATH.`);
  [, t] = await Promise.all([
    ensureDashboardsBuilt({ quiet: true }),
    startDeploymentApp(undefined, { ATELIER_DEPLOYMENT_STATS_MS: '200' }),
    mkdir(artifacts, { recursive: true }),
  ]);
  [alice, vic] = await Promise.all([t.user('alice'), t.user('vic', 'viewer')]);
  await t.team('ml', ['alice', 'vic'], ['ml']);
  const ids = [await irisVersion(t, 1), await irisVersion(t, 2)];
  await fromRun(ids);
  await alice.gql(`mutation { setModelAlias(model: "ml/iris", alias: "champion", version: "1") { version { version } } }`);
  await alice.gql(`mutation ($i: CreateDeploymentInput!) { createDeployment(input: $i) { id } }`, {
    i: {
      name: 'iris-canary',
      model: 'ml/iris@champion',
      domain: 'experimentation',
      rollout: { steps: [{ percent: 10, dwellSeconds: 3600 }, { percent: 100 }] },
    },
  });
  await atSplit('iris-canary', { 1: 100 });
  // the alias moves: revision 2 takes 10 % and holds there for an hour
  await alice.gql(`mutation { setModelAlias(model: "ml/iris", alias: "champion", version: "2") { version { version } } }`);
  await atSplit('iris-canary', { 1: 90, 2: 10 });
  // Traffic the router measures: its figures are recorded as serving observations, shown per revision.
  const { deployment } = await alice.gql(`{ deployment(name: "iris-canary") { url } }`);
  await until('revision 1 measured', async () => {
    await Promise.all(
      Array.from({ length: 20 }, () =>
        fetch(`${deployment.url}/predict`, { method: 'POST', body: JSON.stringify({ features: [5.1, 3.5, 1.4, 0.2] }) }).then((r) => r.arrayBuffer()),
      ),
    );
    const { deployment: d } = await alice.gql(`{ deployment(name: "iris-canary") { revisions { number serving { requests } } } }`);
    return d.revisions.find((r: any) => r.number === 1)?.serving;
  });
  browser = await sharedBrowser();
  [member, viewer] = await Promise.all([pageFor(alice.token), pageFor(vic.token)]);
}, 120_000);

afterAll(async () => {
  await releaseBrowser(browser);
  if (t) {
    await t.api.gql(`mutation { deleteDeployment(id: "iris-canary") }`).catch(() => {});
    await until('every deployment deleted', async () => (await t.app.services.db.select().from(deployments)).length === 0).catch(() => {});
    await t.stop();
  }
});

it('lists the deployment with its split, readiness and rollout, linked from the navigation', async () => {
  await member.goto(`${t.url}/runs`);
  await member.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Deployments' }).click();
  const row = member.locator('tr[data-deployment="iris-canary"]');
  await row.locator('[data-traffic="1:90,2:10"]').waitFor();
  expect(await row.locator('[data-rollout-state="RUNNING"]').textContent()).toContain('r2 at 10%');
  expect(await row.locator('[data-ready="true"]').count()).toBe(1);
  expect(await row.getByRole('link', { name: 'ml/iris@champion' }).getAttribute('href')).toBe('/models/ml/iris');
  await screenshot(member, path.join(artifacts, 'deployments-list.png'));
});

it('shows the rollout with its current step, the revisions linked to their versions, and fails over with a reason', async () => {
  await member.locator('tr[data-deployment="iris-canary"]').getByRole('link', { name: 'iris-canary' }).click();
  const detail = member.locator('[data-deployment-detail="iris-canary"]');
  await detail.locator('[data-rollout="RUNNING"]').waitFor();
  expect(await detail.locator('.rollout-steps li[aria-current="step"]').textContent()).toMatch(/^10 %, hold 1 h/);
  await detail.locator('[data-countdown]').waitFor();
  expect(await detail.locator('tr[data-revision="2"]').getByRole('link').getAttribute('href')).toBe('/models/ml/iris?version=2');
  expect(await detail.locator('tr[data-revision="1"] .chip').first().textContent()).toBe('serving');
  expect(await detail.locator('tr[data-revision="1"] [data-serving]').textContent()).toMatch(/^\d+ req · 0 % errors · p50 [\d.]+ ms · p99 [\d.]+ ms$/);
  // a failover needs a reason: the API's refusal shows inline and nothing changes
  await detail.getByRole('button', { name: 'Fail over' }).click();
  await detail.locator('.form-error').waitFor();
  expect(await split('iris-canary')).toEqual({ 1: 90, 2: 10 });
  await detail.getByLabel(/Reason/).fill('errors upstream');
  await detail.getByRole('button', { name: 'Fail over' }).click();
  await detail.locator('[data-traffic="1:100"]').waitFor();
  await detail.locator('[data-failed-over="true"]').waitFor();
  await detail.locator('[data-rollout="PAUSED"]').waitFor();
  expect(await detail.locator('tr[data-event="FAILED_OVER"]').textContent()).toMatch(/errors upstream.*split before: r1 90 %, r2 10 %/);
  await atSplit('iris-canary', { 1: 100 }); // the deployer's report catches up with the switch
  await screenshot(member, path.join(artifacts, 'deployments-detail.png'));
  // and back: the split before the failover returns, shown live
  await detail.getByRole('button', { name: 'Restore' }).click();
  await detail.locator('[data-traffic="1:90,2:10"]').waitFor();
  await detail.locator('tr[data-event="RESTORED"]').waitFor();
});

it('offers a viewer of the team every action disabled, with the reason, and follows a promotion live', async () => {
  await viewer.goto(`${t.url}/deployments/iris-canary`);
  const detail = viewer.locator('[data-deployment-detail="iris-canary"]');
  await detail.locator('[data-rollout="RUNNING"]').waitFor();
  for (const name of ['Promote', 'Roll back', 'Fail over']) {
    expect(await detail.getByRole('button', { name }).isDisabled(), name).toBe(true);
  }
  expect(await detail.locator('[data-denied]').first().textContent()).toMatch(/Only members of the team owning "ml" \(not viewers\)/);
  expect(await detail.getByLabel(/Reason/).count()).toBe(0);
  await screenshot(viewer, path.join(artifacts, 'deployments-viewer.png'));
  // live: a member promotes through the API and the open page follows without a reload
  await alice.gql(`mutation { promoteDeployment(id: "iris-canary", reason: "looks good") { id } }`);
  await detail.locator('[data-traffic="2:100"]').waitFor();
  await detail.locator('[data-rollout="COMPLETE"]').waitFor();
  expect(await detail.locator('tr[data-event="PROMOTED"]').textContent()).toContain('looks good');
});

it('lists the deployments serving a model on its page', async () => {
  await member.goto(`${t.url}/models/ml/iris`);
  const card = member.locator('[data-model-deployments="ml/iris"]');
  await card.locator('tr[data-deployment="iris-canary"] [data-traffic]').waitFor();
  expect(await card.getByRole('link', { name: 'iris-canary' }).getAttribute('href')).toBe('/deployments/iris-canary');
});

it('follows on the model page what rolling an alias back there does to the deployments serving it', async () => {
  await member.goto(`${t.url}/models/ml/iris`);
  const row = member.locator('[data-model-deployments="ml/iris"] tr[data-deployment="iris-canary"]');
  await row.locator('[data-traffic="2:100"]').waitFor();
  await member.getByRole('button', { name: 'Roll back champion' }).click();
  await member.locator('tr[data-alias="champion"]').getByRole('cell', { name: '1', exact: true }).waitFor();
  // champion names version 1 again: the deployment rolls a revision of it out in its canary's first step, which
  // the card shows without a reload
  await row.locator('[data-rollout-state="RUNNING"]').waitFor({ timeout: 20_000 });
  // The card can read the rollout RUNNING while the split is still the old one (seen twice on a loaded machine):
  // it shows the canary's split on a later poll.
  await expect.poll(() => row.locator('[data-traffic]').getAttribute('data-traffic'), { timeout: 20_000 }).toMatch(/^2:90,\d+:10$|^\d+:10,2:90$/);
  // and to its end, promoted through the API while the card follows the rollout
  await alice.gql(`mutation { promoteDeployment(id: "iris-canary", reason: "version 1 again") { id } }`);
  await row.locator('[data-rollout-state="COMPLETE"]').waitFor({ timeout: 20_000 });
});

it('says, failed over after a finished rollout, which revision takes the traffic and which one waits', async () => {
  const { deployment } = await alice.gql(`{ deployment(name: "iris-canary") { revisions { number state } } }`);
  const serving = deployment.revisions.find((r: any) => r.state === 'SERVING').number;
  const retired = deployment.revisions.findLast((r: any) => r.state === 'RETIRED').number;
  await alice.gql(`mutation { failoverDeployment(id: "iris-canary", reason: "checking the fallback") { id } }`);
  await member.goto(`${t.url}/deployments/iris-canary`);
  const detail = member.locator('[data-deployment-detail="iris-canary"]');
  await detail.locator(`[data-traffic="${retired}:100"]`).waitFor({ timeout: 20_000 });
  // the retired revision takes all traffic, the one serving before none: the table says that, not the reverse
  expect(await detail.locator(`tr[data-revision="${retired}"] [data-fallback]`).textContent()).toBe('fallback: 100 % of traffic');
  expect(await detail.locator(`tr[data-revision="${serving}"] .chip`).first().textContent()).toBe('held: failed over');
  await detail.locator('[data-rollout-held]').waitFor();
  await alice.gql(`mutation { restoreDeployment(id: "iris-canary") { id } }`);
  await detail.locator(`[data-traffic="${serving}:100"]`).waitFor({ timeout: 20_000 });
  expect(await detail.locator(`tr[data-revision="${serving}"] .chip`).first().textContent()).toBe('serving');
  expect(await detail.locator('[data-fallback]').count()).toBe(0);
});

it('follows on the list a failover that someone else made while no rollout runs', async () => {
  // Before, the list asked again only while a rollout ran: a deployment at rest changed by another (a failover, a
  // monitor's rollback) showed as it was until a reload.
  await member.goto(`${t.url}/deployments`);
  const row = member.locator('tr[data-deployment="iris-canary"]');
  await row.locator('[data-rollout-state="COMPLETE"]').waitFor();
  await row.locator('[data-ready]').waitFor();
  expect(await row.locator('[data-failed-over]').count()).toBe(0);
  await alice.gql(`mutation { failoverDeployment(id: "iris-canary", reason: "someone else's failover") { id } }`);
  await row.locator('[data-failed-over="true"]').waitFor({ timeout: 20_000 });
  await alice.gql(`mutation { restoreDeployment(id: "iris-canary") { id } }`);
});

it('keeps every deployments page within the window at 390 px', async () => {
  const narrow = await pageFor(alice.token, 390);
  const overflowing: string[] = [];
  for (const [url, ready] of [
    ['/deployments', 'tr[data-deployment="iris-canary"]'],
    ['/deployments/iris-canary', '[data-rollout="COMPLETE"]'],
    ['/models/ml/iris', '[data-model-deployments] tr[data-deployment]'],
  ] as const) {
    await narrow.goto(`${t.url}${url}`);
    await narrow.locator(ready).first().waitFor();
    const sizes = await narrow.evaluate(() => ({ page: document.documentElement.scrollWidth, window: window.innerWidth }));
    if (sizes.page > sizes.window + 0.5) overflowing.push(`${url}: ${sizes.page} px`);
  }
  await screenshot(narrow, path.join(artifacts, 'deployments-model-390.png'));
  expect(overflowing).toEqual([]);
});
