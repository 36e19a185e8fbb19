// The world the daily-use browser tests (daily-use*.test.ts) look at, built through the API on a real control plane:
// an admin, a viewer (vera) and a member (mia, of team crm owning namespace crm); a workflow run twice (the second
// from cache), a schedule that fired once and is paused, a module with two versions (its `latest` moved once, its
// `beta` never), a workflow with two versions, a dataset written by a task (two versions), and mia's declassification
// request. Pages are opened signed in (the token in localStorage, as the sign-in form leaves it) at a given width.
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { ensureDashboardsBuilt } from '../../dashboards/ensure-built';
import { packDirectory } from '../../server/artifacts/archive';
import { startTestApp, type TestApp } from '../harness/app';
import { releaseBrowser, sharedBrowser } from '../harness/browser';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const artifacts = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'artifacts');
export const widths = [1440, 390] as const;
const DIGEST = `sha256:${'e'.repeat(64)}`;

export interface World {
  t: TestApp;
  browser: Browser;
  tokens: { admin: string; viewer: string; mia: string };
  runs: { first: string; cached: string; scheduled: string; derive: string };
  scheduleId: string;
  declassificationId: string;
  /** A signed-in page for a role at a width (one per pair, reused). */
  page(role: 'admin' | 'viewer' | 'mia', width: number): Promise<Page>;
  /** A fresh context with the role's token stored (`seed: false`: signed out, to sign in through the form). */
  context(role: 'admin' | 'viewer' | 'mia', width: number, options?: { seed?: boolean }): Promise<BrowserContext>;
  consoleErrors: string[];
  stop(): Promise<void>;
}

async function publishWriter(t: TestApp, dir: string, description: string) {
  await mkdir(dir, { recursive: true });
  await writeFile(
    path.join(dir, 'atelier.module.yaml'),
    `namespace: lab\nname: writer\ndescription: ${description}\nentrypoint: main.mjs\nruntime: node\noutputs:\n  - name: result\n    dataset: lab/derived\n    columns: [{ name: n, from: [] }]\n`,
  );
  await writeFile(
    path.join(dir, 'main.mjs'),
    `import { writeSync } from 'node:fs';\nconsole.log('writing');\nwriteSync(Number(process.env.ATELIER_PROGRESS_FD), JSON.stringify({ output: { name: 'result', value: 'rows:' + Date.now() } }) + '\\n');\n`,
  );
  const r = await t.api.upload(
    `mutation ($artifact: File!) { publishModuleVersion(artifact: $artifact, tags: ["latest"]) { version { ref } } }`,
    {},
    'artifact',
    await packDirectory(dir),
  );
  if (r.errors) throw new Error(JSON.stringify(r.errors));
}

async function runToEnd(t: TestApp, workflow: string, refreshCache = false): Promise<string> {
  const { startRun } = await t.api.gql(`mutation ($w: String!, $r: Boolean) { startRun(workflow: $w, refreshCache: $r) { id } }`, {
    w: workflow,
    r: refreshCache,
  });
  await waitForRun(t, startRun.id);
  return startRun.id;
}

/** Waits for a run to end; the world is built from runs that succeeded, so any other end stops the build, saying why. */
async function waitForRun(t: TestApp, id: string) {
  for (;;) {
    const { run } = await t.api.gql(`query ($id: ID!) { run(id: $id) { status tasks { node status message exitCode reusedFromTaskId } } }`, { id });
    if (run.status === 'SUCCEEDED') return;
    if (!['QUEUED', 'RUNNING'].includes(run.status)) throw new Error(`run ${id} ended ${run.status}: ${JSON.stringify(run.tasks)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

export async function buildWorld(): Promise<World> {
  if (!existsSync(CHROMIUM)) throw new Error(`No Chromium at ${CHROMIUM}: install Debian's (apt-get install -y chromium) or set CHROMIUM_PATH.`);
  await mkdir(artifacts, { recursive: true });
  // Chromium starts while the world is built.
  const launching = sharedBrowser();
  launching.catch(() => undefined); // awaited below; not an unhandled rejection if building the world fails first
  const [, t] = await Promise.all([ensureDashboardsBuilt({ quiet: true }), startTestApp()]);
  const scratch = await mkdtemp(path.join(os.tmpdir(), 'atelier-daily-'));
  const viewer = await t.user('vera', 'viewer');
  const mia = await t.user('mia');
  await t.team('crm', ['mia'], ['crm']);

  await t.publishFixture('echo');
  await t.api.gql(`mutation { setModuleTag(module: "test/echo", tag: "beta", version: "1") { tag } }`);
  await publishWriter(t, path.join(scratch, 'w1'), 'Writes lab/derived.');
  await publishWriter(t, path.join(scratch, 'w2'), 'Writes lab/derived, faster.');
  await t.createWorkflow({ name: 'hello', description: 'Says hello.', tasks: [{ name: 'greet', module: 'test/echo', parameters: { message: 'hi' } }] });
  await t.createWorkflow({
    name: 'hello',
    description: 'Says hello twice.',
    tasks: [{ name: 'greet', module: 'test/echo', parameters: { message: 'hi', steps: 2 } }],
  });
  await t.createWorkflow({ name: 'derive', tasks: [{ name: 'write', module: 'lab/writer' }] });

  // The two workflows' runs go on side by side (each pair in order: the second hello is the first's cache hit).
  const [[first, cached], derive] = await Promise.all([
    runToEnd(t, 'hello').then(async (id) => [id, await runToEnd(t, 'hello')] as const),
    runToEnd(t, 'derive').then(async (id) => {
      await runToEnd(t, 'derive', true); // executed again (not from cache), so it writes version 2
      return id;
    }),
  ]);

  const { createSchedule } = await t.api.gql(`mutation { createSchedule(input: { workflow: "hello", name: "every-second", cron: "* * * * * *" }) { id } }`);
  let scheduled = '';
  while (!scheduled) {
    const { schedule } = await t.api.gql(`query ($id: ID!) { schedule(id: $id) { fires(limit: 1) { run { id } } } }`, { id: createSchedule.id });
    scheduled = schedule.fires[0]?.run?.id ?? '';
    if (!scheduled) await new Promise((r) => setTimeout(r, 200));
  }
  await t.api.gql(`mutation ($id: ID!) { pauseSchedule(id: $id) { id } }`, { id: createSchedule.id });
  await waitForRun(t, scheduled);

  await t.api.gql(
    `mutation ($c: [DatasetColumnInput!]!) { createDataset(name: "crm/orders", domain: experimentation, columns: $c, digest: "${DIGEST}") { id } }`,
    {
      c: [
        { name: 'id', type: 'int', label: { level: 'PUBLIC' } },
        { name: 'email', type: 'string', label: { level: 'CONFIDENTIAL' } },
      ],
    },
  );
  const { requestDeclassification } = await mia.gql(
    `mutation { requestDeclassification(dataset: "crm/orders", column: "email", label: { level: INTERNAL }, reason: "hashed now") { id } }`,
  );

  const browser = await launching;
  const tokens = { admin: t.app.adminToken, viewer: viewer.token, mia: mia.token };
  const consoleErrors: string[] = [];
  const context = async (role: keyof typeof tokens, width: number, { seed = true } = {}) => {
    const c = await browser.newContext({ viewport: { width, height: width < 800 ? 844 : 900 }, acceptDownloads: true });
    if (seed)
      await c.addInitScript((token) => {
        try {
          if (!sessionStorage.getItem('seeded')) {
            sessionStorage.setItem('seeded', '1');
            localStorage.setItem('atelier-token', token);
          }
        } catch {
          // about:blank has no storage
        }
      }, tokens[role]);
    c.on('weberror', (e) => consoleErrors.push(`${role}@${width}: ${e.error().message}`));
    return c;
  };
  const pages = new Map<string, Promise<Page>>();
  return {
    t,
    browser,
    tokens,
    runs: { first, cached, scheduled, derive },
    scheduleId: createSchedule.id,
    declassificationId: requestDeclassification.id,
    consoleErrors,
    context,
    page(role, width) {
      const key = `${role}@${width}`;
      if (!pages.has(key))
        pages.set(
          key,
          context(role, width).then((c) => c.newPage()),
        );
      return pages.get(key)!;
    },
    async stop() {
      await releaseBrowser(browser);
      await t.stop();
      await rm(scratch, { recursive: true, force: true }); // the modules' folders, published by then
    },
  };
}

/**
 * Opens a path of the app and waits for its heading (the page rendered, not a loading state; a refusal has an h2).
 * A page already showing the app navigates client-side, as its links do (dashboards/src/router.tsx listens to
 * popstate): a full page.goto loaded and started the whole bundle again (0.99 s a page against 0.61 s, ~60 pages a run). The
 * old page is unmounted first (through an address no route matches), so its heading or buttons never pass for the
 * new page's.
 */
export async function openPage(page: Page, url: string, heading?: RegExp | string) {
  const target = new URL(url);
  const inApp =
    page.url().startsWith(`${target.origin}/`) && (await page.evaluate(() => document.querySelector('nav[aria-label="Main"]') !== null).catch(() => false));
  if (inApp)
    await page.evaluate(async (to) => {
      const go = async (path: string, push: boolean) => {
        if (push) history.pushState(null, '', path);
        else history.replaceState(null, '', path);
        dispatchEvent(new PopStateEvent('popstate'));
        await new Promise((r) => setTimeout(r, 0)); // Preact renders in a microtask: done after a macrotask
      };
      await go('/__test-unmount', true);
      await go(to, false);
      scrollTo(0, 0); // where a fresh load starts
    }, target.pathname + target.search);
  else await page.goto(url);
  const title = heading ? page.getByRole('heading', { level: 1, name: heading }) : page.locator('main').locator('h1, h2');
  await title.first().waitFor({ timeout: 30_000 });
  await page.waitForFunction(() => !document.querySelector('.state.loading'), undefined, { timeout: 30_000 });
}
