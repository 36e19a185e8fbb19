// The control plane SIGKILLed mid-canary (real Postgres, the control plane as its own process; the local deployer's
// router and servers outlive it, as serving must): while nobody owns the deployment the router keeps serving the
// split; a restarted control plane takes the deployment over within one lease (ATELIER_DEPLOYMENT_LEASE_MS), finds the
// rollout where the database left it and re-attaches to what runs (nothing started twice), and a person's promote
// then moves all traffic to the new revision. Deleting it stops every process it started.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { liveProcesses } from '../../plugins/deployers/local';
import { createFileObjectStore } from '../../server/artifacts/store';
import { type Database, openDatabase } from '../../server/db/client';
import { apiClient } from '../harness/client';
import { type ControlPlaneProcess, startControlPlaneProcess } from '../harness/control-plane-process';
import { freePort } from '../harness/ports';
import { type PostgresServer, startPostgres } from '../harness/postgres';
import { DEPLOYMENT, irisVersion, predict, until } from './setup';

const TOKEN = 'atl_deployments-crash-admin-token';
let pg: PostgresServer;
let database: Database | undefined;
let dataDir = '';
const planes: ControlPlaneProcess[] = [];

const split = (d: any) => Object.fromEntries(d.traffic.map((x: any) => [x.revision, x.percent]));
const same = (a: object, b: object) => JSON.stringify(a) === JSON.stringify(b);

beforeAll(async () => {
  pg = await startPostgres({ durableCommits: true, migrated: true });
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'atelier-deployments-crash-'));
  // The model versions, written as the registry keeps them: rows in Postgres, files in the data dir's object store.
  database = await openDatabase({ url: pg.url, dataDir, maxConnections: 2 });
  const store = createFileObjectStore(path.join(dataDir, 'objects'));
  for (const version of [1, 2]) await irisVersion({ db: database.db, store }, version);
}, 120_000);

afterAll(async () => {
  for (const p of planes) await p.kill();
  await database?.close();
  await pg?.stop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

const env = (port: number) => ({
  PORT: String(port),
  DATABASE_URL: pg.url,
  ATELIER_DATA_DIR: dataDir,
  ATELIER_ADMIN_TOKEN: TOKEN,
  ATELIER_DEPLOYMENT_POLL_MS: '100',
  ATELIER_DEPLOYMENT_LEASE_MS: '2000',
});

it('keeps serving the split while the control plane is dead, and a restarted one takes the rollout over', async () => {
  const stateDir = path.join(dataDir, 'deployments', 'local');
  const port = await freePort();
  const first = await startControlPlaneProcess(env(port));
  planes.push(first);
  const api = apiClient(first.url, TOKEN);
  const alias = (version: number) => api.gql(`mutation { setModelAlias(model: "ml/iris", alias: "champion", version: "${version}") { version { version } } }`);
  await alias(1);
  await api.gql(`mutation ($i: CreateDeploymentInput!) { createDeployment(input: $i) { id } }`, {
    i: {
      name: 'iris-crash',
      model: 'ml/iris@champion',
      domain: 'experimentation',
      rollout: { steps: [{ percent: 50, dwellSeconds: 3600 }, { percent: 100 }] },
    },
  });
  const show = async (client: ReturnType<typeof apiClient>) => (await client.gql(DEPLOYMENT, { n: 'iris-crash' })).deployment;
  await until(
    'revision 1 serving',
    async () => {
      const d = await show(api);
      return d?.ready && same(split(d), { 1: 100 }) && d;
    },
    60_000,
  );
  await alias(2);
  const canary = await until(
    'the canary at 50/50',
    async () => {
      const d = await show(api);
      return d.ready && same(split(d), { 1: 50, 2: 50 }) && d.rollout?.state === 'RUNNING' && d;
    },
    60_000,
  );
  const running = await liveProcesses(stateDir);
  expect(running).toBeGreaterThanOrEqual(3); // the router and a server per revision

  await first.kill('SIGKILL');
  // Nobody owns the deployment now; the router it started still splits requests between both revisions.
  const answered = new Set<string | null>();
  for (let i = 0; i < 60 && answered.size < 2; i++) answered.add((await predict(canary.url)).revision);
  expect([...answered].sort()).toEqual(['1', '2']);

  const second = await startControlPlaneProcess(env(port));
  planes.push(second);
  const again = apiClient(second.url, TOKEN);
  const resumed = await show(again);
  expect(resumed.rollout).toMatchObject({ revision: 2, from: 1, percent: 50, state: 'RUNNING' });
  // A person's promote is carried out by the new process once the dead one's lease has run out.
  await again.gql(`mutation { promoteDeployment(id: "iris-crash", reason: "after the crash") { id } }`).catch((error) => {
    throw new Error(`${error.message}\n--- the restarted control plane said:\n${second.output().slice(-6000)}`);
  });
  const promoted = await until(
    'all traffic on revision 2',
    async () => {
      const d = await show(again);
      return d.ready && same(split(d), { 2: 100 }) && d.rollout?.state === 'COMPLETE' && d;
    },
    60_000,
  );
  expect(promoted.url).toBe(canary.url);
  for (let i = 0; i < 10; i++) expect(await predict(promoted.url)).toEqual({ revision: '2', version: 'ml/iris/2' });
  // Re-attached, not restarted: no router or server was started a second time.
  expect(await liveProcesses(stateDir)).toBe(running);

  await again.gql(`mutation { deleteDeployment(id: "iris-crash") }`);
  await until('every process of the deployment stopped', async () => (await liveProcesses(stateDir)) === 0, 60_000);
}, 300_000);
