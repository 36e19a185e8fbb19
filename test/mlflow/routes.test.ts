// The MLflow REST routes over real HTTP: every implemented endpoint, MLflow's error shape and limits, artifacts
// (upload, download, list, `..` refused), the unknown-endpoint answer, and the GraphQL mutations for notebooks.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../harness/app';
import { RUN_EVENTS_SEQ, watchWs } from '../harness/live';

let t: TestApp;
let token: string;

beforeAll(async () => {
  t = await startTestApp();
  token = (await t.user('mlflow-alice')).token;
}, 60_000);
afterAll(async () => t?.stop());

async function call(method: string, path: string, body?: unknown, as = token) {
  const res = await fetch(`${t.url}/api/2.0/mlflow/${path}`, {
    method,
    headers: { authorization: `Bearer ${as}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as any };
}
const post = (path: string, body: unknown, as?: string) => call('POST', path, body, as);
const get = (path: string, query: Record<string, string>, as?: string) => call('GET', `${path}?${new URLSearchParams(query)}`, undefined, as);

describe('experiments', () => {
  it('creates, gets, finds by name and searches; a taken name is RESOURCE_ALREADY_EXISTS', async () => {
    const made = await post('experiments/create', { name: 'routes-exp', tags: [{ key: 'k', value: 'v' }] });
    expect(made.status).toBe(200);
    const id = made.body.experiment_id;
    expect((await get('experiments/get', { experiment_id: id })).body.experiment).toMatchObject({ name: 'routes-exp', lifecycle_stage: 'active' });
    expect((await get('experiments/get-by-name', { experiment_name: 'routes-exp' })).body.experiment.experiment_id).toBe(id);
    const again = await post('experiments/create', { name: 'routes-exp' });
    expect(again).toMatchObject({ status: 400, body: { error_code: 'RESOURCE_ALREADY_EXISTS' } });
    const missing = await get('experiments/get-by-name', { experiment_name: 'nope' });
    expect(missing).toMatchObject({ status: 404, body: { error_code: 'RESOURCE_DOES_NOT_EXIST' } });
    const found = await post('experiments/search', { filter: "name = 'routes-exp'", max_results: 10 });
    expect(found.body.experiments.map((e: any) => e.experiment_id)).toEqual([id]);
  });
});

describe('experiments’ lifecycle', () => {
  it('renames, tags, deletes and restores as MLflow’s client does; refuses others, the Default experiment and bad input', async () => {
    const id = (await post('experiments/create', { name: 'lifecycle', tags: [{ key: 'a', value: '1' }] })).body.experiment_id;
    expect((await post('experiments/update', { experiment_id: id, new_name: 'lifecycle-2' })).status).toBe(200);
    expect((await post('experiments/set-experiment-tag', { experiment_id: id, key: 'b', value: '2' })).status).toBe(200);
    expect((await post('experiments/delete-experiment-tag', { experiment_id: id, key: 'a' })).status).toBe(200);
    let { experiment } = (await get('experiments/get', { experiment_id: id })).body;
    expect(experiment).toMatchObject({ name: 'lifecycle-2', lifecycle_stage: 'active', tags: [{ key: 'b', value: '2' }] });

    expect((await post('experiments/delete', { experiment_id: id })).status).toBe(200);
    ({ experiment } = (await get('experiments/get', { experiment_id: id })).body);
    expect(experiment.lifecycle_stage).toBe('deleted');
    const deletedOnly = await post('experiments/search', { view_type: 'DELETED_ONLY', max_results: 100 });
    expect(deletedOnly.body.experiments.map((e: any) => e.experiment_id)).toContain(id);
    expect((await post('runs/create', { experiment_id: id })).body.error_code).toBe('INVALID_PARAMETER_VALUE');
    expect((await post('experiments/restore', { experiment_id: id })).status).toBe(200);
    expect((await get('experiments/get', { experiment_id: id })).body.experiment.lifecycle_stage).toBe('active');

    // Another member: PERMISSION_DENIED, nothing changed.
    const bob = (await t.user('mlflow-carol')).token;
    expect(await post('experiments/update', { experiment_id: id, new_name: 'bobs' }, bob)).toMatchObject({
      status: 403,
      body: { error_code: 'PERMISSION_DENIED' },
    });
    expect(await post('experiments/delete', { experiment_id: id }, bob)).toMatchObject({ status: 403 });
    // The Default experiment (0) is kept as it is.
    expect((await post('runs/create', { experiment_id: '0' })).status).toBe(200);
    expect((await post('experiments/delete', { experiment_id: '0' })).body).toMatchObject({
      error_code: 'INVALID_PARAMETER_VALUE',
      message: expect.stringContaining('cannot be renamed or deleted'),
    });
    for (const [path, body, code] of [
      ['experiments/update', { experiment_id: id, new_name: 'routes-exp' }, 'RESOURCE_ALREADY_EXISTS'],
      ['experiments/update', { experiment_id: id }, 'INVALID_PARAMETER_VALUE'],
      ['experiments/set-experiment-tag', { experiment_id: id, key: 'k', value: 'v'.repeat(5001) }, 'INVALID_PARAMETER_VALUE'],
      ['experiments/set-experiment-tag', { experiment_id: id, key: '/abs', value: 'v' }, 'INVALID_PARAMETER_VALUE'],
      ['experiments/delete-experiment-tag', { experiment_id: id, key: 'absent' }, 'RESOURCE_DOES_NOT_EXIST'],
      ['experiments/delete', { experiment_id: '00000000-0000-4000-8000-000000000000' }, 'RESOURCE_DOES_NOT_EXIST'],
    ] as const) {
      expect((await post(path, body)).body.error_code, `${path} ${JSON.stringify(body).slice(0, 60)}`).toBe(code);
    }
    expect((await get('experiments/get', { experiment_id: id })).body.experiment).toMatchObject({ name: 'lifecycle-2', tags: [{ key: 'b', value: '2' }] });
  });
});

describe('runs', () => {
  let exp: string;
  let runId: string;
  beforeAll(async () => {
    exp = (await post('experiments/create', { name: 'routes-runs' })).body.experiment_id;
    const created = await post('runs/create', {
      experiment_id: exp,
      run_name: 'first',
      start_time: 1_700_000_000_000,
      tags: [{ key: 'mlflow.user', value: 'alice' }],
    });
    expect(created.status).toBe(200);
    runId = created.body.run.info.run_id;
  });

  it('creates a RUNNING run with an mlflow-artifacts artifact_uri, and it is an EXTERNAL Atelier run', async () => {
    const { body } = await get('runs/get', { run_id: runId });
    expect(body.run.info).toMatchObject({
      run_id: runId,
      run_uuid: runId,
      experiment_id: exp,
      run_name: 'first',
      status: 'RUNNING',
      start_time: 1_700_000_000_000,
      lifecycle_stage: 'active',
      artifact_uri: `mlflow-artifacts:/${exp}/${runId}/artifacts`,
    });
    const { runs } = await t.api
      .gql('{ runs(first: 50) { nodes { id trigger workflow { id } name: id tasks { id kind node } } } }')
      .catch(async () => t.api.gql('{ runs(first: 50) { edges { node { id trigger workflow { id } tasks { id kind node } } } } }'));
    const list = runs.nodes ?? runs.edges.map((e: any) => e.node);
    const mine = list.find((r: any) => r.tasks.some((k: any) => k.id === runId));
    expect(mine).toMatchObject({ trigger: 'EXTERNAL', workflow: null, tasks: [{ kind: 'external', node: 'main' }] });
  });

  it('logs metrics (NaN and ±Infinity kept), params (immutable), tags, and reads them back', async () => {
    expect((await post('runs/log-metric', { run_id: runId, key: 'loss', value: 0.5, timestamp: 1_700_000_000_100, step: 1 })).status).toBe(200);
    expect((await post('runs/log-metric', { run_id: runId, key: 'loss', value: 'NaN', timestamp: 1_700_000_000_200, step: 2 })).status).toBe(200);
    expect((await post('runs/log-parameter', { run_id: runId, key: 'lr', value: '0.1' })).status).toBe(200);
    expect((await post('runs/log-parameter', { run_id: runId, key: 'lr', value: '0.1' })).status).toBe(200);
    const changed = await post('runs/log-parameter', { run_id: runId, key: 'lr', value: '0.2' });
    expect(changed).toMatchObject({ status: 400, body: { error_code: 'INVALID_PARAMETER_VALUE' } });
    const batch = await post('runs/log-batch', {
      run_id: runId,
      metrics: [
        { key: 'acc', value: 0.9, timestamp: 1_700_000_000_300, step: 3 },
        { key: 'acc', value: 'Infinity', timestamp: 1_700_000_000_400, step: 4 },
      ],
      params: [{ key: 'epochs', value: '3' }],
      tags: [{ key: 'team', value: 'vision' }],
    });
    expect(batch.status).toBe(200);
    expect((await post('runs/set-tag', { run_id: runId, key: 'stage', value: 'dev' })).status).toBe(200);
    expect((await post('runs/delete-tag', { run_id: runId, key: 'stage' })).status).toBe(200);
    const { body } = await get('runs/get', { run_id: runId });
    const byKey = (xs: any[]) => Object.fromEntries(xs.map((x) => [x.key, x.value]));
    expect(byKey(body.run.data.metrics)).toEqual({ loss: 'NaN', acc: 'Infinity' });
    expect(byKey(body.run.data.params)).toEqual({ lr: '0.1', epochs: '3' });
    expect(byKey(body.run.data.tags)).toEqual({ 'mlflow.user': 'alice', team: 'vision' });
    const history = await get('metrics/get-history', { run_id: runId, metric_key: 'loss' });
    expect(history.body.metrics).toEqual([
      { key: 'loss', value: 0.5, timestamp: 1_700_000_000_100, step: 1 },
      { key: 'loss', value: 'NaN', timestamp: 1_700_000_000_200, step: 2 },
    ]);
  });

  it('refuses a log-batch over MLflow’s limits and bad values, writing nothing', async () => {
    const many = (n: number) => Array.from({ length: n }, (_, i) => ({ key: `m${i}`, value: 1, timestamp: 1, step: 0 }));
    for (const body of [
      { metrics: many(1001) },
      { params: Array.from({ length: 101 }, (_, i) => ({ key: `p${i}`, value: 'x' })) },
      { tags: Array.from({ length: 101 }, (_, i) => ({ key: `t${i}`, value: 'x' })) },
      { metrics: many(950), params: Array.from({ length: 60 }, (_, i) => ({ key: `p${i}`, value: 'x' })) },
      { params: [{ key: 'big', value: 'x'.repeat(6001) }] },
      { params: [{ key: 'k'.repeat(251), value: 'x' }] },
      {
        metrics: [
          { key: 'ok', value: 1 },
          { key: 'bad', value: 'abc' },
        ],
      },
      { params: [{ key: '../etc', value: 'x' }] },
    ]) {
      const res = await post('runs/log-batch', { run_id: runId, ...body });
      expect(res, JSON.stringify(body).slice(0, 80)).toMatchObject({ status: 400, body: { error_code: 'INVALID_PARAMETER_VALUE' } });
      expect(typeof res.body.message).toBe('string');
    }
    const { body } = await get('runs/get', { run_id: runId });
    expect(body.run.data.metrics.map((m: any) => m.key).sort()).toEqual(['acc', 'loss']);
    expect(body.run.data.params.map((m: any) => m.key).sort()).toEqual(['epochs', 'lr']);
  });

  it('records logged models (runs/log-model) in the run’s mlflow.log-model.history tag, as MLflow’s server does', async () => {
    const model = (path: string) => ({
      run_id: runId,
      artifact_path: path,
      utc_time_created: '2026-12-06 05:50:00.000000',
      model_uuid: `uuid-${path}`,
      flavors: { sklearn: { pickled_model: 'model.pkl', config: { big: 'dropped' } }, python_function: { loader_module: 'mlflow.sklearn' } },
    });
    for (const path of ['model', 'model-2'])
      expect((await post('runs/log-model', { run_id: runId, model_json: JSON.stringify(model(path)) })).status).toBe(200);
    const tags = (await get('runs/get', { run_id: runId })).body.run.data.tags as { key: string; value: string }[];
    const history = JSON.parse(tags.find((t) => t.key === 'mlflow.log-model.history')!.value);
    expect(history.map((m: any) => m.artifact_path)).toEqual(['model', 'model-2']);
    expect(history[0].flavors).toEqual({ sklearn: { pickled_model: 'model.pkl' }, python_function: { loader_module: 'mlflow.sklearn' } });
    for (const model_json of ['{not json', '[]', JSON.stringify({ run_id: runId, flavors: {} })]) {
      const res = await post('runs/log-model', { run_id: runId, model_json });
      expect(res, model_json).toMatchObject({ status: 400, body: { error_code: 'INVALID_PARAMETER_VALUE' } });
    }
    expect((await post('runs/log-model', { run_id: runId, model_json: '{' })).body.message).toMatch(/model_json must be JSON/);
    expect((await post('runs/log-model', { run_id: runId, model_json: JSON.stringify({ run_id: runId }) })).body.message).toMatch(
      /missing mandatory fields: artifact_path, flavors, utc_time_created/,
    );
    await post('runs/delete-tag', { run_id: runId, key: 'mlflow.log-model.history' }); // the searches below count tags
  });

  it('keeps the datasets and models a run read (runs/log-inputs), each once, and shows them in the run’s inputs', async () => {
    const iris = { name: 'iris', digest: 'a1b2c3d4', source_type: 'local', source: '{"uri": "/data/iris.csv"}', schema: '{"mlflow_colspec": []}' };
    const training = [{ key: 'mlflow.data.context', value: 'training' }];
    const logged = await post('runs/log-inputs', {
      run_id: runId,
      datasets: [
        { tags: training, dataset: iris },
        { tags: [{ key: 'mlflow.data.context', value: 'eval' }], dataset: { ...iris, digest: 'ffff0000', profile: '{"num_rows": 30}' } },
      ],
    });
    expect(logged).toMatchObject({ status: 200, body: {} });
    // The same dataset again (other tags): kept as it was first logged, as MLflow's server does.
    expect((await post('runs/log-inputs', { run_id: runId, datasets: [{ tags: [{ key: 'mlflow.data.context', value: 'x' }], dataset: iris }] })).status).toBe(
      200,
    );
    const { body } = await get('runs/get', { run_id: runId });
    expect(body.run.inputs.dataset_inputs).toEqual([
      { tags: training, dataset: iris },
      { tags: [{ key: 'mlflow.data.context', value: 'eval' }], dataset: { ...iris, digest: 'ffff0000', profile: '{"num_rows": 30}' } },
    ]);
    const searched = await post('runs/search', { experiment_ids: [exp], max_results: 100 });
    expect(searched.body.runs.find((r: any) => r.info.run_id === runId).inputs).toEqual(body.run.inputs);

    // Bad input: each refused as MLflow refuses it, nothing written.
    for (const datasets of [
      'iris',
      [{ dataset: { ...iris, name: '' } }],
      [{ dataset: { ...iris, digest: 'x'.repeat(37) } }],
      [{ dataset: { ...iris, name: 'n'.repeat(501) } }],
      [{ dataset: { ...iris, source_type: 't'.repeat(37) } }],
      [{ dataset: { name: 'no-source', digest: 'd', source_type: 'local' } }],
      [{ dataset: { ...iris, name: 'fine' } }, { dataset: { ...iris, name: 'bad-tag' }, tags: [{ key: 'k'.repeat(256), value: 'v' }] }],
      [{ dataset: iris, tags: [{ key: 'k', value: 'v'.repeat(501) }] }],
      Array.from({ length: 1001 }, (_, i) => ({ dataset: { ...iris, name: `d${i}` } })),
    ]) {
      const res = await post('runs/log-inputs', { run_id: runId, datasets });
      expect(res, JSON.stringify(datasets).slice(0, 80)).toMatchObject({ status: 400, body: { error_code: 'INVALID_PARAMETER_VALUE' } });
    }
    expect((await get('runs/get', { run_id: runId })).body.run.inputs.dataset_inputs).toHaveLength(2);
    // A model input must name a logged model the caller may read.
    const unknownModel = await post('runs/log-inputs', { run_id: runId, models: [{ model_id: 'm-0123456789abcdef0123456789abcdef' }] });
    expect(unknownModel).toMatchObject({ status: 404, body: { error_code: 'RESOURCE_DOES_NOT_EXIST' } });
    // Another user's run: refused, nothing written.
    const mallory = (await t.user('mlflow-mallory')).token;
    const theirs = await post('runs/log-inputs', { run_id: runId, datasets: [{ dataset: { ...iris, name: 'planted' } }] }, mallory);
    expect(theirs.status).toBeGreaterThanOrEqual(400);
    expect((await get('runs/get', { run_id: runId })).body.run.inputs.dataset_inputs.map((d: any) => d.dataset.name)).toEqual(['iris', 'iris']);
  });

  it('searches by status, metrics, params and tags with AND, orders and pages', async () => {
    const second = (await post('runs/create', { experiment_id: exp, run_name: 'second' })).body.run.info.run_id;
    await post('runs/log-batch', { run_id: second, metrics: [{ key: 'acc', value: 0.5, timestamp: 1, step: 0 }], params: [{ key: 'lr', value: '0.01' }] });
    await post('runs/update', { run_id: second, status: 'FINISHED', end_time: 1_700_000_001_000 });
    const ids = async (body: object) => (await post('runs/search', { experiment_ids: [exp], ...body })).body.runs?.map((r: any) => r.info.run_name) ?? [];
    expect(await ids({ filter: "attributes.status = 'FINISHED'" })).toEqual(['second']);
    expect(await ids({ filter: 'metrics.acc > 0.6' })).toEqual(['first']);
    expect(await ids({ filter: "params.lr = '0.01' and metrics.acc < 1" })).toEqual(['second']);
    expect(await ids({ filter: "tags.team = 'vision'" })).toEqual(['first']);
    expect(await ids({ filter: 'metrics.unknown > 0' })).toEqual([]);
    expect(await ids({ order_by: ['metrics.acc ASC'] })).toEqual(['second', 'first']);
    const page1 = await post('runs/search', { experiment_ids: [exp], max_results: 1, order_by: ['attributes.run_name ASC'] });
    expect(page1.body.runs.map((r: any) => r.info.run_name)).toEqual(['first']);
    const page2 = await post('runs/search', {
      experiment_ids: [exp],
      max_results: 1,
      order_by: ['attributes.run_name ASC'],
      page_token: page1.body.next_page_token,
    });
    expect(page2.body.runs.map((r: any) => r.info.run_name)).toEqual(['second']);
    const bad = await post('runs/search', { experiment_ids: [exp], filter: 'metrics.acc >' });
    expect(bad).toMatchObject({ status: 400, body: { error_code: 'INVALID_PARAMETER_VALUE' } });
    const run = (await get('runs/get', { run_id: second })).body.run.info;
    expect(run).toMatchObject({ status: 'FINISHED', end_time: 1_700_000_001_000 });
  });

  it('deletes and restores: a deleted run leaves searches and takes no logs until restored', async () => {
    const id = (await post('runs/create', { experiment_id: exp, run_name: 'doomed' })).body.run.info.run_id;
    expect((await post('runs/delete', { run_id: id })).status).toBe(200);
    expect((await get('runs/get', { run_id: id })).body.run.info.lifecycle_stage).toBe('deleted');
    const names = async (view?: string) =>
      (await post('runs/search', { experiment_ids: [exp], run_view_type: view })).body.runs?.map((r: any) => r.info.run_name) ?? [];
    expect(await names()).not.toContain('doomed');
    expect(await names('DELETED_ONLY')).toEqual(['doomed']);
    expect((await post('runs/log-metric', { run_id: id, key: 'x', value: 1, timestamp: 1 })).status).toBe(400);
    expect((await post('runs/restore', { run_id: id })).status).toBe(200);
    expect(await names()).toContain('doomed');
  });

  it('uploads, downloads and lists artifacts; refuses `..` and absolute paths', async () => {
    const base = `${t.url}/api/2.0/mlflow-artifacts/artifacts/${exp}/${runId}/artifacts`;
    const auth = { authorization: `Bearer ${token}` };
    expect((await fetch(`${base}/model/weights.bin`, { method: 'PUT', headers: auth, body: 'w1' })).status).toBe(200);
    expect((await fetch(`${base}/notes.txt`, { method: 'PUT', headers: auth, body: 'hello' })).status).toBe(200);
    const down = await fetch(`${base}/notes.txt`, { headers: auth });
    expect([down.status, await down.text()]).toEqual([200, 'hello']);
    const list = async (path: string) =>
      (await (await fetch(`${t.url}/api/2.0/mlflow-artifacts/artifacts?${new URLSearchParams({ path })}`, { headers: auth })).json()) as any;
    expect((await list(`${exp}/${runId}/artifacts`)).files).toEqual([
      { path: 'model', is_dir: true },
      { path: 'notes.txt', is_dir: false, file_size: 5 },
    ]);
    expect((await list(`${exp}/${runId}/artifacts/model`)).files).toEqual([{ path: 'weights.bin', is_dir: false, file_size: 2 }]);
    for (const path of ['../x', 'a/../../x', '%2e%2e/x', 'a%2F..%2Fb', '%2Fetc%2Fpasswd']) {
      const res = await fetch(`${base}/${path}`, { method: 'PUT', headers: auth, body: 'x' });
      expect(await res.json(), path).toMatchObject({ error_code: 'INVALID_PARAMETER_VALUE' });
    }
    expect((await list(`${exp}/${runId}/artifacts/../other`)).error_code).toBe('INVALID_PARAMETER_VALUE');
    const missing = await fetch(`${base}/nope.txt`, { headers: auth });
    expect([missing.status, ((await missing.json()) as any).error_code]).toEqual([404, 'RESOURCE_DOES_NOT_EXIST']);
  });
});

describe('errors', () => {
  it('answers an unknown endpoint with ENDPOINT_NOT_FOUND naming what is supported', async () => {
    for (const path of ['registered-models/set-tag', 'runs/not-an-endpoint', 'constructor', '__proto__']) {
      const res = await post(path, {});
      expect(res.status).toBe(404);
      expect(res.body.error_code).toBe('ENDPOINT_NOT_FOUND');
      expect(res.body.message).toContain('runs/log-batch');
    }
    expect((await call('GET', 'runs/log-batch')).body.error_code).toBe('ENDPOINT_NOT_FOUND');
  });

  it('answers a missing token, a missing run and a malformed body in MLflow’s shape', async () => {
    expect(await post('runs/get', {}, 'not-a-token')).toMatchObject({ status: 401, body: { error_code: 'UNAUTHENTICATED' } });
    const missing = await get('runs/get', { run_id: '00000000-0000-4000-8000-000000000000' });
    expect(missing).toMatchObject({ status: 404, body: { error_code: 'RESOURCE_DOES_NOT_EXIST' } });
    expect((await get('runs/get', { run_id: 'nonsense' })).body.error_code).toBe('RESOURCE_DOES_NOT_EXIST');
    expect((await get('runs/get', {})).body.error_code).toBe('INVALID_PARAMETER_VALUE');
    const res = await fetch(`${t.url}/api/2.0/mlflow/runs/create`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: '{not json' });
    expect(((await res.json()) as any).error_code).toBe('INVALID_PARAMETER_VALUE');
  });

  it('serves the same API under /ajax-api', async () => {
    const res = await fetch(`${t.url}/ajax-api/2.0/mlflow/experiments/search`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: '{}' });
    expect(res.status).toBe(200);
  });
});

describe('GraphQL for notebooks', () => {
  it('opens an external run, logs params and metrics, and ends it', async () => {
    const alice = {
      gql: async (q: string, v: object) =>
        (await fetch(`${t.url}/graphql`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ query: q, variables: v }),
        }).then((r) => r.json())) as any,
    };
    const started = await alice.gql(
      `mutation { startExternalRun(name: "nb", tags: {team: "a"}, parameters: {lr: 0.1}) { id status trigger workflow { id } parameters } }`,
      {},
    );
    expect(started.data.startExternalRun).toMatchObject({ status: 'RUNNING', trigger: 'EXTERNAL', workflow: null, parameters: { lr: '0.1' } });
    const id = started.data.startExternalRun.id;
    // Followed live like a workflow's run: what is logged and the end reach a subscriber, stored and numbered.
    const live = watchWs(t.url, token, RUN_EVENTS_SEQ, { runId: id, after: 0 });
    const logged = await alice.gql(`mutation ($id: ID!) { logRunMetrics(runId: $id, points: [{name: "loss", value: 1.5, step: 1}]) { id } }`, { id });
    expect(logged.errors).toBeUndefined();
    const changed = await alice.gql(`mutation ($id: ID!) { logRunParams(runId: $id, parameters: {lr: "0.2"}) { id } }`, { id });
    expect(changed.errors[0].extensions.code).toBe('BAD_USER_INPUT');
    const bob = (await t.user('mlflow-bob')).gql;
    await expect(bob(`mutation ($id: ID!) { logRunParams(runId: $id, parameters: {x: "1"}) { id } }`, { id })).rejects.toThrow(/FORBIDDEN/);
    const ended = await alice.gql(`mutation ($id: ID!) { endExternalRun(runId: $id, status: FAILED) { status finishedAt } }`, { id });
    expect(ended.data.endExternalRun.status).toBe('FAILED');
    expect(ended.data.endExternalRun.finishedAt).toBeTruthy();
    await live.done;
    expect(live.events.map((e) => e.__typename)).toEqual(['TaskStatusEvent', 'RunStatusEvent', 'TaskMetricEvent', 'TaskStatusEvent', 'RunStatusEvent']);
    expect(live.events.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(live.events.at(-1)).toMatchObject({ runStatus: 'FAILED' });
  });
});
