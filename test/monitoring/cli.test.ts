// `atelier monitor|alert|observe …` as a user runs them: create a monitor, record observations, see the alert it
// opens in the inbox, acknowledge and resolve it, pause and delete the monitor; bad input says what to do.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { evaluateDueMonitors } from '../../server/monitoring/evaluator';
import { startTestApp, type TestApp } from '../harness/app';
import { runCli, showCli } from '../harness/cli';

let t: TestApp;
let token = '';
const cli = (args: string[]) => runCli({ url: t.url, token }, args);

beforeAll(async () => {
  t = await startTestApp({ ATELIER_MONITOR_EVAL_MS: '3600000' });
  token = (await t.user('alice')).token;
  await t.team('ml', ['alice'], ['ml']);
  await t.api.gql(
    `mutation { createDataset(name: "ml/features", domain: experimentation, columns: [{ name: "region", type: "string" }], digest: "sha256:${'e'.repeat(64)}") { id } }`,
  );
}, 60_000);
afterAll(() => t?.stop());

it('creates a monitor, observes, and works an alert through the inbox', async () => {
  const bad = await cli(['monitor', 'create', 'latency', 'features', 'latency', '--rule', '{"kind":"THRESHOLD","above":100}']);
  expect(bad.code).not.toBe(0);
  expect(bad.stderr).toContain('expected KIND:REF (dataset:ns/name');

  const created = await cli(['monitor', 'create', 'latency', 'dataset:ml/features', 'latency', '--rule', '{"id":"slow","kind":"THRESHOLD","above":100}']);
  expect(created.code, showCli(created)).toBe(0);
  const id = /created monitor (\S+)/.exec(created.stdout)![1]!;
  expect(created.stdout).toContain('"latency"  dataset ml/features  latency  rules slow:threshold  every 60s  team ml');
  expect((await cli(['monitor', 'list', 'dataset:ml/features'])).stdout).toContain(id);

  const observed = await cli(['observe', 'dataset:ml/features', 'latency', '250', '--dim', 'region=eu']);
  expect(observed.code, showCli(observed)).toBe(0);
  expect(observed.stdout).toBe('recorded 1 observation of latency = 250 for dataset:ml/features\n');

  await evaluateDueMonitors(t.app.services.db, { now: new Date(Date.now() + 1000) });
  const inbox = await cli(['alert', 'list']);
  expect(inbox.stdout).toMatch(/OPEN .* latency: latency mean 250 is above 100/);
  const alert = inbox.stdout.split(/\s+/)[0]!;

  expect((await cli(['alert', 'ack', alert])).stdout).toContain('ACKNOWLEDGED');
  expect((await cli(['alert', 'resolve', alert, '--reason', 'cache warmed'])).stdout).toContain('RESOLVED');
  const shown = await cli(['alert', 'show', alert]);
  expect(shown.stdout).toMatch(/RESOLVED\s+alice\s+cache warmed/);

  expect((await cli(['monitor', 'pause', id, '--reason', 'maintenance'])).stdout).toContain('PAUSED');
  const monitor = await cli(['monitor', 'show', id]);
  expect(monitor.stdout).toContain('rule slow threshold: last 250, 0 breach(es) in a row');
  expect(monitor.stdout).toMatch(/PAUSED\s+alice\s+maintenance/);
  expect((await cli(['monitor', 'delete', id])).stdout).toContain(`deleted monitor ${id} "latency"`);
});
