// An executor host stopped with SIGTERM while an attempt runs (a node drained, a deploy), on real Postgres and
// nats-server with the host in its own process: the attempt finishes and reports within the host's stop grace
// (ATELIER_EXECUTOR_STOP_GRACE_SECONDS); past the grace it is stopped, its module killed, and handed back at once
// with a reason in the run's log, so another host runs it without the heartbeat timeout's wait.
import { readdir, readFile, readlink } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { packDirectory } from '../../server/artifacts/archive';
import { fixturesDir, startTestApp, type TestApp } from '../harness/app';
import { apiClient, PUBLISH } from '../harness/client';
import { type ExecutorProcess, startExecutorProcess } from '../harness/executor-process';
import { type NatsServer, startNats } from '../harness/nats';
import { type PostgresServer, startPostgres } from '../harness/postgres';
import { until } from '../triggers/world';

let pg: PostgresServer;
let nats: NatsServer;
let t: TestApp;
const hosts: ExecutorProcess[] = [];

beforeAll(async () => {
  [pg, nats] = await Promise.all([startPostgres({ migrated: true }), startNats()]);
  // Far longer than the test: only the host saying it let the attempt go can get it run again in time.
  t = await startTestApp({ DATABASE_URL: pg.url, NATS_URL: nats.url, ATELIER_HEARTBEAT_TIMEOUT_SECONDS: '600' });
  const api = apiClient(t.url, t.app.adminToken);
  expect((await api.upload(PUBLISH, {}, 'artifact', await packDirectory(path.join(fixturesDir, 'modules', 'sleep')))).errors).toBeUndefined();
}, 120_000);
afterAll(async () => {
  for (const h of hosts) await h.stop('SIGKILL');
  await t?.stop();
  await nats?.stop();
  await pg?.stop();
});

const host = async (graceSeconds: number, name: string) => {
  const h = await startExecutorProcess(
    { NATS_URL: nats.url, ATELIER_URL: t.url, ATELIER_TOKEN: t.app.adminToken, ATELIER_DATA_DIR: path.join(t.dataDir, name) },
    ['local'],
    [],
    { ATELIER_MODULE_ISOLATION: 'none', ATELIER_EXECUTOR_STOP_GRACE_SECONDS: String(graceSeconds) },
  );
  hosts.push(h);
  return h;
};

const RUN = `query ($id: ID!) { run(id: $id) { status tasks { status attempt } } }`;
const LOGS = `query ($id: ID!) { run(id: $id) { tasks { logs { line } } } }`;

async function startNap(name: string, ms: number) {
  const api = apiClient(t.url, t.app.adminToken);
  await api.gql(`mutation ($s: String!) { createWorkflow(spec: $s) { created } }`, {
    s: JSON.stringify({ name, tasks: [{ name: 'nap', module: 'test/sleep', parameters: { ms } }] }),
  });
  const { startRun } = await api.gql(`mutation ($w: String!) { startRun(workflow: $w) { id } }`, { w: name });
  await until('the task to run', async () => (await api.gql(RUN, { id: startRun.id })).run.tasks[0].status === 'RUNNING', 20_000);
  return { api, id: startRun.id as string };
}

/** The sleep module's processes alive now, its supervisor's too (their command lines name its entrypoint, in a host's work folder). */
async function sleepModules(): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmd = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    const cwd = await readlink(`/proc/${entry}/cwd`).catch(() => '');
    if (cmd.includes('main.mjs') && cwd.startsWith(t.dataDir)) pids.push(Number(entry));
  }
  return pids;
}

it('lets the running attempt finish within the grace, and reports it before exiting', async () => {
  const h = await host(60, 'graceful');
  const { api, id } = await startNap('finishes-in-grace', 1500);
  h.child.kill('SIGTERM');
  await until('the host to exit', async () => !h.alive(), 20_000);
  // The host published the result before exiting; the control plane records it from the bus a moment later.
  const run = await until('the run to be recorded as ended', async () => {
    const r = (await api.gql(RUN, { id })).run;
    return r.status !== 'RUNNING' && r;
  });
  expect(run).toEqual({ status: 'SUCCEEDED', tasks: [{ status: 'SUCCEEDED', attempt: 1 }] });
  expect(h.output()).toMatch(/may finish within 60 s/);
}, 30_000);

it('past the grace stops the module and hands the attempt back at once, saying why, for another host to run', async () => {
  const h = await host(1, 'hasty');
  const { api, id } = await startNap('handed-back', 6000);
  await until('its module to be seen', async () => (await sleepModules()).length > 0);
  h.child.kill('SIGTERM');
  await until('the host to exit', async () => !h.alive(), 20_000);
  expect(await sleepModules()).toEqual([]); // nothing it started outlives it
  await host(0, 'next');
  const run = await until('another host to finish the run', async () => {
    const r = (await api.gql(RUN, { id })).run;
    return r.status === 'SUCCEEDED' && r;
  });
  expect(run.tasks).toEqual([{ status: 'SUCCEEDED', attempt: 1 }]);
  const lines = (await api.gql(LOGS, { id })).run.tasks[0].logs.map((l: { line: string }) => l.line);
  expect(lines.join('\n')).toMatch(/executor host .* stopped: the attempt is handed back/);
}, 30_000);
