// Whose files a task's folder holds: the attempt that produced its result, never an earlier failed attempt's (which
// logged files through MLflow from inside before it failed), and, for a task served from cache, the files of the
// task whose result it reused, so a model registers from it with lineage to that task.
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../harness/app';
import { type ApiClient, RUN_EVENTS } from '../harness/client';
import { publish, REGISTER, setUpRegistryWorld } from './setup';

let t: TestApp;
let alice: ApiClient & { token: string };

const ended = (e: any) => e.runEvents.__typename === 'RunStatusEvent' && ['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(e.runEvents.runStatus);

beforeAll(async () => {
  t = await startTestApp();
  ({ alice } = await setUpRegistryWorld(t));
  const scratch = await mkdtemp(path.join(os.tmpdir(), 'atelier-attempt-artifacts-'));
  // Attempt 1 logs a file into the model's folder through MLflow from inside (as mlflow.log_artifact does), then
  // fails; attempt 2 leaves the model's own file in ATELIER_ARTIFACTS_DIR and succeeds.
  await publish(
    t,
    scratch,
    'flaky-files',
    '',
    [
      `import { mkdirSync, writeFileSync } from 'node:fs';`,
      `const attempt = Number(process.env.ATELIER_ATTEMPT);`,
      `if (attempt === 1) {`,
      `  const url = process.env.MLFLOW_TRACKING_URI + '/api/2.0/mlflow-artifacts/artifacts/0/' + process.env.MLFLOW_RUN_ID + '/artifacts/model/stale.bin';`,
      `  const res = await fetch(url, { method: 'PUT', headers: { authorization: 'Bearer ' + process.env.MLFLOW_TRACKING_TOKEN }, body: 'attempt 1' });`,
      `  if (!res.ok) { console.error('logging failed', res.status, await res.text()); process.exit(2); }`,
      `  process.exit(1);`,
      `}`,
      `mkdirSync(process.env.ATELIER_ARTIFACTS_DIR + '/model', { recursive: true });`,
      `writeFileSync(process.env.ATELIER_ARTIFACTS_DIR + '/model/w.bin', 'attempt ' + attempt);`,
      `output('done', attempt);`,
    ].join('\n'),
  );
  await t.createWorkflow({
    name: 'flaky-files',
    domain: 'experimentation',
    tasks: [{ name: 'fit', module: 'ml/flaky-files', retries: 1, retryDelaySeconds: 0, settings: { local: { network: true } } }],
  });
}, 120_000);

afterAll(async () => {
  await t?.stop();
});

async function runOnce(workflow: string) {
  const { startRun } = await alice.gql(`mutation ($w: String!) { startRun(workflow: $w) { id } }`, { w: workflow });
  await alice.subscribe(RUN_EVENTS, { runId: startRun.id }, ended);
  const { run } = await alice.gql(`query ($id: ID!) { run(id: $id) { id status tasks { id status attempt message cacheHit { __typename } logs { line } } } }`, {
    id: startRun.id,
  });
  return run;
}

const listed = async (taskId: string, dir: string) => {
  const res = await fetch(`${t.url}/api/2.0/mlflow-artifacts/artifacts?path=${encodeURIComponent(`0/${taskId}/artifacts/${dir}`)}`, {
    headers: { authorization: `Bearer ${alice.token}` },
  });
  expect(res.status).toBe(200);
  return (((await res.json()) as { files?: { path: string }[] }).files ?? []).map((f) => f.path);
};

let producer = '';

it("holds only the succeeding attempt's files: a failed attempt's logged files are not the retry's, nor a model's registered from it", async () => {
  const run = await runOnce('flaky-files');
  const [task] = run.tasks;
  expect(task, JSON.stringify(task)).toMatchObject({ status: 'SUCCEEDED', attempt: 2 });
  producer = task.id;
  expect(await listed(task.id, 'model')).toEqual(['w.bin']);
  const { registerModelVersion } = await alice.gql(REGISTER, { m: 'ml/flaky', t: task.id, o: 'model' });
  const { modelVersion } = await alice.gql(`query ($r: String!) { modelVersion(ref: $r) { files { path size } } }`, { r: registerModelVersion.version.ref });
  expect(modelVersion.files).toEqual([{ path: 'w.bin', size: 9 }]);
});

it('finds, for a task served from cache, the files of the task whose result it reused, with lineage to that task', async () => {
  const run = await runOnce('flaky-files');
  const [task] = run.tasks;
  expect(task.cacheHit, JSON.stringify(task)).not.toBeNull();
  expect(await listed(task.id, 'model')).toEqual(['w.bin']);
  const { registerModelVersion } = await alice.gql(REGISTER, { m: 'ml/flaky-cached', t: task.id, o: 'model' });
  const { modelVersion } = await alice.gql(`query ($r: String!) { modelVersion(ref: $r) { files { path } lineage { task { id } } } }`, {
    r: registerModelVersion.version.ref,
  });
  expect(modelVersion).toEqual({ files: [{ path: 'w.bin' }], lineage: { task: { id: producer } } });
});
