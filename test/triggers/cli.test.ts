// `atelier trigger …` as a user runs it: create an http trigger (its secret printed once), fire it with a payload
// mapped onto a parameter, see the firing, pause it, and delete it; a failure trigger, shown with the run that failed.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../harness/app';
import { runCli } from '../harness/cli';
import { until } from './world';

let t: TestApp;
const cli = (args: string[]) => runCli({ url: t.url, token: t.app.adminToken }, args);

beforeAll(async () => {
  t = await startTestApp();
  await Promise.all([t.publishFixture('echo'), t.publishFixture('fail')]);
  await t.createWorkflow({
    name: 'deploy',
    parameters: { reason: { default: 'none' } },
    tasks: [{ name: 'say', module: 'test/echo', pool: 'parked', parameters: { message: '${params.reason}' } }],
  });
}, 60_000);
afterAll(() => t?.stop());

it('creates, fires, shows, pauses and deletes a trigger', async () => {
  const created = await cli(['trigger', 'create', 'deploy', 'ci-done', '--on', 'http', '--map', 'reason=/why', '--max-runs-per-minute', '5']);
  expect(created.code, created.stderr).toBe(0);
  expect(created.stdout).toContain('"ci-done"  http /hooks/trigger/ci-done');
  expect(created.stdout).toMatch(/secret \(shown once; sign hooks with it\): trsec_/);

  const fired = await cli(['trigger', 'fire', 'ci-done', '--data', '{"why":"release 1.2"}', '--delivery', 'build-42']);
  expect(fired.code, fired.stderr).toBe(0);
  expect(fired.stdout).toMatch(/^signal \S+: STARTED, run \S+/);
  const shown = await cli(['trigger', 'show', 'ci-done']);
  expect(shown.stdout).toMatch(/hook\.received\s+STARTED\s+run \S+ QUEUED/);
  expect(shown.stdout).toContain('map reason←/why');

  expect((await cli(['trigger', 'pause', 'ci-done'])).stdout).toContain('PAUSED');
  expect((await cli(['trigger', 'delete', 'ci-done'])).code).toBe(0);
  expect((await t.api.gql(`{ triggers { id } }`)).triggers).toEqual([]);
});

it('creates a failure trigger (--on run-failed) whose firings name the run that failed', async () => {
  await t.createWorkflow({ name: 'breaks', tasks: [{ name: 'boom', module: 'test/fail' }] });
  const created = await cli(['trigger', 'create', 'deploy', 'on-breaks', '--on', 'run-failed', '--source', 'breaks', '--map', 'reason=/run/reason']);
  expect(created.code, created.stderr).toBe(0);
  expect(created.stdout).toContain('"on-breaks"  run-failed breaks');
  const failed = (await t.api.gql(`mutation { startRun(workflow: "breaks") { id } }`)).startRun.id as string;
  const shown = await until('the failure trigger to fire', async () => {
    t.app.services.triggers.kick();
    const out = (await cli(['trigger', 'show', 'on-breaks'])).stdout;
    return out.includes('STARTED') ? out : null;
  });
  expect(shown).toMatch(new RegExp(`run\\.failed of run ${failed}\\s+STARTED\\s+run \\S+ QUEUED`));
});
