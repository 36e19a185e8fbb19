// MLflow 3's logged models over real HTTP: the log_model sequence as MLflow 3's client issues it (test/mlflow/client.py
// log-model-v3: create → runs/outputs → linked metrics → files under the model's artifact_uri → finalize READY →
// register models:/<id>) makes an Atelier version of the model's files with lineage to the run that logged it; then
// the routes one by one (get, search with filters and pages, tags, params, artifacts, delete) and bad input: an unknown
// model id, a source run of another experiment, finalizing twice, files after READY, registering a PENDING model or
// one logged outside a run, a route that does not exist.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { eq, like } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { modelVersions } from '../../server/db/tables/registry';
import { startTestApp, type TestApp } from '../harness/app';
import type { ApiClient } from '../harness/client';

const script = path.join(path.dirname(fileURLToPath(import.meta.url)), 'client.py');
let t: TestApp;
let alice: ApiClient & { token: string };
let exp: string;
let other: string;
let runId: string;

async function call(method: string, route: string, body?: unknown, as = alice.token) {
  const res = await fetch(`${t.url}/api/2.0/mlflow/${route}`, {
    method,
    headers: { authorization: `Bearer ${as}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as any };
}
const post = (route: string, body: unknown) => call('POST', route, body);
const put = (uri: string, file: string, body: string) =>
  fetch(`${t.url}/api/2.0/mlflow-artifacts/artifacts/${uri.slice('mlflow-artifacts:/'.length)}/${file}`, {
    method: 'PUT',
    body,
    headers: { authorization: `Bearer ${alice.token}` },
  });

async function create(body: Record<string, unknown> = {}) {
  const res = await post('logged-models', { experiment_id: exp, source_run_id: runId, ...body });
  expect(res.status).toBe(200);
  return res.body.model.info as { model_id: string; artifact_uri: string; status: string };
}

beforeAll(async () => {
  t = await startTestApp();
  alice = await t.user('lm-alice');
  await t.team('lm', ['lm-alice'], ['lm']);
  exp = (await post('experiments/create', { name: 'logged-models' })).body.experiment_id;
  other = (await post('experiments/create', { name: 'logged-models-other' })).body.experiment_id;
  runId = (await post('runs/create', { experiment_id: exp, run_name: 'train' })).body.run.info.run_id;
}, 60_000);
afterAll(async () => t?.stop());

describe("MLflow 3's log_model with registered_model_name", () => {
  it('logs, finalizes and registers the model as the MLflow 3 client does; the version holds its files and its run', async () => {
    const { stdout } = await promisify(execFile)('python3', [script, 'log-model-v3'], {
      env: { PATH: process.env.PATH, MLFLOW_TRACKING_URI: t.url, MLFLOW_TRACKING_TOKEN: alice.token, MLFLOW_MODEL_NAME: 'lm/churn' },
      timeout: 30_000,
    });
    const r = JSON.parse(stdout.trim());
    expect(r).toMatchObject({
      model_id: expect.stringMatching(/^m-[0-9a-f]{32}$/),
      created_status: 'LOGGED_MODEL_PENDING',
      ready_status: 'LOGGED_MODEL_READY',
      source_run_id: r.run_id,
      params: { alpha: '0.5' },
      metrics: { acc: 0.91 },
      registrations: [{ name: 'lm/churn', version: '1' }],
      model_versions_tag: [{ name: 'lm/churn', version: '1' }],
      version: { name: 'lm/churn', version: '1', run_id: r.run_id, source: `models:/${r.model_id}`, model_id: r.model_id, status: 'READY' },
      found: [r.model_id],
      files: ['MLmodel', 'model.pkl', 'requirements.txt'],
      pickled: 'v3 weights',
      // The step's metrics logged again with model_id are links, not new points.
      acc_points: 1,
      outputs: [{ model_id: r.model_id, step: 0 }],
      // register_model("runs:/<run>/model") resolves to the run's logged model named "model": the same version.
      by_run_name: { model_id: r.model_id, version: '1' },
    });
    expect(r.download).toMatch(new RegExp(`^mlflow-artifacts:/[0-9a-f-]{36}/models/${r.model_id}/artifacts$`));
    const [version] = await t.app.services.db.select().from(modelVersions).where(eq(modelVersions.taskId, r.run_id));
    expect(version).toMatchObject({
      version: 1,
      output: `models:/${r.model_id}`,
      domain: 'experimentation',
      // From its MLmodel file: the flavor beside python_function, and the signature as JSON.
      flavor: 'sklearn',
      signature: { inputs: [{ type: 'double', name: 'x' }], outputs: [{ type: 'long' }] },
    });
    expect(version!.files.map((f) => f.path)).toEqual(['MLmodel', 'model.pkl', 'requirements.txt']);
    // Registering the same logged model again is the same content: the same version.
    const again = await post('model-versions/create', { name: 'lm/churn', source: `models:/${r.model_id}` });
    expect(again.body.model_version.version).toBe('1');
  }, 60_000);
});

describe('the logged-models routes', () => {
  it('gets, tags, logs params, lists files and deletes a model; a deleted one is missing', async () => {
    const m = await create({ name: 'clf', model_type: 'Classifier', params: [{ key: 'depth', value: '3' }], tags: [{ key: 'a', value: '1' }] });
    expect(m).toMatchObject({ status: 'LOGGED_MODEL_PENDING', artifact_uri: `mlflow-artifacts:/${exp}/models/${m.model_id}/artifacts` });
    expect((await put(m.artifact_uri, 'sub/weights.bin', 'w')).status).toBe(200);
    expect((await put(m.artifact_uri, 'MLmodel', 'flavors: {}')).status).toBe(200);
    const tagged = await call('PATCH', `logged-models/${m.model_id}/tags`, {
      tags: [
        { key: 'b', value: '2' },
        { key: 'x/y z', value: '3' },
      ],
    });
    expect(tagged.body.model.info.tags).toEqual([
      { key: 'a', value: '1' },
      { key: 'b', value: '2' },
      { key: 'x/y z', value: '3' },
    ]);
    expect((await call('DELETE', `logged-models/${m.model_id}/tags/x/y%20z`)).status).toBe(200);
    expect((await call('DELETE', `logged-models/${m.model_id}/tags/a`)).status).toBe(200);
    expect((await call('DELETE', `logged-models/${m.model_id}/tags/a`)).body.error_code).toBe('RESOURCE_DOES_NOT_EXIST');
    expect((await post(`logged-models/${m.model_id}/params`, { params: [{ key: 'lr', value: '0.1' }] })).status).toBe(200);
    const changed = await post(`logged-models/${m.model_id}/params`, { params: [{ key: 'depth', value: '4' }] });
    expect(changed).toMatchObject({ status: 400, body: { error_code: 'INVALID_PARAMETER_VALUE' } });
    const got = (await call('GET', `logged-models/${m.model_id}`)).body.model;
    expect(got.info).toMatchObject({ name: 'clf', model_type: 'Classifier', source_run_id: runId, tags: [{ key: 'b', value: '2' }] });
    expect(got.data.params).toEqual([
      { key: 'depth', value: '3' },
      { key: 'lr', value: '0.1' },
    ]);
    const root = await call('GET', `logged-models/${m.model_id}/artifacts/directories`);
    expect(root.body).toMatchObject({
      root_uri: m.artifact_uri,
      files: [
        { path: 'MLmodel', is_dir: false, file_size: 11 },
        { path: 'sub', is_dir: true },
      ],
    });
    const sub = await call('GET', `logged-models/${m.model_id}/artifacts/directories?artifact_directory_path=sub`);
    expect(sub.body.files).toEqual([{ path: 'sub/weights.bin', is_dir: false, file_size: 1 }]);
    const viaArtifacts = await fetch(`${t.url}/api/2.0/mlflow-artifacts/artifacts?path=${exp}/models/${m.model_id}/artifacts/sub`, {
      headers: { authorization: `Bearer ${alice.token}` },
    });
    expect(((await viaArtifacts.json()) as any).files).toEqual([{ path: 'weights.bin', is_dir: false, file_size: 1 }]);
    expect((await call('DELETE', `logged-models/${m.model_id}`)).status).toBe(200);
    expect(await call('GET', `logged-models/${m.model_id}`)).toMatchObject({ status: 404, body: { error_code: 'RESOURCE_DOES_NOT_EXIST' } });
  });

  it('searches by name, status, tags, params and the source run metrics, a page at a time', async () => {
    const searchExp = (await post('experiments/create', { name: 'logged-models-search' })).body.experiment_id;
    const run = (await post('runs/create', { experiment_id: searchExp })).body.run.info.run_id;
    await post('runs/log-metric', { run_id: run, key: 'f1', value: 0.8, timestamp: 1, step: 0 });
    const made = [];
    for (const i of [1, 2, 3]) {
      const m = (await post('logged-models', { experiment_id: searchExp, source_run_id: run, name: `m${i}`, tags: [{ key: 'k', value: `v${i % 2}` }] })).body
        .model.info;
      made.push(m.model_id);
    }
    await call('PATCH', `logged-models/${made[0]}`, { status: 'LOGGED_MODEL_READY' });
    const search = (filter: string, extra: Record<string, unknown> = {}) =>
      post('logged-models/search', { experiment_ids: [searchExp], filter, order_by: [{ field_name: 'name', ascending: true }], ...extra });
    const names = async (filter: string) => (await search(filter)).body.models.map((m: any) => m.info.name);
    expect(await names('')).toEqual(['m1', 'm2', 'm3']);
    expect(await names("status = 'READY'")).toEqual(['m1']);
    expect(await names("tags.k = 'v1' AND name != 'm3'")).toEqual(['m1']);
    expect(await names("name LIKE 'm%' and metrics.f1 > 0.5")).toEqual(['m1', 'm2', 'm3']);
    expect(await names('metrics.f1 > 0.9')).toEqual([]);
    const page = await search('', { max_results: 2 });
    expect(page.body.models.map((m: any) => m.info.name)).toEqual(['m1', 'm2']);
    const next = await search('', { max_results: 2, page_token: page.body.next_page_token });
    expect(next.body.models.map((m: any) => m.info.name)).toEqual(['m3']);
    expect(next.body.next_page_token).toBeUndefined();
    expect((await search('color = blue')).body.error_code).toBe('INVALID_PARAMETER_VALUE');
  });
});

describe('bad input', () => {
  it('an unknown model id, or one of another experiment in an artifact path, is missing', async () => {
    for (const id of ['m-00000000000000000000000000000000', 'not-a-model'])
      expect(await call('GET', `logged-models/${id}`)).toMatchObject({ status: 404, body: { error_code: 'RESOURCE_DOES_NOT_EXIST' } });
    const m = await create();
    const wrong = await fetch(`${t.url}/api/2.0/mlflow-artifacts/artifacts/${other}/models/${m.model_id}/artifacts/f`, {
      method: 'PUT',
      body: 'x',
      headers: { authorization: `Bearer ${alice.token}` },
    });
    expect(wrong.status).toBe(404);
  });

  it('refuses a source run of another experiment, and an unknown experiment', async () => {
    const res = await post('logged-models', { experiment_id: other, source_run_id: runId });
    expect(res).toMatchObject({ status: 400, body: { error_code: 'INVALID_PARAMETER_VALUE' } });
    expect(res.body.message).toMatch(/experiment/);
    expect((await post('logged-models', { experiment_id: '00000000-0000-4000-8000-000000000000' })).body.error_code).toBe('RESOURCE_DOES_NOT_EXIST');
  });

  it('finalizes once; files after READY are refused', async () => {
    const m = await create();
    expect((await call('PATCH', `logged-models/${m.model_id}`, { status: 'LOGGED_MODEL_READY' })).body.model.info.status).toBe('LOGGED_MODEL_READY');
    const twice = await call('PATCH', `logged-models/${m.model_id}`, { status: 'LOGGED_MODEL_UPLOAD_FAILED' });
    expect(twice).toMatchObject({ status: 400, body: { error_code: 'INVALID_STATE' } });
    expect(twice.body.message).toMatch(/already READY/);
    const late = await put(m.artifact_uri, 'late.bin', 'x');
    expect(late.status).toBe(400);
    expect(((await late.json()) as any).error_code).toBe('INVALID_STATE');
    expect((await call('PATCH', `logged-models/${m.model_id}`, { status: 'BOGUS' })).body.error_code).toBe('INVALID_PARAMETER_VALUE');
  });

  it('refuses registering a PENDING model, saying to finalize it; and one logged outside a run', async () => {
    const m = await create();
    await put(m.artifact_uri, 'model.pkl', 'pending');
    const pending = await post('model-versions/create', { name: 'lm/pending', source: `models:/${m.model_id}` });
    expect(pending).toMatchObject({ status: 400, body: { error_code: 'INVALID_STATE' } });
    expect(pending.body.message).toMatch(/PENDING.*LOGGED_MODEL_READY/);
    const loose = (await post('logged-models', { experiment_id: exp, name: 'loose' })).body.model.info;
    await put(loose.artifact_uri, 'model.pkl', 'loose');
    await call('PATCH', `logged-models/${loose.model_id}`, { status: 'LOGGED_MODEL_READY' });
    const outside = await post('model-versions/create', { name: 'lm/loose', source: `models:/${loose.model_id}` });
    expect(outside).toMatchObject({ status: 400, body: { error_code: 'INVALID_PARAMETER_VALUE' } });
    expect(outside.body.message).toMatch(/outside a run/);
    expect(await t.app.services.db.select().from(modelVersions).where(like(modelVersions.output, 'models:/%'))).toHaveLength(1);
  });

  it('a batch of model-linked metrics into a run id that is not one is a missing run', async () => {
    const res = await post('runs/log-batch', { run_id: 'nope', metrics: [{ key: 'a', value: 1, timestamp: 1, step: 0, model_id: 'm-1' }] });
    expect(res).toMatchObject({ status: 404, body: { error_code: 'RESOURCE_DOES_NOT_EXIST' } });
  });

  it('a route that does not exist answers in MLflow shape, naming it', async () => {
    const res = await call('GET', 'logged-models/m-00000000000000000000000000000000/nothing');
    expect(res).toMatchObject({ status: 404, body: { error_code: 'ENDPOINT_NOT_FOUND' } });
    expect(res.body.message).toMatch(/logged-models\/m-0+\/nothing/);
  });
});
