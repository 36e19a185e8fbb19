// `atelier run list --filter/--order-by` lists through searchRuns: runs matching a metric filter, best first; a
// malformed filter prints the server's message (its column, what it expected) and exits non-zero.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../harness/app';
import { runCli, showCli } from '../harness/cli';
import { seedRun } from '../tracking/seed';

let t: TestApp;
const ids: Record<string, string> = {};
const cli = (...args: string[]) => runCli({ url: t.url, token: t.app.adminToken }, args);

beforeAll(async () => {
  t = await startTestApp();
  const db = t.app.services.db;
  for (const [name, acc] of [
    ['low', 0.5],
    ['mid', 0.88],
    ['high', 0.97],
  ] as const)
    ids[name] = await seedRun(db, { name, experiment: 'list-exp', parameters: { lr: acc / 10 }, tasks: [[['acc', acc]]] });
}, 60_000);

afterAll(() => t?.stop());

it('filters and orders with the filter language, and refuses a malformed filter with its column', async () => {
  const listed = await cli('run', 'list', '--filter', 'metrics.acc > 0.8', '--order-by', 'metrics.acc DESC');
  expect(listed.code, showCli(listed)).toBe(0);
  const lines = listed.stdout.trim().split('\n');
  expect(lines.map((l) => l.split(/\s+/)[0])).toEqual([ids.high, ids.mid]);
  expect(lines[0]).toMatch(/SUCCEEDED\s+external/);

  const bad = await cli('run', 'list', '--filter', 'metrics.acc >');
  expect(bad.code).not.toBe(0);
  expect(bad.stderr).toMatch(/column 14: expected a number or a 'string'/);
  expect(bad.stdout).toBe('');
});
