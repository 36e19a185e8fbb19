// A control plane SIGKILLed between a signal and its triggered run's record (real Postgres, the control plane as its
// own process): after a restart on the same database the trigger has fired exactly once: one run, and the firing
// recorded STARTED with that run; a redelivery of the same hook afterwards starts nothing more.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { packDirectory } from '../../server/artifacts/archive';
import { signHook } from '../../server/triggers/hooks';
import { fixturesDir } from '../harness/app';
import { apiClient, PUBLISH } from '../harness/client';
import { type ControlPlaneProcess, startControlPlaneProcess } from '../harness/control-plane-process';
import { freePort } from '../harness/ports';
import { type PostgresServer, startPostgres } from '../harness/postgres';
import { until } from './world';

const TOKEN = 'atl_triggers-crash-admin-token';
let pg: PostgresServer;
let dataDir = '';
const planes: ControlPlaneProcess[] = [];

beforeAll(async () => {
  pg = await startPostgres({ durableCommits: true, migrated: true });
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'atelier-triggers-crash-'));
}, 120_000);
afterAll(async () => {
  for (const p of planes) await p.kill();
  await pg?.stop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

const env = (port: number, extra: Record<string, string> = {}) => ({
  PORT: String(port),
  DATABASE_URL: pg.url,
  ATELIER_DATA_DIR: dataDir,
  ATELIER_ADMIN_TOKEN: TOKEN,
  ATELIER_TICK_MS: '200',
  ATELIER_TRIGGER_POLL_MS: '100',
  ...extra,
});

it('fires once after the restart', async () => {
  const port = await freePort();
  const first = await startControlPlaneProcess(env(port, { ATELIER_TEST_CRASH_AFTER: 'trigger-run-started' }));
  planes.push(first);
  const api = apiClient(first.url, TOKEN);
  expect((await api.upload(PUBLISH, {}, 'artifact', await packDirectory(path.join(fixturesDir, 'modules', 'echo')))).errors).toBeUndefined();
  await api.gql(`mutation ($s: String!) { createWorkflow(spec: $s) { created } }`, {
    s: JSON.stringify({ name: 'on-hook', tasks: [{ name: 'say', module: 'test/echo', pool: 'parked' }] }),
  });
  const { createTrigger } = await api.gql(`mutation { createTrigger(input: { workflow: "on-hook", name: "crashy", kind: HTTP }) { secret } }`);
  const body = '{"n":1}';
  const post = (url: string) => {
    const ts = String(Math.floor(Date.now() / 1000));
    return fetch(`${url}/hooks/trigger/crashy`, {
      method: 'POST',
      headers: { 'x-atelier-timestamp': ts, 'x-atelier-delivery': 'once', 'x-atelier-signature': signHook(createTrigger.secret, ts, 'once', body) },
      body,
    });
  };
  // The dispatcher starts the run, then the process dies before recording the firing: the request gets no answer.
  await post(first.url).catch(() => undefined);
  await until('the control plane to die at the crash point', async () => !first.alive(), 60_000);

  const second = await startControlPlaneProcess(env(port));
  planes.push(second);
  const again = apiClient(second.url, TOKEN);
  const FIRINGS = `{ trigger(id: "crashy") { firings { outcome run { id } } } runs(filter: { trigger: [EVENT] }, first: 10) { edges { node { id } } } }`;
  const state = await until(
    'the firing to be recorded after the restart',
    async () => {
      const r = await again.gql(FIRINGS);
      return r.trigger.firings[0]?.outcome === 'STARTED' ? r : null;
    },
    60_000,
  );
  expect(state.trigger.firings).toHaveLength(1);
  expect(state.runs.edges).toHaveLength(1);
  expect(state.trigger.firings[0].run.id).toBe(state.runs.edges[0].node.id);

  // The same delivery again is the same signal and run.
  const redelivered = await (await post(second.url)).json();
  expect(redelivered).toMatchObject({ outcome: 'STARTED', runId: state.runs.edges[0].node.id });
  expect((await again.gql(FIRINGS)).runs.edges).toHaveLength(1);
}, 240_000);
