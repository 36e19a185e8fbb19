// A database restored from a backup taken before a deployment was created (README "Backups and restore"): its local
// deployer still serves it (model server and router processes, its state directory), and no row names it. The
// restored control plane lists what the deployer holds for its installation and, after the grace, stops what no row
// names: audited, counted in a metric (unless told to only report them: ATELIER_DEPLOYMENT_STOP_ORPHANS=false). A deployment the restored database has keeps serving, and one another
// installation applied through a deployer over the same state directory is never listed, so never stopped. Real
// Postgres (pg_dump, pg_restore into a new database) and the local deployer's real processes.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type Deployer, DeployerError } from '../../plugins/deployer-sdk';
import { createLocalDeployer } from '../../plugins/deployers/local';
import { auditEvents } from '../../server/db/tables/governance';
import { fixturesDir, type TestApp } from '../harness/app';
import { type ApiClient, apiClient } from '../harness/client';
import { type PostgresServer, startPostgres } from '../harness/postgres';
import { CREATE_DEPLOYMENT, deploymentSteps, deploymentWorld, endDeploymentWorld, predict, startDeploymentApp, until } from './setup';

const run = promisify(execFile);
const PG_BIN = '/usr/lib/postgresql/15/bin';
const ADMIN = 'atl_the-admin-token-of-the-orphaned-deployments-test';

let pg: PostgresServer;
let dataDir: string;
let t: TestApp | undefined;
let other: Deployer | undefined;
let alice: ApiClient;
const { serving } = deploymentSteps(() => alice);

beforeAll(async () => {
  pg = await startPostgres({ durableCommits: true });
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'atelier-deployment-orphans-'));
}, 120_000);
afterAll(async () => {
  if (other) {
    await other.delete('another-installations');
    await other.close?.();
  }
  if (t) await endDeploymentWorld(t);
  await pg?.stop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

// The dump may hold a replica's lease on a deployment: the restored control plane takes it over once it expires.
const ENV = { ATELIER_DEPLOYMENT_LEASE_MS: '2000', ATELIER_DEPLOYMENT_ORPHAN_GRACE_SECONDS: '1' };
const databaseUrl = (name: string) => pg.url.replace(/\/atelier$/, `/${name}`);
const answers = async (url: string) => (await predict(url).catch(() => null))?.revision === '1';

it('stops the deployment a restored database does not name, after the grace; keeps those it names and other installations’', async () => {
  ({ t, alice } = await deploymentWorld(undefined, { DATABASE_URL: pg.url, ATELIER_DATA_DIR: dataDir, ATELIER_ADMIN_TOKEN: ADMIN, ...ENV }));
  const { token } = alice as ApiClient & { token: string };
  await alice.gql(CREATE_DEPLOYMENT, { i: { name: 'iris-kept', model: 'ml/iris@champion', domain: 'experimentation' } });
  const kept = await serving('iris-kept', 1);

  // The backup; then a deployment is created and served, and the database is lost.
  const dump = path.join(dataDir, 'atelier.dump');
  await run(`${PG_BIN}/pg_dump`, ['--format=custom', `--file=${dump}`, pg.url]);
  const { createDeployment } = await alice.gql(CREATE_DEPLOYMENT, { i: { name: 'iris-orphan', model: 'ml/iris@champion', domain: 'experimentation' } });
  const orphan = await serving('iris-orphan', 1);
  const orphanDir = path.join(dataDir, 'deployments', 'local', 'deployments', createDeployment.id);
  expect(existsSync(orphanDir)).toBe(true);

  // Another control plane's deployment through a local deployer over the same state directory: another installation.
  other = createLocalDeployer({ stateDir: path.join(dataDir, 'deployments', 'local'), isolation: 'none', startupMs: 10_000 });
  const theirs = await other.apply(
    { id: 'another-installations', name: 'theirs', model: 'ml/iris@champion', domain: 'experimentation', settings: {}, installation: crypto.randomUUID() },
    {
      number: 1,
      modelVersion: { ref: 'ml/iris/1', digest: 'sha256:theirs', files: path.join(fixturesDir, 'iris-model') },
      serve: { command: [process.execPath, 'serve.mjs'] },
    },
  );
  expect(theirs.ready).toBe(true);
  await t.stop();
  t = undefined;

  // The restore into a new database, the deployer's state directory (in ATELIER_DATA_DIR) the one that ran on.
  await run(`${PG_BIN}/psql`, [pg.url, '-c', 'create database restored']);
  await run(`${PG_BIN}/pg_restore`, ['--no-owner', `--dbname=${databaseUrl('restored')}`, dump]);
  // Beside local, a deployer that cannot list: reported as unable to clean up, nothing more.
  const unknown = async (id: string): Promise<never> => {
    throw new DeployerError('UNKNOWN_DEPLOYMENT', `no deployment ${id} here`);
  };
  const unlisted: Deployer = { name: 'no-list', apply: (d) => unknown(d.id), status: unknown, setTraffic: unknown, rollback: unknown, delete: async () => {} };
  const restored = { DATABASE_URL: databaseUrl('restored'), ATELIER_DATA_DIR: dataDir, ATELIER_ADMIN_TOKEN: ADMIN, ...ENV };
  const metricsOf = async () => (await fetch(`${t!.url}/metrics`, { headers: { authorization: `Bearer ${ADMIN}` } })).text();

  // Told to only report (a copy that shares its deployers with another control plane): the orphan is counted, logged,
  // and still serving well past the grace.
  t = await startDeploymentApp(undefined, { ...restored, ATELIER_DEPLOYMENT_STOP_ORPHANS: 'false' }, [unlisted]);
  await until('the orphan reported', async () => /atelier_deployments_orphaned\{deployer="local"\} 1/.test(await metricsOf()), 60_000);
  await new Promise((resolve) => setTimeout(resolve, 3_000)); // the 1 s grace, and more sweeps than one, past
  expect(await answers(orphan.url)).toBe(true);
  expect(existsSync(orphanDir)).toBe(true);
  expect(await t.app.services.db.select().from(auditEvents).where(eq(auditEvents.action, 'deployment.orphan.stop'))).toEqual([]);
  await t.stop();

  t = await startDeploymentApp(undefined, restored, [unlisted]);
  alice = apiClient(t.url, token);

  // The orphan's model server and router stop, its state is gone; the audit log and the metric say so.
  // The stop is audited after the deployer's delete returns (orphans.ts): its end is the audit entry, not the files gone.
  const stopAudit = () => t!.app.services.db.select().from(auditEvents).where(eq(auditEvents.action, 'deployment.orphan.stop'));
  await until('the orphaned deployment stopped and audited', async () => (await stopAudit()).length > 0, 60_000);
  expect(existsSync(orphanDir)).toBe(false);
  expect(await answers(orphan.url)).toBe(false);
  const [entry] = await stopAudit();
  expect(entry).toMatchObject({ decision: 'allow', subject: 'deployment:iris-orphan', details: { deployer: 'local', id: createDeployment.id } });
  // Counted after the audit (orphans.ts): awaited, not read once.
  await until('the stop counted', async () => /atelier_deployments_orphans_stopped_total\{deployer="local"\} 1/.test(await metricsOf()), 10_000);
  const metrics = await metricsOf();
  expect(metrics).toMatch(/atelier_deployers_unable_to_clean_up\{deployer="no-list"\} 1/);
  expect(metrics).not.toMatch(/atelier_deployers_unable_to_clean_up\{deployer="local"\}/);

  // What the restored database names serves on; another installation's deployment was never touched.
  expect(await answers(kept.url)).toBe(true);
  expect((await serving('iris-kept', 1)).ready).toBe(true);
  expect(await answers(theirs.url!)).toBe(true);
  expect((await other.status('another-installations')).ready).toBe(true);
}, 240_000);
