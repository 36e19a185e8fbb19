// MLflow's REST API keeps the limits the GraphQL edge keeps: a NUL
// character anywhere (which Postgres cannot store in text) and JSON nested past MAX_JSON_DEPTH (which the recursive
// code behind it, JSON serialisation and jsonb, cannot take) are the caller's mistakes, answered with a typed 400
// that names where, and nothing is written. They were 500s: an internal error for a malformed request.
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tasks } from '../../server/db/tables/runs';
import { experiments, loggedParams, runTags } from '../../server/db/tables/tracking';
import { startTestApp, type TestApp } from '../harness/app';

let t: TestApp;
let owner: string;
let exp: string;
let run: string;

async function call(method: string, path: string, body?: string) {
  const res = await fetch(`${t.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${owner}`, 'content-type': 'application/json' },
    body,
  });
  const text = await res.text();
  return {
    status: res.status,
    text,
    json: (() => {
      try {
        return JSON.parse(text);
      } catch {
        return null;
      }
    })() as any,
  };
}
const mlflow = (path: string, body: unknown) => call('POST', `/api/2.0/mlflow/${path}`, typeof body === 'string' ? body : JSON.stringify(body));
const nested = (depth: number) => `${'['.repeat(depth)}1${']'.repeat(depth)}`;

beforeAll(async () => {
  t = await startTestApp();
  owner = (await t.user('edge-owner')).token;
  exp = (await mlflow('experiments/create', { name: 'edges' })).json.experiment_id;
  run = (await mlflow('runs/create', { experiment_id: exp, run_name: 'r' })).json.run.info.run_id;
}, 60_000);
afterAll(async () => t?.stop());

describe('MLflow routes', () => {
  it('refuse a NUL anywhere in a JSON body with INVALID_PARAMETER_VALUE, storing nothing', async () => {
    for (const [path, body] of [
      ['runs/log-parameter', { run_id: run, key: 'k', value: 'v\u0000' }],
      ['runs/log-batch', { run_id: run, params: [{ key: 'p', value: '\u0000' }] }],
      ['experiments/create', { name: 'e\u0000' }],
      ['runs/create', { experiment_id: exp, run_name: 'x\u0000' }],
      ['runs/set-tag', { run_id: run, key: 'k', value: 'a\u0000b' }],
    ] as const) {
      const r = await mlflow(path, body);
      expect([r.status, r.json?.error_code], `${path}: ${r.text}`).toEqual([400, 'INVALID_PARAMETER_VALUE']);
      expect(r.json.message).toMatch(/NUL/);
    }
    const { db } = t.app.services;
    expect(await db.select().from(loggedParams).where(eq(loggedParams.taskId, run))).toEqual([]);
    expect((await db.select().from(experiments)).map((e) => e.name)).not.toContain('e\u0000');
  });

  it('refuse a NUL in the query string', async () => {
    const r = await call('GET', `/api/2.0/mlflow/runs/get?run_id=${run}%00`);
    expect([r.status, r.json?.error_code], r.text).toEqual([400, 'INVALID_PARAMETER_VALUE']);
  });

  it('refuse JSON nested too deep, in the body and inside log-model’s model_json', async () => {
    const body = await mlflow('runs/log-batch', `{"run_id":"${run}","tags":[{"key":"k","value":"v","x":${nested(100_000)}}]}`);
    expect([body.status, body.json?.error_code], body.text).toEqual([400, 'INVALID_PARAMETER_VALUE']);
    expect(body.json.message).toMatch(/nests deeper than 64 levels/);
    const model = `{"artifact_path":"m","utc_time_created":"x","run_id":"${run}","flavors":{"a":{"b":${nested(100_000)}}}}`;
    const logged = await mlflow('runs/log-model', { run_id: run, model_json: model });
    expect([logged.status, logged.json?.error_code], logged.text).toEqual([400, 'INVALID_PARAMETER_VALUE']);
    expect(logged.json.message).toMatch(/model_json nests deeper than 64 levels/);
    const [task] = await t.app.services.db.select().from(tasks).where(eq(tasks.id, run));
    expect(await t.app.services.db.select().from(runTags).where(eq(runTags.runId, task!.runId))).toEqual([]);
  });
});
