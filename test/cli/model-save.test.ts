// `atelier model save` (the saveModel mutation) against a real control plane, as an MLflow user creates a registered
// model before its first version: an empty registry says how to start, a model is created with its metric bounds and
// shown with them, a later save changes only what it names, and each mistake is refused with what to write instead.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../harness/app';
import { type CliResult, runCli, showCli } from '../harness/cli';

let t: TestApp;
const cli = (...args: string[]) => runCli({ url: t.url, token: t.app.adminToken }, args);
const MODEL = `query ($n: String!) { model(name: $n) { fullName description requirements { metric min max } versions { version } } }`;
const model = async (name: string) => (await t.api.gql(MODEL, { n: name })).model;

function refused(r: CliResult, message: RegExp) {
  expect(r.code, showCli(r)).toBe(1);
  expect(r.stderr).toMatch(message);
  expect(r.stderr).not.toMatch(/\n\s+at |Variable "\$|NaN/);
}

beforeAll(async () => {
  t = await startTestApp();
}, 60_000);

afterAll(() => t?.stop());

it('creates a model with its metric bounds, shows them, and changes only what a later save names', async () => {
  const empty = await cli('model', 'list');
  expect(empty.code, showCli(empty)).toBe(0);
  expect(empty.stdout).toMatch(/no models yet: .*`atelier model save NS\/NAME`/);

  const saved = await cli(
    'model',
    'create',
    'ml/churn',
    '--description',
    'churn classifier',
    '--require',
    'auc>=0.8',
    '--require',
    'auc<=0.99',
    '--require',
    'loss<=0.3',
  );
  expect(saved.code, showCli(saved)).toBe(0);
  expect(saved.stdout).toBe(
    'saved ml/churn: churn classifier\npromotions require: auc>=0.8 auc<=0.99 loss<=0.3\nregister a version with `atelier model register ml/churn TASK_ID OUTPUT`\n',
  );
  expect(await model('ml/churn')).toEqual({
    fullName: 'ml/churn',
    description: 'churn classifier',
    requirements: [
      { metric: 'auc', min: 0.8, max: 0.99 },
      { metric: 'loss', min: null, max: 0.3 },
    ],
    versions: [],
  });
  const shown = await cli('model', 'show', 'ml/churn');
  expect(shown.stdout).toMatch(/^ml\/churn\npromotions require: auc>=0.8 auc<=0.99 loss<=0.3\n/);

  expect((await cli('model', 'save', 'ml/churn', '--description', 'churn, weekly')).code).toBe(0);
  expect(await model('ml/churn')).toMatchObject({ description: 'churn, weekly', requirements: [{ metric: 'auc' }, { metric: 'loss' }] });
  const cleared = await cli('model', 'save', 'ml/churn', '--clear-requirements');
  expect(cleared.stdout).toContain('promotions require: no metric bounds');
  expect(await model('ml/churn')).toMatchObject({ description: 'churn, weekly', requirements: [] });
});

it('refuses a bound it cannot read, contradicting flags, a bound no version could meet, and a name without a namespace', async () => {
  for (const bound of ['auc>0.8', 'auc>=', 'auc>=high', '>=0.8'])
    refused(await cli('model', 'save', 'ml/bounds', '--require', bound), /^error: --require ".*" is not a bound: write METRIC>=MIN or METRIC<=MAX, e\.g\./);
  refused(await cli('model', 'save', 'ml/bounds', '--require', 'auc>=0.8', '--clear-requirements'), /^error: --require and --clear-requirements contradict/);
  refused(
    await cli('model', 'save', 'ml/bounds', '--require', 'auc>=0.9', '--require', 'auc<=0.5'),
    /^error \[BAD_USER_INPUT\]: requirements\.0: min 0\.9 is above max 0\.5 for auc, so no version could meet it; swap them\.$/m,
  );
  refused(await cli('model', 'save', 'churn'), /^error \[BAD_USER_INPUT\]: .*namespace\/name/im);
  expect(await model('ml/bounds')).toBeNull(); // nothing was made by a refused save
});
