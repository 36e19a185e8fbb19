// The embedded default (PGlite, in-process bus and host) killed mid-run and started again on the same data
// directory: the attempt that was running in the killed process is known lost at once (the embedded database is one
// process's at a time, so its embedded host died with it) and retried, not after the heartbeat timeout's silence;
// the run then finishes. Also when the new process has the killed one's pid, as a container restarted has.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { packDirectory } from '../../server/artifacts/archive';
import { fixturesDir } from '../harness/app';
import { apiClient, PUBLISH } from '../harness/client';
import { type ControlPlaneProcess, startControlPlaneProcess } from '../harness/control-plane-process';
import { seedEmbeddedDatabase } from '../harness/pglite-template';
import { freePort } from '../harness/ports';
import { until } from '../triggers/world';

const TOKEN = 'atl_embedded-restart-admin-token';
let dataDir = '';
const planes: ControlPlaneProcess[] = [];

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'atelier-embedded-restart-'));
  // A migrated copy: the first control plane would otherwise migrate an empty PGlite (~8 s of CPU) before serving.
  await seedEmbeddedDatabase(dataDir);
});
afterAll(async () => {
  for (const p of planes) await p.kill();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

const env = (port: number) => ({
  PORT: String(port),
  ATELIER_DATA_DIR: dataDir,
  ATELIER_ADMIN_TOKEN: TOKEN,
  ATELIER_TICK_MS: '200',
  // Far longer than this test waits: only knowing the host ended can retry the attempt in time.
  ATELIER_HEARTBEAT_TIMEOUT_SECONDS: '600',
});

/** The module and a workflow of one task that naps 4 s (again on a directory that has them: nothing changes). */
async function longNap(api: ReturnType<typeof apiClient>) {
  expect((await api.upload(PUBLISH, {}, 'artifact', await packDirectory(path.join(fixturesDir, 'modules', 'sleep')))).errors).toBeUndefined();
  await api.gql(`mutation ($s: String!) { createWorkflow(spec: $s) { created } }`, {
    s: JSON.stringify({ name: 'long-nap', tasks: [{ name: 'nap', module: 'test/sleep', parameters: { ms: 4000 } }] }),
  });
}

const TASK = `query ($id: ID!) { run(id: $id) { status tasks { status attempt message } } }`;

it('retries the attempt the killed process was running as soon as it is back, and finishes the run', async () => {
  const port = await freePort();
  const first = await startControlPlaneProcess(env(port));
  planes.push(first);
  const api = apiClient(first.url, TOKEN);
  await longNap(api);
  const { startRun } = await api.gql(`mutation { startRun(workflow: "long-nap") { id } }`);
  await until('the task to run', async () => (await api.gql(TASK, { id: startRun.id })).run.tasks[0].status === 'RUNNING', 60_000);
  await first.kill('SIGKILL');

  const second = await startControlPlaneProcess(env(port));
  planes.push(second);
  const again = apiClient(second.url, TOKEN);
  const retried = await until(
    'the lost attempt to be retried',
    async () => {
      const { run } = await again.gql(TASK, { id: startRun.id });
      return run.tasks[0].attempt >= 2 ? run : null;
    },
    60_000,
  );
  expect(retried.tasks[0].attempt).toBe(2);
  const done = await until('the run to finish', async () => {
    const { run } = await again.gql(TASK, { id: startRun.id });
    return run.status === 'SUCCEEDED' ? run : null;
  });
  expect(done.tasks[0]).toMatchObject({ status: 'SUCCEEDED', attempt: 2 });
}, 240_000);

// A container restarted: the same hostname and, `npm start` being the same few processes in a fresh pid namespace,
// the same pid. Each control plane runs as the second process of a pid namespace of its own (bwrap --unshare-pid).
it('retries at once also when the new process has the pid the killed one had', async () => {
  const pidNamespace = ['bwrap', '--dev-bind', '/', '/', '--unshare-pid', '--die-with-parent', '--'];
  for (const p of planes) await p.kill(); // the case above's, on the same directory
  const port = await freePort();
  const first = await startControlPlaneProcess(env(port), { wrap: pidNamespace });
  planes.push(first);
  const api = apiClient(first.url, TOKEN);
  await longNap(api);
  const { startRun } = await api.gql(`mutation { startRun(workflow: "long-nap") { id } }`);
  await until('the task to run', async () => (await api.gql(TASK, { id: startRun.id })).run.tasks[0].status === 'RUNNING', 60_000);
  await first.kill('SIGKILL');

  const second = await startControlPlaneProcess(env(port), { wrap: pidNamespace });
  planes.push(second);
  const again = apiClient(second.url, TOKEN);
  const done = await until(
    'the lost attempt to be retried and the run to finish',
    async () => {
      const { run } = await again.gql(TASK, { id: startRun.id });
      return run.status === 'SUCCEEDED' ? run : null;
    },
    90_000,
  );
  expect(done.tasks[0]).toMatchObject({ status: 'SUCCEEDED', attempt: 2 });
}, 240_000);
