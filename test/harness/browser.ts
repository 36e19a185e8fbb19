// Headless Chromium for the dashboards' tests: one per test worker process, shared by the files it runs (isolate:
// false keeps this module, and so the browser, from one file to the next), each file in contexts of its own. A launch
// and close cost ~0.2 s of CPU and ~0.5 s of wall here, and the suite's 16 browser files each launched their own.
// Playwright ends the browser when the worker exits.
import { existsSync } from 'node:fs';
import { type Browser, chromium } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

const ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

let shared: Promise<Browser> | undefined;

/**
 * This worker's Chromium, launched on first use (and again if it went away). The caller owns the contexts it opens
 * and gives them back with `releaseBrowser` when its file ends.
 */
export function sharedBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM))
    return Promise.reject(new Error(`No Chromium at ${CHROMIUM}: install Debian's (apt-get install -y chromium) or set CHROMIUM_PATH.`));
  const current = shared;
  const launch = () => chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS });
  shared = (current ?? launch())
    .then((browser) => (browser.isConnected() ? browser : launch()))
    .catch((error) => {
      shared = undefined;
      throw error;
    });
  return shared;
}

/**
 * Closes every context of the shared browser (a file's pages, with their live connections), leaving the browser for
 * the worker's next file. Files run one at a time in a worker, so every open context is the ending file's.
 */
export async function releaseBrowser(browser: Browser | undefined): Promise<void> {
  if (!browser?.isConnected()) return;
  await Promise.all(browser.contexts().map((context) => context.close().catch(() => undefined)));
}
