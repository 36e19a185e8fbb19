// A full disk under the control plane's object store (a 1 MiB tmpfs, mounted here as root; skipped where mounting is
// not allowed): an upload that does not fit (an MLflow artifact, a module archive) is refused with a typed, retryable
// error that says the disk is full and what to do, keeps nothing (no file listed whose bytes are missing), and the
// same upload succeeds once there is space again.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packDirectory } from '../../server/artifacts/archive';
import { startTestApp, type TestApp } from '../harness/app';
import { mountTmpfs, unmountTmpfs } from '../harness/tmpfs';

const mounted = mountTmpfs('disk-full', '1m');

describe.skipIf(!mounted)('a full disk under the object store', () => {
  let t: TestApp;
  let scratch: string;
  beforeAll(async () => {
    t = await startTestApp({ ATELIER_OBJECTS_DIR: mounted! });
    scratch = await mkdtemp(path.join(os.tmpdir(), 'atelier-disk-full-module-'));
  }, 120_000);
  afterAll(async () => {
    await t?.stop();
    await unmountTmpfs(mounted);
    await rm(scratch, { recursive: true, force: true });
  });

  const mlflow = async (method: string, route: string, body?: BodyInit) => {
    const res = await fetch(`${t.url}${route}`, { method, headers: { authorization: `Bearer ${t.app.adminToken}` }, body });
    return { status: res.status, json: (await res.json().catch(() => undefined)) as any };
  };

  it('refuses an upload that does not fit, saying the disk is full, keeps nothing, and takes it once there is space', async () => {
    const { json: created } = await mlflow('POST', '/api/2.0/mlflow/runs/create', JSON.stringify({}));
    const runId = created.run.info.run_id as string;
    const file = `/api/2.0/mlflow-artifacts/artifacts/0/${runId}/artifacts/model.bin`;
    const big = randomBytes(2 * 1024 * 1024);
    const put = await mlflow('PUT', file, big);
    expect(put.status, JSON.stringify(put.json)).toBe(503);
    expect(put.json.message).toMatch(/out of disk space.*frees space/i);
    const listed = await mlflow('GET', `/api/2.0/mlflow-artifacts/artifacts?path=${encodeURIComponent(`0/${runId}/artifacts`)}`);
    expect(listed.json.files ?? []).toEqual([]);

    const dir = path.join(scratch, 'bulky');
    await mkdir(dir);
    await writeFile(path.join(dir, 'atelier.module.yaml'), 'namespace: test\nname: bulky\nentrypoint: main.mjs\nruntime: node\n');
    await writeFile(path.join(dir, 'main.mjs'), '');
    await writeFile(path.join(dir, 'weights.bin'), big);
    const archive = await packDirectory(dir);
    const publish = `mutation ($artifact: File!) { publishModuleVersion(artifact: $artifact, tags: ["latest"]) { version { ref } } }`;
    const refused = await t.api.upload(publish, {}, 'artifact', archive);
    expect(refused.errors?.[0]?.extensions?.code, JSON.stringify(refused)).toBe('UNAVAILABLE');
    expect(refused.errors?.[0]?.message ?? '').toMatch(/out of disk space.*frees space/i);
    expect((await t.api.gql(`{ module(name: "test/bulky") { name } }`)).module).toBeNull();

    execFileSync('mount', ['-o', 'remount,size=16m', mounted!]);
    expect((await mlflow('PUT', file, big)).status).toBe(200);
    const after = await mlflow('GET', `/api/2.0/mlflow-artifacts/artifacts?path=${encodeURIComponent(`0/${runId}/artifacts`)}`);
    expect(after.json.files).toEqual([{ path: 'model.bin', is_dir: false, file_size: big.length }]);
    const published = await t.api.upload(publish, {}, 'artifact', archive);
    expect(published.errors, JSON.stringify(published.errors)).toBeUndefined();
  }, 60_000);
});
