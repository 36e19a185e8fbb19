// Full-page screenshots of the dashboards for people to look at (under test/artifacts/), taken only with
// ATELIER_SCREENSHOTS=1: nothing asserts on them, and each costs a full-page render and PNG encoding, ~50 a run.
import type { Page } from 'playwright-core';

export const screenshotsWanted = process.env.ATELIER_SCREENSHOTS === '1';

export async function screenshot(page: Page, file: string): Promise<void> {
  if (screenshotsWanted) await page.screenshot({ path: file, fullPage: true });
}
