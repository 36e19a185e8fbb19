// MLflow's model registry routes over real HTTP: registered-models create/get/search/update (rename and delete
// answer NOT_IMPLEMENTED), model-versions create/get/search (update: NOT_IMPLEMENTED), aliases set/get (delete:
// NOT_IMPLEMENTED), get-latest-versions, and the MLflow 2 register_model flow: runs/create, artifacts uploaded
// under `model/`, runs/update FINISHED, model-versions/create with source runs:/<run_id>/model → an Atelier
// version whose lineage is that task. A production alias answers PERMISSION_DENIED asking for a promotion.
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { modelVersions } from '../../server/db/tables/registry';
import { startTestApp, type TestApp } from '../harness/app';
import type { ApiClient } from '../harness/client';

let t: TestApp;
let alice: ApiClient & { token: string };
let bob: ApiClient & { token: string };
let exp: string;
let runId: string;

async function call(method: string, path: string, body?: unknown, as = alice.token) {
  const res = await fetch(`${t.url}/api/2.0/mlflow/${path}`, {
    method,
    headers: { authorization: `Bearer ${as}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as any };
}
const post = (path: string, body: unknown, as?: string) => call('POST', path, body, as);
const get = (path: string, query: Record<string, string>, as?: string) => call('GET', `${path}?${new URLSearchParams(query)}`, undefined, as);
const put = (run: string, path: string, body: string) =>
  fetch(`${t.url}/api/2.0/mlflow-artifacts/artifacts/${exp}/${run}/artifacts/${path}`, {
    method: 'PUT',
    body,
    headers: { authorization: `Bearer ${alice.token}` },
  });

/** What mlflow 2's log_model does: a run, the model's files under `model/`, the history tag; then the run ends. */
async function loggedRun(content: string, end = true) {
  const id = (await post('runs/create', { experiment_id: exp, run_name: 'train' })).body.run.info.run_id as string;
  expect((await put(id, 'model/MLmodel', 'flavors:\n  sklearn: {}\n')).status).toBe(200);
  expect((await put(id, 'model/model.pkl', content)).status).toBe(200);
  await post('runs/set-tag', { run_id: id, key: 'mlflow.log-model.history', value: '[{"artifact_path": "model"}]' });
  await post('runs/log-metric', { run_id: id, key: 'acc', value: 0.93, timestamp: 1, step: 0 });
  const dataset = { name: 'churn-train', digest: `d-${content}`, source_type: 'local', source: '{"uri": "/data/churn.parquet"}' };
  await post('runs/log-inputs', { run_id: id, datasets: [{ tags: [{ key: 'mlflow.data.context', value: 'training' }], dataset }] });
  if (end) expect((await post('runs/update', { run_id: id, status: 'FINISHED', end_time: 2 })).status).toBe(200);
  return id;
}

beforeAll(async () => {
  t = await startTestApp();
  alice = await t.user('reg-alice');
  bob = await t.user('reg-bob');
  await t.team('ml', ['reg-alice', 'reg-bob'], ['ml']);
  await t.api.gql(`mutation { grantDomain(team: "ml", domain: production) { id } }`);
  exp = (await post('experiments/create', { name: 'registry-exp' })).body.experiment_id;
  runId = await loggedRun('weights-1');
}, 60_000);
afterAll(async () => t?.stop());

describe('registered models', () => {
  it('creates a namespace/name model once; a free-text name says the form to use', async () => {
    const made = await post('registered-models/create', { name: 'ml/churn', description: 'churn model' });
    expect(made.status).toBe(200);
    expect(made.body.registered_model).toMatchObject({ name: 'ml/churn', description: 'churn model', user_id: 'reg-alice', latest_versions: [], aliases: [] });
    expect(await post('registered-models/create', { name: 'ml/churn' })).toMatchObject({ status: 400, body: { error_code: 'RESOURCE_ALREADY_EXISTS' } });
    const free = await post('registered-models/create', { name: 'Churn Model' });
    expect(free).toMatchObject({ status: 400, body: { error_code: 'INVALID_PARAMETER_VALUE' } });
    expect(free.body.message).toMatch(/namespace\/name/);
    const tagged = await post('registered-models/create', { name: 'ml/tagged', tags: [{ key: 'a', value: 'b' }] });
    expect(tagged.body.error_code).toBe('INVALID_PARAMETER_VALUE');
  });

  it('gets, updates the description, searches by name; rename and delete are refused as not implemented', async () => {
    expect((await get('registered-models/get', { name: 'ml/churn' })).body.registered_model.name).toBe('ml/churn');
    expect(await get('registered-models/get', { name: 'ml/nope' })).toMatchObject({ status: 404, body: { error_code: 'RESOURCE_DOES_NOT_EXIST' } });
    const updated = await call('PATCH', 'registered-models/update', { name: 'ml/churn', description: 'predicts churn' });
    expect(updated.body.registered_model.description).toBe('predicts churn');
    await post('registered-models/create', { name: 'ml/other' });
    const found = await get('registered-models/search', { filter: "name LIKE 'ml/%'", max_results: '1' });
    expect(found.body.registered_models.map((m: any) => m.name)).toEqual(['ml/churn']);
    const next = await get('registered-models/search', { filter: "name LIKE 'ml/%'", max_results: '1', page_token: found.body.next_page_token });
    expect(next.body.registered_models.map((m: any) => m.name)).toEqual(['ml/other']);
    expect((await get('registered-models/search', { filter: "tags.a = 'b'" })).body.error_code).toBe('INVALID_PARAMETER_VALUE');
    expect(await post('registered-models/rename', { name: 'ml/churn', new_name: 'ml/x' })).toMatchObject({
      status: 501,
      body: { error_code: 'NOT_IMPLEMENTED' },
    });
    expect(await call('DELETE', 'registered-models/delete', { name: 'ml/other' })).toMatchObject({ status: 501, body: { error_code: 'NOT_IMPLEMENTED' } });
  });
});

describe('register_model', () => {
  it('registers runs:/<run_id>/model as an Atelier version whose lineage is that task', async () => {
    const made = await post('model-versions/create', {
      name: 'ml/churn',
      source: `runs:/${runId}/model`,
      run_id: runId,
      description: 'first',
      tags: [{ key: 'framework', value: 'sklearn' }],
    });
    expect(made.status).toBe(200);
    expect(made.body.model_version).toMatchObject({
      name: 'ml/churn',
      version: '1',
      status: 'READY',
      current_stage: 'None',
      run_id: runId,
      source: `runs:/${runId}/model`,
      description: 'first',
      tags: [{ key: 'framework', value: 'sklearn' }],
      user_id: 'reg-alice',
    });
    const [row] = await t.app.services.db.select().from(modelVersions).where(eq(modelVersions.taskId, runId));
    expect(row).toMatchObject({ version: 1, output: 'model', domain: 'experimentation' });
    expect(row!.files.map((f) => f.path)).toEqual(['MLmodel', 'model.pkl']);
    const { modelVersion } = await alice.gql(
      `{ modelVersion(ref: "ml/churn@1") { lineage { task { id } metrics { name } loggedDatasets { name digest sourceType source context taskId } } } }`,
    );
    expect(modelVersion.lineage).toMatchObject({ task: { id: runId }, metrics: [{ name: 'acc' }] });
    // What the run's MLflow client declared it trained on (runs/log-inputs) travels with the version.
    expect(modelVersion.lineage.loggedDatasets).toEqual([
      { name: 'churn-train', digest: 'd-weights-1', sourceType: 'local', source: '{"uri": "/data/churn.parquet"}', context: 'training', taskId: runId },
    ]);
  });

  it('the same content through its mlflow-artifacts source is the same version', async () => {
    const again = await post('model-versions/create', { name: 'ml/churn', source: `mlflow-artifacts:/${exp}/${runId}/artifacts/model`, run_id: runId });
    expect(again.body.model_version.version).toBe('1');
    const v2 = await post('model-versions/create', { name: 'ml/churn', source: `runs:/${await loggedRun('weights-2')}/model` });
    expect(v2.body.model_version.version).toBe('2');
  });

  it('refuses a running run (INVALID_STATE, saying to end it), a mismatched run_id, a source without a folder, an unknown models:/', async () => {
    const running = await loggedRun('weights-3', false);
    const early = await post('model-versions/create', { name: 'ml/churn', source: `runs:/${running}/model`, run_id: running });
    expect(early).toMatchObject({ status: 400, body: { error_code: 'INVALID_STATE' } });
    expect(early.body.message).toMatch(/end the run/);
    expect((await post('model-versions/create', { name: 'ml/churn', source: `runs:/${runId}/model`, run_id: running })).body.error_code).toBe(
      'INVALID_PARAMETER_VALUE',
    );
    expect((await post('model-versions/create', { name: 'ml/churn', source: `runs:/${runId}` })).body.message).toMatch(/artifact_path/);
    expect((await post('model-versions/create', { name: 'ml/churn', source: 'models:/m-123' })).body.error_code).toBe('RESOURCE_DOES_NOT_EXIST');
    expect((await post('model-versions/create', { name: 'ml/churn', source: 'models:/ml/churn/1' })).body.message).toMatch(/registered model version/);
    const missing = await post('model-versions/create', { name: 'ml/churn', source: `runs:/${runId}/nothing-here` });
    expect(missing).toMatchObject({ status: 404, body: { error_code: 'RESOURCE_DOES_NOT_EXIST' } });
  });

  it('gets, searches by name and run_id, answers the latest versions; update is not implemented', async () => {
    expect((await get('model-versions/get', { name: 'ml/churn', version: '1' })).body.model_version.run_id).toBe(runId);
    expect((await get('model-versions/get', { name: 'ml/churn', version: '9' })).body.error_code).toBe('RESOURCE_DOES_NOT_EXIST');
    const byName = await get('model-versions/search', { filter: "name = 'ml/churn'" });
    expect(byName.body.model_versions.map((v: any) => v.version)).toEqual(['2', '1']);
    const byRun = await post('model-versions/search', { filter: `run_id = '${runId}'`, max_results: 200_000 });
    expect(byRun.body.model_versions.map((v: any) => v.version)).toEqual(['1']);
    const both = await post('model-versions/search', {
      filter: `name='ml/churn' AND run_id IN ('${runId}', '00000000-0000-4000-8000-000000000000')`,
      order_by: ['version_number ASC'],
    });
    expect(both.body.model_versions.map((v: any) => v.version)).toEqual(['1']);
    const ordered = await get('model-versions/search', { filter: "name ILIKE 'ML/%'", order_by: 'version_number ASC', max_results: '1' });
    expect(ordered.body.model_versions.map((v: any) => v.version)).toEqual(['1']);
    expect(ordered.body.next_page_token).toBeTruthy();
    expect((await get('model-versions/search', { order_by: 'size DESC' })).body.error_code).toBe('INVALID_PARAMETER_VALUE');
    const latest = await post('registered-models/get-latest-versions', { name: 'ml/churn', stages: ['None'] });
    expect(latest.body.model_versions.map((v: any) => v.version)).toEqual(['2']);
    expect((await get('registered-models/get', { name: 'ml/churn' })).body.registered_model.latest_versions[0].version).toBe('2');
    expect((await call('PATCH', 'model-versions/update', { name: 'ml/churn', version: '1', description: 'x' })).body.error_code).toBe('NOT_IMPLEMENTED');
  });
});

it('answers where MLflow downloads a version (models:/ loading), while its run still holds those files', async () => {
  const id = await loggedRun('weights-dl');
  await post('model-versions/create', { name: 'ml/dl', source: `runs:/${id}/model` });
  const uri = await get('model-versions/get-download-uri', { name: 'ml/dl', version: '1' });
  expect(uri.body).toEqual({ artifact_uri: `mlflow-artifacts:/${exp}/${id}/artifacts/model` });
  const listed = await fetch(`${t.url}/api/2.0/mlflow-artifacts/artifacts?${new URLSearchParams({ path: `${exp}/${id}/artifacts/model` })}`, {
    headers: { authorization: `Bearer ${alice.token}` },
  });
  expect(((await listed.json()) as any).files.map((f: any) => f.path)).toEqual(['MLmodel', 'model.pkl']);
  expect((await put(id, 'model/model.pkl', 'overwritten')).status).toBe(200);
  const changed = await get('model-versions/get-download-uri', { name: 'ml/dl', version: '1' });
  expect(changed).toMatchObject({ status: 400, body: { error_code: 'INVALID_STATE' } });
  expect(changed.body.message).toMatch(/overwritten/);
});

describe('aliases', () => {
  it('sets an alias and gets the version by it; delete is not implemented', async () => {
    expect(await post('registered-models/alias', { name: 'ml/churn', alias: 'champion', version: '1' })).toMatchObject({ status: 200, body: {} });
    const byAlias = await get('registered-models/alias', { name: 'ml/churn', alias: 'champion' });
    expect(byAlias.body.model_version).toMatchObject({ version: '1', aliases: ['champion'] });
    expect((await get('registered-models/get', { name: 'ml/churn' })).body.registered_model.aliases).toEqual([{ alias: 'champion', version: '1' }]);
    expect((await get('registered-models/alias', { name: 'ml/churn', alias: 'nope' })).body.error_code).toBe('RESOURCE_DOES_NOT_EXIST');
    expect((await call('DELETE', 'registered-models/alias', { name: 'ml/churn', alias: 'champion' })).body.error_code).toBe('NOT_IMPLEMENTED');
  });

  it('a production alias moves only by promotion: setting it answers PERMISSION_DENIED asking for one', async () => {
    const { requestModelPromotion } = await alice.gql(
      `mutation { requestModelPromotion(model: "ml/churn", version: "1", alias: "prod", reason: "ready") { id } }`,
    );
    await bob.gql(`mutation ($id: ID!) { decideModelPromotion(id: $id, approve: true) { state } }`, { id: requestModelPromotion.id });
    expect((await get('registered-models/alias', { name: 'ml/churn', alias: 'prod' })).body.model_version.version).toBe('1');
    const moved = await post('registered-models/alias', { name: 'ml/churn', alias: 'prod', version: '2' });
    expect(moved).toMatchObject({ status: 403, body: { error_code: 'PERMISSION_DENIED' } });
    expect(moved.body.message).toMatch(/promotion/);
    expect((await get('registered-models/alias', { name: 'ml/churn', alias: 'prod' })).body.model_version.version).toBe('1');
  });
});

it('an unsupported registry endpoint answers ENDPOINT_NOT_FOUND listing the supported ones', async () => {
  const res = await post('registered-models/set-tag', { name: 'ml/churn', key: 'a', value: 'b' });
  expect(res).toMatchObject({ status: 404, body: { error_code: 'ENDPOINT_NOT_FOUND' } });
  expect(res.body.message).toMatch(/model-versions\/create/);
});

it('a logged-models route MLflow 3 does not have answers ENDPOINT_NOT_FOUND listing the ones served (test/mlflow/logged-models.test.ts covers them)', async () => {
  const res = await post('logged-models/m-0/unknown', { experiment_id: exp, name: 'model', source_run_id: runId });
  expect(res).toMatchObject({ status: 404, body: { error_code: 'ENDPOINT_NOT_FOUND' } });
  expect(res.body.message).toMatch(/POST logged-models\/search/);
});
