// Operating models in the dashboards (Chromium via playwright-core): an alert acknowledged from the inbox with its
// history shown, and a viewer offered no actions; a monitor's chart with a breach marked; a dataset's freshness
// shown late; a trigger's firing linked to its run on the workflow page, and the new version's drift; a webhook created (its secret shown once)
// and rotated (the previous secret's overlap shown); and, through the API, the viewerCan answers behind the buttons.
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sql } from 'drizzle-orm';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ensureDashboardsBuilt } from '../../dashboards/ensure-built';
import { evaluateDueMonitors } from '../../server/monitoring/evaluator';
import { startTestApp, type TestApp } from '../harness/app';
import { releaseBrowser, sharedBrowser } from '../harness/browser';
import type { ApiClient } from '../harness/client';
import { CREATE_TRIGGER, decided } from '../triggers/world';
import { screenshot } from './screenshots';

const artifacts = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'artifacts');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const DIGEST = (c: string) => `sha256:${c.repeat(64)}`;
const features = { kind: 'DATASET', ref: 'ml/features' };
/** 200 rows of x from `from` to `from + 19`: a version's profile is computed from it. */
const sample = (from: number) => Array.from({ length: 200 }, (_, i) => ({ x: from + (i % 20) }));

let t: TestApp;
let browser: Browser;
let admin: Page;
let viewer: Page;
let monitorId = '';
const clients: Record<string, ApiClient> = {};
let alertId = '';

async function pageFor(token: string): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  await context.addInitScript((tk) => localStorage.setItem('atelier-token', tk), token);
  return context.newPage();
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`No Chromium at ${CHROMIUM}: install Debian's (apt-get install -y chromium) or set CHROMIUM_PATH.`);
  [, t] = await Promise.all([
    ensureDashboardsBuilt({ quiet: true }),
    startTestApp({ ATELIER_MONITOR_EVAL_MS: '3600000', ATELIER_WEBHOOK_ALLOWLIST: 'http://127.0.0.1:*' }),
    mkdir(artifacts, { recursive: true }),
  ]);
  const [alice, vic, mallory] = await Promise.all([t.user('alice'), t.user('vic', 'viewer'), t.user('mallory')]);
  Object.assign(clients, { alice, vic, mallory });
  await t.team('ml', ['alice', 'vic'], ['ml']);
  await t.team('other', ['mallory'], ['other']);
  const CREATE_DATASET = `mutation ($n: String!, $d: String!, $s: JSON) { createDataset(name: $n, domain: experimentation, columns: [{ name: "x", type: "int", label: { level: PUBLIC } }], digest: $d, sample: $s) { id } }`;
  await t.api.gql(CREATE_DATASET, { n: 'ml/features', d: DIGEST('a') });
  await t.api.gql(CREATE_DATASET, { n: 'ml/events', d: DIGEST('b'), s: sample(0) });
  // a latency monitor whose observations breach its bound: one evaluation opens an alert
  const { createMonitor } = await alice.gql(`mutation ($i: MonitorInput!) { createMonitor(input: $i) { id } }`, {
    i: { name: 'latency', target: features, metric: 'latency', rules: [{ id: 'slow', kind: 'THRESHOLD', above: 100, windowSeconds: 300 }] },
  });
  monitorId = createMonitor.id;
  const now = Date.now();
  await alice.gql(`mutation ($o: [ObservationInput!]!) { recordObservations(observations: $o) { recorded } }`, {
    o: [
      [-3000, 40],
      [-2400, 50],
      [-1800, 45],
      [-60, 150],
    ].map(([s, value]) => ({ target: features, metric: 'latency', value, at: new Date(now + s! * 1000).toISOString() })),
  });
  await evaluateDueMonitors(t.app.services.db, { now: new Date() });
  const { alerts } = await alice.gql(`{ alerts(states: [OPEN]) { id monitor { id } } }`);
  alertId = alerts.find((a: any) => a.monitor?.id === monitorId).id;
  browser = await sharedBrowser();
  [admin, viewer] = await Promise.all([pageFor(t.app.adminToken), pageFor(vic.token)]);
}, 120_000);
afterAll(async () => {
  await releaseBrowser(browser);
  await t?.stop();
});

it('acknowledges an alert from the inbox, with a reason, and shows its history', async () => {
  await admin.goto(`${t.url}/alerts`);
  await admin.locator(`tr[data-alert="${alertId}"] a`).first().click();
  const detail = admin.locator(`[data-alert-detail="${alertId}"]`);
  await detail.waitFor();
  await detail.getByLabel(/Reason/).fill('looking into the slow node');
  await detail.getByRole('button', { name: 'Acknowledge' }).click();
  await detail.locator('h2 [data-alert-state="ACKNOWLEDGED"]').waitFor();
  const acknowledged = detail.locator('tr[data-event="ACKNOWLEDGED"]');
  await acknowledged.waitFor();
  expect(await acknowledged.textContent()).toContain('looking into the slow node');
  expect(await detail.locator('tr[data-event="OPENED"]').count()).toBe(1);
  // a reason is required to resolve: the API's message shows inline and nothing changes
  await detail.getByRole('button', { name: 'Resolve' }).click();
  await detail.locator('.form-error').filter({ hasText: 'Say why' }).waitFor();
  expect(await detail.locator('h2 [data-alert-state="ACKNOWLEDGED"]').count()).toBe(1);
  await screenshot(admin, path.join(artifacts, 'operations-alert.png'));
});

it('offers a viewer of the team no action on the alert, only the reason', async () => {
  await viewer.goto(`${t.url}/alerts?alert=${alertId}`);
  const detail = viewer.locator(`[data-alert-detail="${alertId}"]`);
  await detail.locator('tr[data-event="ACKNOWLEDGED"]').waitFor();
  expect(await detail.locator('[data-denied]').textContent()).toMatch(/may not change it/);
  for (const name of ['Acknowledge', 'Resolve', 'Mark false positive', 'Annotate', 'Re-baseline']) {
    expect(await detail.getByRole('button', { name }).count(), name).toBe(0);
  }
});

it('lists the monitor as breaching and charts its metric with the breach marked', async () => {
  await admin.goto(`${t.url}/monitors`);
  await admin.locator('tr[data-monitor="latency"] [data-monitor-state="BREACHING"]').waitFor();
  await admin.locator('tr[data-monitor="latency"] a[href^="/monitors/"]').click();
  await admin.locator('figure[data-metric="latency"] canvas').waitFor();
  expect(Number(await admin.locator('figure[data-metric="latency"]').getAttribute('data-breaches'))).toBeGreaterThanOrEqual(1);
  expect(await admin.locator('tr[data-event="ACKNOWLEDGED"]').count()).toBe(1);
  expect(await admin.getByRole('link', { name: 'dataset ml/features' }).getAttribute('href')).toBe('/datasets/ml/features');
  await screenshot(admin, path.join(artifacts, 'operations-monitor.png'));
});

it('shows a dataset late for its declared freshness', async () => {
  await t.api.gql(`mutation { setDatasetFreshness(dataset: "ml/features", expectedEvery: "1h", policy: FAIL) { id } }`);
  await t.app.services.db.execute(
    sql`update dataset_versions set created_at = now() - interval '3 hours' where dataset_id = (select id from datasets where namespace = 'ml' and name = 'features')`,
  );
  // ml/events has a newer version: it must not count for ml/features (it once did: freshnessOf's subquery)
  await admin.goto(`${t.url}/datasets/ml/features`);
  await admin.locator('[data-testid="freshness"] [data-freshness="late"]').waitFor();
  expect(await admin.getByTestId('freshness').textContent()).toMatch(/fail: runs fail/);
});

it('lists a workflow’s trigger with its firing linked to the run it started, and the version’s drift', async () => {
  await t.publishFixture('echo');
  await t.createWorkflow({ name: 'retrain', tasks: [{ name: 'say', module: 'test/echo', pool: 'parked', parameters: { message: 'hi' } }] });
  await t.api.gql(CREATE_TRIGGER, { input: { workflow: 'retrain', name: 'on-events', kind: 'DATASET_VERSION', source: 'ml/events' } });
  await t.api.gql(
    `mutation ($s: JSON) { addDatasetVersion(name: "ml/events", columns: [{ name: "x", type: "int" }], digest: "${DIGEST('c')}", sample: $s) { id } }`,
    {
      s: sample(15),
    },
  );
  const [firing] = await decided(t, 'on-events', 1);
  await admin.goto(`${t.url}/workflows/retrain`);
  const link = admin.locator('[data-trigger="on-events"] tr[data-firing="STARTED"] a');
  await link.waitFor();
  expect(await link.getAttribute('href')).toBe(`/runs/${firing.run.id}`);
  expect(await admin.locator('[data-trigger="on-events"]').getByRole('button', { name: 'Pause' }).count()).toBe(1);
  // the new version (x shifted by 15) drifted from the previous one: the dataset page's Drift section says so
  await admin.goto(`${t.url}/datasets/ml/events`);
  await admin.locator('[data-testid="drift"] tr[data-drift-column="x"][data-breached="true"]').waitFor();
});

it('creates a webhook showing its secret once, and rotation shows the previous secret’s overlap', async () => {
  await admin.goto(`${t.url}/webhooks?team=ml`);
  await admin.getByText('Team ml has no webhooks').waitFor();
  await admin.getByLabel('URL').fill('http://127.0.0.1:9/hook');
  await admin.getByRole('button', { name: 'Create webhook' }).click();
  const secret = admin.getByTestId('webhook-secret');
  await secret.waitFor();
  const first = await admin.getByTestId('secret-value').textContent();
  expect(first?.length).toBeGreaterThan(16);
  expect(await secret.textContent()).toMatch(/shown this once/);
  await admin.getByRole('button', { name: 'I stored it' }).click();
  await secret.waitFor({ state: 'detached' });
  const row = admin.locator('tr[data-webhook="http://127.0.0.1:9/hook"]');
  expect(await row.locator('[data-testid="overlap"]').count()).toBe(0);
  await admin.getByLabel(/keeps the previous secret/).fill('12');
  await row.getByRole('button', { name: 'Rotate secret' }).click();
  await row.locator('[data-testid="overlap"]').waitFor();
  const second = await admin.getByTestId('secret-value').textContent();
  expect(second).not.toBe(first);
  await screenshot(admin, path.join(artifacts, 'operations-webhooks.png'));
});

it('answers viewerCan and the team monitor list by the mutations’ own checks (API)', async () => {
  const ASK = `query ($a: ID!, $m: ID!) { alert(id: $a) { viewerCan { act { allowed reason } } } monitor(id: $m) { viewerCan { change { allowed } } } }`;
  const ask = (who: string) => clients[who]!.raw(ASK, { a: alertId, m: monitorId });
  expect((await ask('alice')).data).toEqual({
    alert: { viewerCan: { act: { allowed: true, reason: null } } },
    monitor: { viewerCan: { change: { allowed: true } } },
  });
  const vic = (await ask('vic')).data;
  expect(vic.alert.viewerCan.act).toMatchObject({ allowed: false, reason: expect.stringMatching(/may not change it/) });
  expect(vic.monitor.viewerCan.change.allowed).toBe(false);
  // another team's member reads the experimentation dataset's alert, but may not act on it; their own list is empty
  const mallory = (await ask('mallory')).data;
  expect(mallory.alert.viewerCan.act).toMatchObject({ allowed: false, reason: expect.stringContaining('belongs to team "ml"') });
  expect(mallory.monitor.viewerCan.change.allowed).toBe(false);
  expect((await clients.mallory!.gql(`{ monitors { id } }`)).monitors).toEqual([]);
  expect((await clients.alice!.gql(`{ monitors { id } }`)).monitors).toEqual([{ id: monitorId }]);
  const { triggers } = await clients.vic!.gql(`{ triggers(workflow: "retrain") { viewerCan { change { allowed } } } }`);
  expect(triggers.map((x: any) => x.viewerCan.change.allowed)).toEqual([false]);
});
