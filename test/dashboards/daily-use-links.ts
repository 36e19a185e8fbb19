// Daily use of the dashboards in Chromium (issue 16, items 8 and 9), at 1440 and 390 px, as admin and viewer:
// everything named links to its page (a schedule's runs, a cache hit's source run, audit subjects, the task that
// wrote a dataset version), a signed-in session opens a shared link in a new tab, and the views users expect (a
// workflow's version history with a diff, module version comparison and the runs using a version, a dataset version
// picker and lineage, times with their zone that keep ticking, log lines with times and a download, time saved in
// the right unit). The world is built in daily-use-setup.ts; daily-use.test.ts runs these on its own.
import { readFile } from 'node:fs/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import { openPage, type World } from './daily-use-setup';

const LONG = 300_000;

// Links do not depend on the width: each view is checked at one of the two (alternating); the layout checks in
// daily-use.test.ts cover both widths.
/** Registered by daily-use.test.ts on its world (one world, built once, serves both groups of tests). */
export function linkTests(world: () => World): void {
  describe('daily use: links and the views users expect', () => {
    let w: World;
    beforeAll(() => {
      w = world();
    });

    it.each([1440])(
      'shows the schedule that started a run, linked to its row, for a viewer at %i px',
      async (width) => {
        const page = await w.page('viewer', width);
        await openPage(page, `${w.t.url}/runs?trigger=SCHEDULE`, 'Runs');
        const link = page.locator(`tr[data-run-id="${w.runs.scheduled}"]`).getByRole('link', { name: 'schedule every-second' });
        await link.click();
        await page.waitForURL((url) => url.pathname === '/schedules' && url.searchParams.get('schedule') === w.scheduleId);
        await page.locator('tr.selected[data-schedule="every-second"]').waitFor();
        await page.getByRole('link', { name: 'all scheduled runs' }).first().waitFor();
        await openPage(page, `${w.t.url}/runs/${w.runs.scheduled}`, /hello/);
        await page.locator('dl.summary').getByRole('link', { name: 'schedule every-second' }).waitFor();
      },
      LONG,
    );

    it.each([390])(
      'links a cache hit to the run it reused, and a task id to its run, at %i px',
      async (width) => {
        const page = await w.page('viewer', width);
        await openPage(page, `${w.t.url}/runs/${w.runs.cached}?task=greet`, /hello/);
        await page.locator(`a[href^="/runs/${w.runs.first}"]`).first().waitFor();
        const { run } = await w.t.api.gql(`query ($id: ID!) { run(id: $id) { tasks { id node } } }`, { id: w.runs.first });
        await page.goto(`${w.t.url}/tasks/${run.tasks[0].id}`);
        await page.waitForURL((url) => url.pathname === `/runs/${w.runs.first}` && url.searchParams.get('task') === 'greet');
      },
      LONG,
    );

    it(
      'links audit subjects to their pages',
      async () => {
        const page = await w.page('admin', 1440);
        await openPage(page, `${w.t.url}/audit?subject=crm/orders`, 'Audit');
        await page.getByRole('link', { name: 'dataset:crm/orders.email' }).first().click();
        await page.waitForURL((url) => url.pathname === '/datasets/crm/orders');
      },
      LONG,
    );

    it.each([1440])(
      'links a derived dataset’s versions to the task that wrote them, picks a version and draws its lineage, at %i px',
      async (width) => {
        const page = await w.page('viewer', width);
        await openPage(page, `${w.t.url}/datasets/lab/derived`, /lab\/derived/);
        const versions = page.getByRole('table', { name: 'Versions' });
        // Both versions' producers, read as the rows show them (a failure prints what the rows said).
        const producers = versions.locator('tbody tr').locator('td:nth-child(3)');
        await expect
          .poll(() => producers.allTextContents())
          .toEqual([expect.stringMatching(/^task write of derive /), expect.stringMatching(/^task write of derive /)]);
        await page.getByLabel('Show version').selectOption('1');
        await page.getByRole('table', { name: 'Columns of version 1' }).locator('[data-version-column="n"]').waitFor();
        await page.locator('[data-node="task:write"]').waitFor();
        await page.locator('[data-node="lab/derived"]').waitFor();
        await versions
          .getByRole('link', { name: /task write of derive/ })
          .last()
          .click();
        await page.waitForURL((url) => url.pathname === `/runs/${w.runs.derive}` && url.searchParams.get('task') === 'write');
      },
      LONG,
    );

    it(
      'opens a shared link signed in in a new tab, and signs every tab out together',
      async () => {
        const context = await w.context('admin', 1440, { seed: false });
        const first = await context.newPage();
        await first.goto(w.t.url);
        await first.getByLabel('Token').fill(w.tokens.admin);
        await first.getByRole('button', { name: 'Sign in' }).click();
        await first.getByRole('heading', { name: 'Runs', level: 1 }).waitFor();
        const second = await context.newPage();
        await second.goto(`${w.t.url}/runs/${w.runs.first}`);
        await second.getByRole('heading', { name: /hello/, level: 1 }).waitFor();
        await first.getByRole('button', { name: 'Sign out' }).click();
        await second.getByText('You signed out in another tab.').waitFor();
        expect(await second.evaluate(() => localStorage.getItem('atelier-token'))).toBeNull();
        await context.close();
      },
      LONG,
    );

    it.each([390])(
      'shows a workflow’s versions and the difference between them, for a viewer at %i px',
      async (width) => {
        const page = await w.page('viewer', width);
        await openPage(page, `${w.t.url}/workflows/hello`, /hello/);
        const rows = page.getByRole('table', { name: 'Workflow versions' }).locator('tr[data-version]');
        expect(await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-version')))).toEqual(['2', '1']);
        const diff = page.getByTestId('diff').first();
        expect(await diff.locator('[data-diff="added"]').allTextContents()).toEqual(expect.arrayContaining([expect.stringContaining('"steps": 2')]));
        expect(await diff.locator('[data-diff="removed"]').allTextContents()).toEqual(expect.arrayContaining([expect.stringContaining('Says hello.')]));
      },
      LONG,
    );

    it.each([1440])(
      'compares two module versions and lists the runs that used one, at %i px',
      async (width) => {
        const page = await w.page('viewer', width);
        await openPage(page, `${w.t.url}/modules/lab/writer`, 'lab/writer');
        const diff = page.getByTestId('diff').first();
        expect(await diff.locator('[data-diff="removed"]').allTextContents()).toEqual(
          expect.arrayContaining([expect.stringContaining('Writes lab/derived."')]),
        );
        expect(await diff.locator('[data-diff="added"]').allTextContents()).toEqual(
          expect.arrayContaining([expect.stringContaining('Writes lab/derived, faster.')]),
        );
        await page.getByRole('list', { name: 'Runs using version 2' }).locator(`a[href="/runs/${w.runs.derive}"]`).waitFor();
      },
      LONG,
    );

    it(
      'writes times with their zone, keeps relative times ticking, and says time saved in its unit',
      async () => {
        const context = await w.browser.newContext({ viewport: { width: 390, height: 844 }, timezoneId: 'Asia/Tokyo', locale: 'en-US' });
        await context.addInitScript((token) => {
          try {
            localStorage.setItem('atelier-token', token);
          } catch {
            // about:blank
          }
        }, w.tokens.viewer);
        const page = await context.newPage();
        await page.clock.install();
        await openPage(page, `${w.t.url}/runs`, 'Runs');
        const time = page.locator(`tr[data-run-id="${w.runs.first}"] time`).first();
        expect(await time.getAttribute('title')).toMatch(/GMT\+9/);
        const before = await time.textContent();
        await page.clock.fastForward('02:00:00');
        await page.waitForFunction(([id, was]) => document.querySelector(`tr[data-run-id="${id}"] time`)?.textContent !== was, [w.runs.first, before] as const);
        expect(await time.textContent()).toMatch(/hours? ago/);
        await openPage(page, `${w.t.url}/savings`, 'Savings');
        expect(await page.getByTestId('hours-saved').textContent()).toMatch(/^\d+(\.\d)? (s|min|h)$/);
        await page.getByRole('table', { name: 'Savings by module' }).getByRole('link', { name: 'test/echo' }).waitFor();
        await context.close();
      },
      LONG,
    );

    it.each([390])(
      'shows each log line’s time and downloads the whole log, at %i px',
      async (width) => {
        const page = await w.page('viewer', width);
        await openPage(page, `${w.t.url}/runs/${w.runs.first}?task=greet`, /hello/);
        await page.getByRole('tab', { name: /Logs/ }).click();
        const line = page.locator('.log-line').filter({ hasText: 'echo: hi' }).first();
        await line.waitFor();
        expect(await line.locator('.log-time').textContent()).toMatch(/^\d{2}:\d{2}:\d{2}\.\d{3}$/);
        const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download' }).click()]);
        expect(download.suggestedFilename()).toBe('task-greet.log');
        const text = await readFile((await download.path())!, 'utf8');
        expect(text).toMatch(/^\d{4}-\d{2}-\d{2}T\S+Z stdout echo: hi/m);
      },
      LONG,
    );

    it('left no page error behind', () => {
      expect(w.consoleErrors).toEqual([]);
    });
  });
}
