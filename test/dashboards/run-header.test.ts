// The run page's header at a phone's width, measured at every change of its size from the first render on, while
// its run goes QUEUED → RUNNING → SUCCEEDED and its tasks and status arrive live. Title and actions shared one row
// there, nearly full: "hello Queued" with Cancel and Clone fitted (34 px), "hello Running" did not and the actions
// went to a row of their own (82 px), "hello Succeeded" with Clone and Rerun all fitted again, so everything below the
// header jumped with each status (a loaded CI run of daily-use.test.ts saw the header 15 px shorter after its first
// render). On a phone the actions now always take a row of their own. Above the header, the bar's live indicator said
// "Connecting…" while the page's subscription connected, which wrapped the bar's first row at 390 px: the header
// moved down 31 px, and back up once live. On a phone the indicator is now its dot alone.
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ensureDashboardsBuilt } from '../../dashboards/ensure-built';
import { createNoopExecutor } from '../../executors/noop';
import { defineExecutor, succeeded } from '../../plugins/sdk';
import { startTestApp, type TestApp } from '../harness/app';
import { releaseBrowser, sharedBrowser } from '../harness/browser';

let t: TestApp;
let browser: Browser;
/** Per run id, what lets its task finish. */
const finish = new Map<string, () => void>();

// The noop executor, except that a task runs until the test lets it finish.
const noop = createNoopExecutor();
const gated = defineExecutor({
  ...noop,
  async wait(_handle, task) {
    await new Promise<void>((resolve) => finish.set(task.runId, resolve));
    return succeeded();
  },
});

beforeAll(async () => {
  [, t] = await Promise.all([ensureDashboardsBuilt({ quiet: true }), startTestApp({}, { executors: [gated] })]);
  await t.publishFixture('sleep');
  await t.createWorkflow({
    name: 'hello',
    concurrency: { maxActiveRuns: 1 },
    tasks: [{ name: 'nap', module: 'test/sleep', executor: 'noop', parameters: { ms: 0 } }],
  });
  browser = await sharedBrowser();
}, 120_000);
afterAll(async () => {
  for (const release of finish.values()) release();
  await releaseBrowser(browser);
  await t?.stop();
});

const startRun = async () => (await t.api.gql('mutation { startRun(workflow: "hello") { id } }')).startRun.id as string;
async function until(what: string, ok: () => boolean | Promise<boolean>) {
  for (let i = 0; !(await ok()); i++) {
    if (i > 1500) throw new Error(`${what}: not within 30 s`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

interface HeaderSize {
  /** From the top of the page: what moves when the bar above it changes height. */
  top: number;
  height: number;
  status: string | undefined;
  buttons: string;
}

/** A page that records the header's size each time it changes (ResizeObserver: every layout that moved it). */
async function recordingPage(width: number): Promise<Page> {
  const context = await browser.newContext({ viewport: { width, height: 844 }, locale: 'en-GB' });
  await context.addInitScript((token) => {
    localStorage.setItem('atelier-token', token);
    const sizes: HeaderSize[] = [];
    (window as unknown as { headerSizes: HeaderSize[] }).headerSizes = sizes;
    const seen = new WeakSet<Element>();
    const observer = new ResizeObserver(() => {
      const header = document.querySelector('.page-header');
      if (!header) return;
      const box = header.getBoundingClientRect();
      sizes.push({
        top: Math.round(box.top + scrollY),
        height: Math.round(box.height),
        status: (header.querySelector('[data-status]') as HTMLElement | null)?.dataset.status,
        buttons: [...header.querySelectorAll('button')].map((b) => b.textContent?.trim()).join(' | '),
      });
    });
    // the header, and the bar above it (its height moves the header)
    new MutationObserver(() => {
      for (const element of document.querySelectorAll('.page-header, .topbar'))
        if (!seen.has(element)) {
          seen.add(element);
          observer.observe(element);
        }
    }).observe(document, { subtree: true, childList: true });
  }, t.app.adminToken);
  return context.newPage();
}

const sizesOf = (page: Page) => page.evaluate(() => (window as unknown as { headerSizes: HeaderSize[] }).headerSizes);
const statusShown = (page: Page, status: string) => page.locator(`.page-header [data-status="${status}"]`).waitFor({ timeout: 30_000 });

it('keeps the run header one height at 390 px while the run goes QUEUED → RUNNING → SUCCEEDED', async () => {
  const first = await startRun();
  await until('the first run starts', () => finish.has(first));
  const held = await startRun(); // behind maxActiveRuns: QUEUED
  const page = await recordingPage(390);
  // The page's live connection waits until the test lets it through, so the page is seen connecting, then live.
  let holding = true;
  const heldBack: (() => void)[] = [];
  await page.routeWebSocket(/\/graphql$/, (ws) => {
    const server = ws.connectToServer();
    ws.onMessage((message) => server.send(message));
    server.onMessage((message) => (holding ? heldBack.push(() => ws.send(message)) : ws.send(message)));
  });
  await page.goto(`${t.url}/runs/${held}`);
  const steps: (HeaderSize & { step: string })[] = [];
  const measure = async (step: string) => {
    const header = page.locator('.page-header');
    const box = await header.evaluate((h) => {
      const r = h.getBoundingClientRect();
      return { top: Math.round(r.top + scrollY), height: Math.round(r.height) };
    });
    steps.push({
      step,
      ...box,
      status: (await header.locator('[data-status]').getAttribute('data-status')) ?? undefined,
      buttons: (await header.locator('button').allTextContents()).map((b) => b.trim()).join(' | '),
    });
  };
  await statusShown(page, 'QUEUED');
  await page.locator('.run-page table').first().waitFor(); // its tasks arrived
  await page.locator('.live-connecting').waitFor();
  await measure('queued, connecting');
  holding = false;
  for (const send of heldBack.splice(0)) send();
  await page.locator('.live-live').waitFor();
  await measure('queued, live');
  finish.get(first)!();
  await until('the held run starts', () => finish.has(held));
  await statusShown(page, 'RUNNING');
  await measure('running');
  finish.get(held)!();
  await statusShown(page, 'SUCCEEDED');
  await page.getByRole('button', { name: 'Rerun all' }).waitFor();
  await measure('succeeded');
  const changes = await sizesOf(page);
  // the first size, every later change, and each step's own measure: one place, one height
  const all = [...changes, ...steps];
  expect(new Set(all.map((s) => `${s.top} ${s.height}`)), JSON.stringify({ changes, steps })).toHaveLength(1);
  expect(steps.map((s) => s.buttons)).toEqual(['Cancel run… | Clone…', 'Cancel run… | Clone…', 'Cancel run… | Clone…', 'Clone… | Rerun all']);
  await page.context().close();
});
