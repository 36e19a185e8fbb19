// An independent client: test/mlflow/client.py makes, with Python's `requests` alone, the REST calls the MLflow
// Python client makes for set_experiment/start_run/log_param/log_metric/log_batch/set_tag/log_artifact/end_run/
// get_run/search_runs, then log_model/register_model/set_registered_model_alias/load_model by alias (mlflow 2), against a real listening control plane, with only MLFLOW_TRACKING_URI and
// MLFLOW_TRACKING_TOKEN set.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runs, tasks } from '../../server/db/tables/runs';
import { startTestApp, type TestApp } from '../harness/app';

const script = path.join(path.dirname(fileURLToPath(import.meta.url)), 'client.py');
let t: TestApp;

beforeAll(async () => {
  t = await startTestApp();
}, 60_000);
afterAll(async () => t?.stop());

it('logs a run the way the MLflow Python client does, and reads it back', async () => {
  const { token } = await t.user('python-alice');
  await t.team('py', ['python-alice'], ['py']);
  const { stdout } = await promisify(execFile)('python3', [script], {
    env: { PATH: process.env.PATH, MLFLOW_TRACKING_URI: t.url, MLFLOW_TRACKING_TOKEN: token },
    timeout: 30_000,
  });
  const result = JSON.parse(stdout.trim());
  expect(result).toMatchObject({
    status: 'FINISHED',
    run_name: 'py-run',
    metrics: { loss: 'NaN', acc: 0.97 },
    params: { lr: '0.01', epochs: '3', optimizer: 'adam' },
    tags: { 'mlflow.user': 'alice', 'mlflow.source.type': 'LOCAL', dataset: 'v2', stage: 'dev' },
    history: [0.9, 0.7, 'NaN'],
    artifact: 'hello from python',
    search: [result.run_id],
    registered: { name: 'py/model', version: '1', run_id: result.run_id, status: 'READY' },
    champion: '1',
    model_files: ['MLmodel', 'model.pkl'],
    pickled: 'pickled weights',
  });
  expect(result.files).toEqual([{ path: expect.stringMatching(/\.txt$/), is_dir: false, file_size: 17 }]);
  // The same run in Atelier's API: an EXTERNAL run that ended SUCCEEDED.
  const [row] = await t.app.services.db
    .select({ task: tasks, run: runs })
    .from(tasks)
    .innerJoin(runs, eq(runs.id, tasks.runId))
    .where(eq(tasks.id, result.run_id));
  expect(row).toMatchObject({
    task: { kind: 'external', node: 'main' },
    run: { trigger: 'EXTERNAL', status: 'SUCCEEDED', workflowId: null, domain: 'experimentation' },
  });
}, 60_000);
