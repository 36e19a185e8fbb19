// The MLflow routes as an attacker sees them: a run of a domain the token may not read answers exactly like a run
// that does not exist (reads, writes, artifacts, metric history), searches leave it out whatever the filter or order,
// another member's run is readable but not writable, and a task's own token reaches its task only.
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueToken } from '../../server/auth/tokens';
import { identities } from '../../server/db/tables/identities';
import { runs, tasks } from '../../server/db/tables/runs';
import { metricPoints, runArtifacts, runTags } from '../../server/db/tables/tracking';
import { taskTracking } from '../../server/tracking/task-tokens';
import { startTestApp, type TestApp } from '../harness/app';

let t: TestApp;
let owner: string;
let mallory: string;
let exp: string;
/** An external run moved to the production domain (owner's): Mallory has no grant to production. */
let secret: string;
/** Owner's experimentation run: Mallory may read it, not log into it. */
let open: string;
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
const artifact = (as: string, run: string, path: string, init: RequestInit = {}) =>
  fetch(`${t.url}/api/2.0/mlflow-artifacts/artifacts/${exp}/${run}/artifacts/${path}`, { ...init, headers: { authorization: `Bearer ${as}` } });
/** An MLmodel as MLflow 2's log_model sends it to runs/log-model. */
const modelJson = (run: string) => JSON.stringify({ run_id: run, artifact_path: 'model', utc_time_created: '2026-01-01 00:00:00', flavors: { sklearn: {} } });
/** An answer with the run id taken out: what "missing" and "unreadable" must share. */
const shape = async (res: { status: number; body: any }, id: string) => ({ status: res.status, body: JSON.stringify(res.body).replaceAll(id, 'ID') });

beforeAll(async () => {
  t = await startTestApp();
  owner = (await t.user('ml-owner')).token;
  mallory = (await t.user('ml-mallory')).token;
  exp = (await post('experiments/create', owner, { name: 'sec-exp' })).body.experiment_id;
  const make = async (name: string) => {
    const id = (await post('runs/create', owner, { experiment_id: exp, run_name: name })).body.run.info.run_id as string;
    await post('runs/log-batch', owner, {
      run_id: id,
      metrics: [{ key: 'acc', value: 0.99, timestamp: 1, step: 0 }],
      params: [{ key: 'lr', value: '0.1' }],
      tags: [{ key: 'k', value: 'v' }],
    });
    expect((await artifact(owner, id, 'model.bin', { method: 'PUT', body: 'weights' })).status).toBe(200);
    return id;
  };
  secret = await make('secret');
  open = await make('open');
  const [task] = await t.app.services.db.select().from(tasks).where(eq(tasks.id, secret));
  await t.app.services.db.update(runs).set({ domain: 'production' }).where(eq(runs.id, task!.runId));
}, 60_000);
afterAll(async () => t?.stop());

describe('a run of a domain the token may not read', () => {
  it('answers every read exactly like a missing run', async () => {
    for (const [path, query] of [
      ['runs/get', (id: string) => ({ run_id: id })],
      ['metrics/get-history', (id: string) => ({ run_id: id, metric_key: 'acc' })],
    ] as const) {
      const hidden = await get(path, mallory, query(secret));
      expect(hidden.status).toBe(404);
      expect(hidden.body.error_code).toBe('RESOURCE_DOES_NOT_EXIST');
      expect(await shape(hidden, secret)).toEqual(await shape(await get(path, mallory, query(MISSING)), MISSING));
      expect((await get(path, t.app.adminToken, query(secret))).status).toBe(200);
    }
    const download = async (id: string) => {
      const res = await artifact(mallory, id, 'model.bin');
      return shape({ status: res.status, body: await res.json() }, id);
    };
    expect((await download(secret)).status).toBe(404);
    expect(await download(secret)).toEqual(await download(MISSING));
    const list = async (id: string) => {
      const res = await fetch(`${t.url}/api/2.0/mlflow-artifacts/artifacts?path=${exp}/${id}/artifacts`, { headers: { authorization: `Bearer ${mallory}` } });
      return shape({ status: res.status, body: await res.json() }, id);
    };
    expect(await list(secret)).toEqual(await list(MISSING));
  });

  it('answers every write like a missing run, and writes nothing', async () => {
    const writes: [string, (id: string) => object][] = [
      ['runs/log-metric', (id) => ({ run_id: id, key: 'acc', value: 0, timestamp: 2 })],
      ['runs/log-parameter', (id) => ({ run_id: id, key: 'new', value: 'x' })],
      ['runs/log-batch', (id) => ({ run_id: id, metrics: [{ key: 'acc', value: 0, timestamp: 3 }] })],
      ['runs/set-tag', (id) => ({ run_id: id, key: 'k', value: 'pwned' })],
      ['runs/delete-tag', (id) => ({ run_id: id, key: 'k' })],
      ['runs/update', (id) => ({ run_id: id, status: 'KILLED' })],
      ['runs/delete', (id) => ({ run_id: id })],
      ['runs/log-model', (id) => ({ run_id: id, model_json: modelJson(id) })],
    ];
    for (const [path, body] of writes) {
      const hidden = await post(path, mallory, body(secret));
      expect(hidden.body.error_code, path).toBe('RESOURCE_DOES_NOT_EXIST');
      expect(await shape(hidden, secret)).toEqual(await shape(await post(path, mallory, body(MISSING)), MISSING));
    }
    const upload = await artifact(mallory, secret, 'evil.bin', { method: 'PUT', body: 'x' });
    expect([upload.status, ((await upload.json()) as any).error_code]).toEqual([404, 'RESOURCE_DOES_NOT_EXIST']);
    const { db } = t.app.services;
    expect((await db.select().from(metricPoints).where(eq(metricPoints.taskId, secret))).length).toBe(1);
    expect((await db.select().from(runArtifacts).where(eq(runArtifacts.taskId, secret))).map((a) => a.path)).toEqual(['model.bin']);
    const [task] = await db.select().from(tasks).where(eq(tasks.id, secret));
    expect((await db.select().from(runTags).where(eq(runTags.runId, task!.runId))).map((r) => r.value)).toEqual(['v']);
    expect(task!.status).toBe('RUNNING');
  });

  it('is left out of searches whatever the filter or order (no oracle)', async () => {
    const names = async (as: string, body: object) =>
      ((await post('runs/search', as, { experiment_ids: [exp], ...body })).body.runs ?? []).map((r: any) => r.info.run_name).sort();
    for (const body of [{}, { filter: 'metrics.acc > 0.5' }, { filter: "params.lr = '0.1'" }, { filter: "tags.k = 'v'" }, { order_by: ['metrics.acc DESC'] }]) {
      expect(await names(mallory, body), JSON.stringify(body)).toEqual(['open']);
      expect(await names(t.app.adminToken, body)).toEqual(['open', 'secret']);
    }
  });
});

describe('writes', () => {
  it("refuses logging into another member's readable run, writing nothing", async () => {
    expect((await get('runs/get', mallory, { run_id: open })).status).toBe(200);
    const res = await post('runs/log-metric', mallory, { run_id: open, key: 'acc', value: 0, timestamp: 5 });
    expect(res).toMatchObject({ status: 403, body: { error_code: 'PERMISSION_DENIED' } });
    const upload = await artifact(mallory, open, 'evil.bin', { method: 'PUT', body: 'x' });
    expect(upload.status).toBe(403);
    expect(await post('runs/log-model', mallory, { run_id: open, model_json: modelJson(open) })).toMatchObject({
      status: 403,
      body: { error_code: 'PERMISSION_DENIED' },
    });
    const [task] = await t.app.services.db.select().from(tasks).where(eq(tasks.id, open));
    expect((await t.app.services.db.select().from(runTags).where(eq(runTags.runId, task!.runId))).map((r) => r.key)).toEqual(['k']);
    expect((await t.app.services.db.select().from(metricPoints).where(eq(metricPoints.taskId, open))).length).toBe(1);
  });

  it('refuses opening runs to a viewer and to a read-only token', async () => {
    const viewer = (await t.user('ml-viewer', 'viewer')).token;
    expect((await post('runs/create', viewer, { experiment_id: exp })).body.error_code).toBe('PERMISSION_DENIED');
    const [me] = await t.app.services.db.select().from(identities).where(eq(identities.name, 'ml-owner'));
    const readOnly = await issueToken(t.app.services.db, me!.id, 'read-only', { scopes: ['read:Run'] });
    expect((await get('runs/get', readOnly, { run_id: open })).status).toBe(200);
    expect((await post('runs/log-metric', readOnly, { run_id: open, key: 'x', value: 1, timestamp: 1 })).body.error_code).toBe('PERMISSION_DENIED');
  });
});

describe("a task's own token", () => {
  it('is minted with a claim the control plane lets run, bound to that task and attempt', async () => {
    const mint = taskTracking(t.app.services.db, () => t.url);
    const claims = [
      { taskId: open, runId: 'r', attempt: 1, host: 'h' },
      { taskId: secret, runId: 'r', attempt: 1, host: 'h' },
    ];
    const [allowed, dropped] = await mint(claims, [{ verdict: 'run' }, { verdict: 'drop', reason: 'finished' }]);
    expect(dropped).toEqual({ verdict: 'drop', reason: 'finished' });
    expect(allowed).toMatchObject({ verdict: 'run', tracking: { uri: t.url, runId: open } });
    const token = allowed!.verdict === 'run' ? allowed!.tracking!.token : '';
    expect((await post('runs/log-metric', token, { run_id: open, key: 'minted', value: 1, timestamp: 1 })).status).toBe(200);
    expect((await get('runs/get', token, { run_id: secret })).body.error_code).toBe('RESOURCE_DOES_NOT_EXIST');
    const [stale] = await mint([{ ...claims[0]!, attempt: 2 }], [{ verdict: 'run' }]);
    const staleToken = stale!.verdict === 'run' ? stale!.tracking!.token : '';
    expect((await post('runs/log-metric', staleToken, { run_id: open, key: 'stale', value: 1, timestamp: 1 })).status).toBe(403);
  });

  it('reaches its task only, opens no runs, and gets nothing from GraphQL', async () => {
    const [me] = await t.app.services.db.select().from(identities).where(eq(identities.name, 'ml-owner'));
    const bound = await issueToken(t.app.services.db, me!.id, 'task', { scopes: [], task: { id: open, attempt: 1 } });
    expect((await post('runs/log-metric', bound, { run_id: open, key: 'from-task', value: 1, timestamp: 1 })).status).toBe(200);
    const other = await get('runs/get', bound, { run_id: secret });
    expect(await shape(other, secret)).toEqual(await shape(await get('runs/get', bound, { run_id: MISSING }), MISSING));
    const model = await post('runs/log-model', bound, { run_id: secret, model_json: modelJson(secret) });
    expect(await shape(model, secret)).toEqual(await shape(await post('runs/log-model', bound, { run_id: MISSING, model_json: modelJson(MISSING) }), MISSING));
    expect((await post('runs/create', bound, { experiment_id: exp })).status).toBe(403);
    expect(((await post('runs/search', bound, { experiment_ids: [exp] })).body.runs ?? []).length).toBe(0);
    const gql = await fetch(`${t.url}/graphql`, {
      method: 'POST',
      headers: { authorization: `Bearer ${bound}`, 'content-type': 'application/json' },
      body: JSON.stringify({ query: `mutation { startExternalRun(name: "x") { id } }` }),
    }).then((r) => r.json() as any);
    expect(gql.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    // An ended run takes nothing from its task's token.
    await post('runs/update', owner, { run_id: open, status: 'FINISHED' });
    expect((await post('runs/log-metric', bound, { run_id: open, key: 'late', value: 1, timestamp: 1 })).status).toBe(403);
  });
});
