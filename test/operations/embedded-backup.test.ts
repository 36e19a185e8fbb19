// The embedded default's backup as the README says to take it: `ATELIER_DATA_DIR` copied whole while the control plane
// is stopped (PGlite's files are a live Postgres data directory: copied while it writes, they are no consistent
// snapshot), and the control plane started on the copy elsewhere: runs, the admin token and module archives come back with it.
import { cp, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type App, buildApp } from '../../server/app';
import { packDirectory } from '../../server/artifacts/archive';
import { loadConfig } from '../../server/config';
import { fixturesDir } from '../harness/app';
import { apiClient, PUBLISH } from '../harness/client';
import { seedEmbeddedDatabase } from '../harness/pglite-template';

let scratch: string;
let running: App | undefined;
beforeAll(async () => {
  scratch = await mkdtemp(path.join(os.tmpdir(), 'atelier-embedded-backup-'));
});
afterAll(async () => {
  await running?.stop();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

async function start(dataDir: string) {
  running = await buildApp(
    loadConfig({ PORT: '0', ATELIER_DATA_DIR: dataDir, ATELIER_LOG_LEVEL: 'silent', ATELIER_TICK_MS: '100', ATELIER_SHUTDOWN_GRACE_SECONDS: '2' }),
  );
  const url = await running.start();
  return apiClient(url, running.adminToken);
}
const RUN = `query ($id: ID!) { run(id: $id) { status tasks { status outputs } } }`;
async function runToEnd(api: ReturnType<typeof apiClient>, message: string) {
  await api.gql(`mutation ($spec: String!) { createWorkflow(spec: $spec) { created } }`, {
    spec: JSON.stringify({ name: 'copied', tasks: [{ name: 'say', module: 'test/echo', parameters: { message } }] }),
  });
  const { startRun } = await api.gql(`mutation { startRun(workflow: "copied") { id } }`);
  for (const deadline = Date.now() + 60_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 100))) {
    const { run } = await api.gql(RUN, { id: startRun.id });
    if (['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(run.status)) return { id: startRun.id as string, run };
  }
  throw new Error(`run ${startRun.id} did not end`);
}

it('starts on a copy of ATELIER_DATA_DIR taken while stopped, with its runs, admin token and archives', async () => {
  const original = path.join(scratch, 'original');
  await seedEmbeddedDatabase(original);
  let api = await start(original);
  const token = running!.adminToken;
  const published = await api.upload(PUBLISH, { tags: ['latest'] }, 'artifact', await packDirectory(path.join(fixturesDir, 'modules', 'echo')));
  expect(published.errors).toBeUndefined();
  const before = await runToEnd(api, 'before the backup');
  expect(before.run.status).toBe('SUCCEEDED');
  await running!.stop();
  running = undefined;

  const copy = path.join(scratch, 'restored');
  await cp(original, copy, { recursive: true });
  await rm(original, { recursive: true, force: true });
  api = await start(copy);
  expect(running!.adminToken).toBe(token);
  expect((await api.gql(RUN, { id: before.id })).run).toEqual(before.run);
  // Not a cache hit: the module runs again from what the copy holds.
  expect((await runToEnd(api, 'after the restore')).run.status).toBe('SUCCEEDED');
}, 120_000);
