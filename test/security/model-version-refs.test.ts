// Odd version numbers in a model reference (`ns/model@N`, MLflow's `version`), as a caller may send them: one past
// any version there can be (past Postgres' integer) reached the query, which Postgres refused: a 500 for what is a
// version that does not exist. Each is now the reference's own typed answer, and nothing changes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../harness/app';

let t: TestApp;

async function mlflow(path: string, body: Record<string, string>, method = 'POST') {
  const query = method === 'GET' ? `?${new URLSearchParams(body)}` : '';
  const res = await fetch(`${t.url}/api/2.0/mlflow/${path}${query}`, {
    method,
    headers: { authorization: `Bearer ${t.app.adminToken}`, 'content-type': 'application/json' },
    body: method === 'GET' ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json().catch(() => null)) as { error_code?: string } | null };
}

beforeAll(async () => {
  t = await startTestApp();
  expect((await mlflow('registered-models/create', { name: 'refs/churn' })).status).toBe(200);
}, 60_000);
afterAll(async () => t?.stop());

describe('a model version named by number', () => {
  it('past any version (2^31, 20 digits) is not found, as version 0 is; malformed ones are bad input', async () => {
    for (const version of ['0', '2147483648', '99999999999', '99999999999999999999', '0000000000000000000001']) {
      const r = await mlflow('model-versions/get', { name: 'refs/churn', version }, 'GET');
      expect([r.status, r.body?.error_code], version).toEqual([404, 'RESOURCE_DOES_NOT_EXIST']);
    }
    for (const version of ['-1', '1e3', ' 3', '3.0']) {
      const r = await mlflow('model-versions/get', { name: 'refs/churn', version }, 'GET');
      expect([r.status, r.body?.error_code], version).toEqual([400, 'INVALID_PARAMETER_VALUE']);
    }
    for (const ref of ['refs/churn@99999999999', 'refs/churn@0', 'refs/churn@-1', 'refs/churn@ 3', 'refs/churn@1e3']) {
      const r = await t.api.raw(`query ($r: String!) { modelVersion(ref: $r) { version } }`, { r: ref });
      expect(r.errors ?? [], ref).toEqual([]);
      expect(r.data.modelVersion, ref).toBeNull();
    }
  });
});
