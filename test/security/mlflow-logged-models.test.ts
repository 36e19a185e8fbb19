// MLflow 3's logged models under attack: another team's model whose source run is in a domain the caller may not read
// is answered exactly like a missing model on every route (get, finalize, delete, tags, params, files, listing), left
// out of every search whatever the filter, and refused like a missing one as a registration source (audited, nothing
// written); a model the caller may read but did not log is not changed by it (PERMISSION_DENIED, nothing written),
// nor is another's run given as a new model's source run.
import { count, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loggedModelArtifacts, loggedModels } from '../../server/db/tables/logged-models';
import { modelVersions, registeredModels, registryEvents } from '../../server/db/tables/registry';
import { runs, tasks } from '../../server/db/tables/runs';
import { startTestApp, type TestApp } from '../harness/app';
import type { ApiClient } from '../harness/client';

let t: TestApp;
let alice: ApiClient & { token: string };
let carol: ApiClient & { token: string };
let exp: string;
/** Alice's model whose source run is moved to production: carol's team has no production grant. */
let secret: { model_id: string; artifact_uri: string };
/** Alice's model of an experimentation run: carol may read it, not change it. */
let open: { model_id: string; artifact_uri: string };
let aliceRun: string;
const MISSING = 'm-0000000000000000000000000000beef';

async function call(method: string, path: string, as: string, body?: unknown) {
  const res = await fetch(`${t.url}/api/2.0/mlflow/${path}`, {
    method,
    headers: { authorization: `Bearer ${as}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as any };
}
async function artifacts(method: string, path: string, as: string, body?: string) {
  const res = await fetch(`${t.url}/api/2.0/mlflow-artifacts/artifacts${path}`, { method, body, headers: { authorization: `Bearer ${as}` } });
  return { status: res.status, body: (await res.json().catch(() => ({}))) as any };
}
const shape = (res: { status: number; body: any }, id: string) => ({ status: res.status, body: JSON.stringify(res.body).replaceAll(id, 'ID') });

async function modelOf(as: string, run: string, file: string) {
  const made = (await call('POST', 'logged-models', as, { experiment_id: exp, source_run_id: run, name: 'model' })).body.model.info;
  expect((await artifacts('PUT', `/${made.artifact_uri.slice('mlflow-artifacts:/'.length)}/model.pkl`, as, file)).status).toBe(200);
  expect((await call('PATCH', `logged-models/${made.model_id}`, as, { status: 'LOGGED_MODEL_READY' })).status).toBe(200);
  return made;
}

/** Rows of the logged-model and registry tables: a refusal leaves them as they were. */
async function written() {
  const db = t.app.services.db;
  const n = async (table: any) => (await db.select({ n: count() }).from(table))[0]!.n;
  const models = await db
    .select({ tags: loggedModels.tags, params: loggedModels.params, status: loggedModels.status, deletedAt: loggedModels.deletedAt })
    .from(loggedModels);
  return [
    await n(loggedModels),
    await n(loggedModelArtifacts),
    await n(registeredModels),
    await n(modelVersions),
    await n(registryEvents),
    JSON.stringify(models),
  ];
}

async function denials(name: string, action: string) {
  const { auditEvents } = await t.api.gql(`{ auditEvents(limit: 1000) { action decision identity { name } } }`);
  return auditEvents.filter((e: any) => e.decision === 'deny' && e.identity?.name === name && e.action === action).length;
}

beforeAll(async () => {
  t = await startTestApp();
  alice = await t.user('lm-sec-alice');
  carol = await t.user('lm-sec-carol');
  await t.team('ml', ['lm-sec-alice'], ['ml']);
  await t.team('lab', ['lm-sec-carol'], ['lab']);
  await t.api.gql(`mutation { grantDomain(team: "ml", domain: production) { id } }`);
  exp = (await call('POST', 'experiments/create', alice.token, { name: 'lm-sec' })).body.experiment_id;
  const hidden = (await call('POST', 'runs/create', alice.token, { experiment_id: exp })).body.run.info.run_id;
  aliceRun = (await call('POST', 'runs/create', alice.token, { experiment_id: exp })).body.run.info.run_id;
  secret = await modelOf(alice.token, hidden, 'secret weights');
  open = await modelOf(alice.token, aliceRun, 'open weights');
  const [task] = await t.app.services.db.select().from(tasks).where(eq(tasks.id, hidden));
  await t.app.services.db.update(runs).set({ domain: 'production' }).where(eq(runs.id, task!.runId));
  // Alice (production grant) still reads it.
  expect((await call('GET', `logged-models/${secret.model_id}`, alice.token)).body.model.info.model_id).toBe(secret.model_id);
}, 60_000);
afterAll(async () => t?.stop());

describe("another team's logged model the caller may not read", () => {
  it('answers exactly like a missing model on every route, and writes nothing', async () => {
    const before = await written();
    const routes: [string, (id: string) => string, unknown][] = [
      ['GET', (id) => `logged-models/${id}`, undefined],
      ['PATCH', (id) => `logged-models/${id}`, { status: 'LOGGED_MODEL_UPLOAD_FAILED' }],
      ['DELETE', (id) => `logged-models/${id}`, {}],
      ['PATCH', (id) => `logged-models/${id}/tags`, { tags: [{ key: 'x', value: 'y' }] }],
      ['DELETE', (id) => `logged-models/${id}/tags/mlflow.user`, undefined],
      ['POST', (id) => `logged-models/${id}/params`, { params: [{ key: 'p', value: '1' }] }],
      ['GET', (id) => `logged-models/${id}/artifacts/directories`, undefined],
    ];
    for (const [method, path, body] of routes) {
      const hidden = await call(method, path(secret.model_id), carol.token, body);
      const missing = await call(method, path(MISSING), carol.token, body);
      expect(hidden.body.error_code).toBe('RESOURCE_DOES_NOT_EXIST');
      expect(shape(hidden, secret.model_id)).toEqual(shape(missing, MISSING));
    }
    const root = (m: string) => `/${exp}/models/${m}/artifacts`;
    for (const [method, path, body] of [
      ['GET', (m: string) => `${root(m)}/model.pkl`, undefined],
      ['PUT', (m: string) => `${root(m)}/stolen.pkl`, 'x'],
      ['GET', (m: string) => `?path=${encodeURIComponent(root(m))}`, undefined],
    ] as const) {
      const hidden = await artifacts(method, path(secret.model_id), carol.token, body);
      const missing = await artifacts(method, path(MISSING), carol.token, body);
      expect(hidden.status).toBe(404);
      expect(shape(hidden, secret.model_id)).toEqual(shape(missing, MISSING));
    }
    expect(await written()).toEqual(before);
  });

  it('is left out of searches whatever the filter or order', async () => {
    for (const filter of ['', `model_id = '${secret.model_id}'`, "name = 'model'", 'metrics.x > 0', "params.p = '1'"]) {
      const found = await call('POST', 'logged-models/search', carol.token, {
        experiment_ids: [exp],
        filter,
        order_by: [{ field_name: 'creation_timestamp', ascending: false }],
      });
      expect(found.status).toBe(200);
      expect(JSON.stringify(found.body)).not.toContain(secret.model_id);
    }
    const all = await call('POST', 'logged-models/search', alice.token, { experiment_ids: [exp] });
    expect(all.body.models.map((m: any) => m.info.model_id).sort()).toEqual([secret.model_id, open.model_id].sort());
  });

  it('as a registration source answers like a missing model, writes nothing, and is audited', async () => {
    const before = await written();
    const audited = await denials('lm-sec-carol', 'model.register');
    const hidden = await call('POST', 'model-versions/create', carol.token, { name: 'lab/copy', source: `models:/${secret.model_id}` });
    expect(hidden.body.error_code).toBe('RESOURCE_DOES_NOT_EXIST');
    const missing = await call('POST', 'model-versions/create', carol.token, { name: 'lab/copy', source: `models:/${MISSING}` });
    expect(shape(hidden, secret.model_id)).toEqual(shape(missing, MISSING));
    expect(await written()).toEqual(before);
    expect(await denials('lm-sec-carol', 'model.register')).toBe(audited + 2);
  });
});

describe('a logged model the caller may read but did not log', () => {
  it('is not changed by it: tags, params, files, finalizing and deleting are PERMISSION_DENIED; nothing written', async () => {
    const before = await written();
    for (const [method, path, body] of [
      ['PATCH', `logged-models/${open.model_id}/tags`, { tags: [{ key: 'x', value: 'y' }] }],
      ['DELETE', `logged-models/${open.model_id}/tags/mlflow.user`, undefined],
      ['POST', `logged-models/${open.model_id}/params`, { params: [{ key: 'p', value: '1' }] }],
      ['PATCH', `logged-models/${open.model_id}`, { status: 'LOGGED_MODEL_UPLOAD_FAILED' }],
      ['DELETE', `logged-models/${open.model_id}`, {}],
    ] as const) {
      expect(await call(method, path, carol.token, body)).toMatchObject({ status: 403, body: { error_code: 'PERMISSION_DENIED' } });
    }
    const put = await artifacts('PUT', `/${open.artifact_uri.slice('mlflow-artifacts:/'.length)}/model.pkl`, carol.token, 'replaced');
    expect(put.status).toBe(403);
    expect(await written()).toEqual(before);
    expect((await call('GET', `logged-models/${open.model_id}`, carol.token)).status).toBe(200);
  });

  it("nor is another's run given as a new model's source run", async () => {
    const before = await written();
    const res = await call('POST', 'logged-models', carol.token, { experiment_id: exp, source_run_id: aliceRun, name: 'mine' });
    expect(res).toMatchObject({ status: 403, body: { error_code: 'PERMISSION_DENIED' } });
    expect(await written()).toEqual(before);
  });
});
