// MLflow's registry routes under attack: writing into another team's namespace (a model, a version, an alias), a
// run the caller may not read given as a version's source (answered exactly like a missing run), a production alias
// set without an approved promotion, and a version's lineage (run_id, source, tags) read without its run's domain.
// Each refusal writes nothing in the registry and is audited.
import { count, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { modelAliasEvents, modelAliases, modelPromotions, modelVersions, registeredModels, registryEvents } from '../../server/db/tables/registry';
import { runs, tasks } from '../../server/db/tables/runs';
import { startTestApp, type TestApp } from '../harness/app';
import type { ApiClient } from '../harness/client';

let t: TestApp;
let alice: ApiClient & { token: string };
let bob: ApiClient & { token: string };
let carol: ApiClient & { token: string };
let exp: string;
/** Alice's run, moved to the production domain: carol's team has no production grant. */
let secret: string;
/** Carol's own finished run. */
let mine: string;
const MISSING = '00000000-0000-4000-8000-00000000beef';

async function call(method: string, path: string, as: string, body?: unknown) {
  const res = await fetch(`${t.url}/api/2.0/mlflow/${path}`, {
    method,
    headers: { authorization: `Bearer ${as}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as any };
}
const post = (path: string, as: string, body: unknown) => call('POST', path, as, body);
const get = (path: string, as: string, query: Record<string, string>) => call('GET', `${path}?${new URLSearchParams(query)}`, as);
const shape = (res: { status: number; body: any }, id: string) => ({ status: res.status, body: JSON.stringify(res.body).replaceAll(id, 'ID') });

async function loggedRun(as: string, experiment = exp) {
  const id = (await post('runs/create', as, { experiment_id: experiment, run_name: 'train' })).body.run.info.run_id as string;
  const put = await fetch(`${t.url}/api/2.0/mlflow-artifacts/artifacts/${experiment}/${id}/artifacts/model/model.pkl`, {
    method: 'PUT',
    body: `weights of ${id}`,
    headers: { authorization: `Bearer ${as}` },
  });
  expect(put.status).toBe(200);
  await post('runs/set-tag', as, { run_id: id, key: 'secret-tag', value: 'v' });
  expect((await post('runs/update', as, { run_id: id, status: 'FINISHED', end_time: 2 })).status).toBe(200);
  return id;
}

/** Rows of every registry table: a refusal leaves them all as they were. */
async function written() {
  const db = t.app.services.db;
  const n = async (table: any) => (await db.select({ n: count() }).from(table))[0]!.n;
  return [
    await n(registeredModels),
    await n(modelVersions),
    await n(modelAliases),
    await n(modelAliasEvents),
    await n(modelPromotions),
    await n(registryEvents),
  ];
}

async function denials(name: string, action: string) {
  const { auditEvents } = await t.api.gql(`{ auditEvents(limit: 1000) { action decision identity { name } } }`);
  return auditEvents.filter((e: any) => e.decision === 'deny' && e.identity?.name === name && e.action === action).length;
}

/** Runs `attempt`, expects the MLflow error code, nothing written, and one more audited denial of `action`. */
async function refused(who: string, action: string, errorCode: string, attempt: () => Promise<{ status: number; body: any }>) {
  const before = await written();
  const audited = await denials(who, action);
  const result = await attempt();
  expect(result.body.error_code).toBe(errorCode);
  expect(await written()).toEqual(before);
  expect(await denials(who, action)).toBe(audited + 1);
  return result;
}

beforeAll(async () => {
  t = await startTestApp();
  alice = await t.user('sec-alice');
  bob = await t.user('sec-bob');
  carol = await t.user('sec-carol');
  await t.team('ml', ['sec-alice', 'sec-bob'], ['ml']);
  await t.team('lab', ['sec-carol'], ['lab']);
  await t.api.gql(`mutation { grantDomain(team: "ml", domain: production) { id } }`);
  exp = (await post('experiments/create', alice.token, { name: 'sec-registry' })).body.experiment_id;
  secret = await loggedRun(alice.token);
  // Carol logs into an experiment of her own: runs go only into experiments their caller may change.
  mine = await loggedRun(carol.token, (await post('experiments/create', carol.token, { name: 'sec-registry-lab' })).body.experiment_id);
  const [task] = await t.app.services.db.select().from(tasks).where(eq(tasks.id, secret));
  await t.app.services.db.update(runs).set({ domain: 'production' }).where(eq(runs.id, task!.runId));
  const v1 = await post('model-versions/create', alice.token, { name: 'ml/churn', source: `runs:/${secret}/model`, tags: [{ key: 'k', value: 'v' }] });
  expect(v1.body.model_version.version).toBe('1');
  const v2 = await post('model-versions/create', alice.token, { name: 'ml/churn', source: `runs:/${await loggedRun(alice.token)}/model` });
  expect(v2.body.model_version.version).toBe('2');
  const { requestModelPromotion } = await alice.gql(
    `mutation { requestModelPromotion(model: "ml/churn", version: "1", alias: "prod", reason: "ready") { id } }`,
  );
  await bob.gql(`mutation ($id: ID!) { decideModelPromotion(id: $id, approve: true) { state } }`, { id: requestModelPromotion.id });
}, 60_000);
afterAll(async () => t?.stop());

describe("another team's namespace", () => {
  it('refuses creating a model in it', async () => {
    const res = await refused('sec-carol', 'model.create', 'PERMISSION_DENIED', () => post('registered-models/create', carol.token, { name: 'ml/stolen' }));
    expect(res.status).toBe(403);
  });

  it('refuses registering a version into it, even from a run the caller owns', async () => {
    await refused('sec-carol', 'model.register', 'PERMISSION_DENIED', () =>
      post('model-versions/create', carol.token, { name: 'ml/churn', source: `runs:/${mine}/model`, run_id: mine }),
    );
  });

  it('refuses moving its aliases', async () => {
    await refused('sec-carol', 'model.alias.move', 'PERMISSION_DENIED', () =>
      post('registered-models/alias', carol.token, { name: 'ml/churn', alias: 'champion', version: '2' }),
    );
  });
});

describe('a run the caller may not read', () => {
  it('as a version source answers exactly like a missing run, writes nothing, and is audited', async () => {
    const hidden = await refused('sec-carol', 'model.register', 'RESOURCE_DOES_NOT_EXIST', () =>
      post('model-versions/create', carol.token, { name: 'lab/copy', source: `runs:/${secret}/model`, run_id: secret }),
    );
    const missing = await post('model-versions/create', carol.token, { name: 'lab/copy', source: `runs:/${MISSING}/model`, run_id: MISSING });
    expect(shape(hidden, secret)).toEqual(shape(missing, MISSING));
    const viaArtifacts = await post('model-versions/create', carol.token, { name: 'lab/copy', source: `mlflow-artifacts:/${exp}/${secret}/artifacts/model` });
    expect(shape(viaArtifacts, secret)).toEqual(shape(missing, MISSING));
  });

  it("leaves a version's run_id, source and tags out, and search by its run_id finds nothing", async () => {
    const { body } = await get('model-versions/get', carol.token, { name: 'ml/churn', version: '1' });
    expect(body.model_version).toMatchObject({ name: 'ml/churn', version: '1' });
    expect(JSON.stringify(body)).not.toContain(secret);
    expect(body.model_version).not.toHaveProperty('tags');
    const byAlias = await get('registered-models/alias', carol.token, { name: 'ml/churn', alias: 'prod' });
    expect(JSON.stringify(byAlias.body)).not.toContain(secret);
    const model = await get('registered-models/get', carol.token, { name: 'ml/churn' });
    expect(JSON.stringify(model.body)).not.toContain(secret);
    const found = await post('model-versions/search', carol.token, { filter: `run_id = '${secret}'` });
    expect(found.body.model_versions).toEqual([]);
    const uri = await get('model-versions/get-download-uri', carol.token, { name: 'ml/churn', version: '1' });
    expect(uri).toMatchObject({ status: 403, body: { error_code: 'PERMISSION_DENIED' } });
    expect(JSON.stringify(uri.body)).not.toContain(secret);
    // Alice (production grant) sees it.
    expect((await get('model-versions/get', alice.token, { name: 'ml/churn', version: '1' })).body.model_version.run_id).toBe(secret);
  });
});

describe('a production alias', () => {
  it('is not moved without an approved promotion, even by an owner holding the production grant', async () => {
    for (const [who, token] of [
      ['sec-alice', alice.token],
      ['sec-bob', bob.token],
    ] as const) {
      const res = await refused(who, 'model.alias.move', 'PERMISSION_DENIED', () =>
        post('registered-models/alias', token, { name: 'ml/churn', alias: 'prod', version: '2' }),
      );
      expect(res.body.message).toMatch(/promotion/);
    }
    expect((await get('registered-models/alias', alice.token, { name: 'ml/churn', alias: 'prod' })).body.model_version.version).toBe('1');
  });

  it('is not deleted either (nothing written)', async () => {
    const before = await written();
    expect((await call('DELETE', 'registered-models/alias', alice.token, { name: 'ml/churn', alias: 'prod' })).body.error_code).toBe('NOT_IMPLEMENTED');
    expect(await written()).toEqual(before);
  });
});
