// A database restored from a backup while the deployer's own state ran on (README "Backups and restore"): the local
// deployer's state directory holds a revision applied after the backup, under the number the restored database gives
// its next revision. Real Postgres (pg_dump, pg_restore into a new database) and the local deployer's processes. The
// next revision used to take that number and be refused by the deployer (REVISION_CONFLICT) for good; it now takes
// a number past every revision the deployer holds.
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { TestApp } from '../harness/app';
import { type ApiClient, apiClient } from '../harness/client';
import { type PostgresServer, startPostgres } from '../harness/postgres';
import { CREATE_DEPLOYMENT, deploymentSteps, deploymentWorld, endDeploymentWorld, startDeploymentApp } from './setup';

const run = promisify(execFile);
const PG_BIN = '/usr/lib/postgresql/15/bin';
const ADMIN = 'atl_the-admin-token-of-the-deployment-restore-test';

let pg: PostgresServer;
let dataDir: string;
let t: TestApp | undefined;
let alice: ApiClient;
const { alias, serving, show } = deploymentSteps(() => alice);

beforeAll(async () => {
  pg = await startPostgres({ durableCommits: true, migrated: true });
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'atelier-deployment-restore-'));
}, 120_000);
afterAll(async () => {
  if (t) await endDeploymentWorld(t);
  await pg?.stop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

// The dump may hold a replica's lease on the deployment: the restored control plane takes it over once it expires.
const LEASE = { ATELIER_DEPLOYMENT_LEASE_MS: '2000' };
const databaseUrl = (name: string) => pg.url.replace(/\/atelier$/, `/${name}`);

it('gives the next revision after a restore a number the deployer has not served', async () => {
  ({ t, alice } = await deploymentWorld(undefined, { DATABASE_URL: pg.url, ATELIER_DATA_DIR: dataDir, ATELIER_ADMIN_TOKEN: ADMIN, ...LEASE }));
  await alice.gql(CREATE_DEPLOYMENT, { i: { name: 'iris-restore', model: 'ml/iris@champion', domain: 'experimentation' } });
  await serving('iris-restore', 1);
  const { token } = alice as ApiClient & { token: string };

  // The backup; then revision 2 (version 2) is rolled out, and the database is lost.
  const dump = path.join(dataDir, 'atelier.dump');
  await run(`${PG_BIN}/pg_dump`, ['--format=custom', `--file=${dump}`, pg.url]);
  await alias('champion', 2);
  await serving('iris-restore', 2);
  await t.stop();
  t = undefined;

  // The restore into a new database; the deployer's state directory (in ATELIER_DATA_DIR) is the one that ran on.
  await run(`${PG_BIN}/psql`, [pg.url, '-c', 'create database restored']);
  await run(`${PG_BIN}/pg_restore`, ['--no-owner', `--dbname=${databaseUrl('restored')}`, dump]);
  t = await startDeploymentApp(undefined, { DATABASE_URL: databaseUrl('restored'), ATELIER_DATA_DIR: dataDir, ATELIER_ADMIN_TOKEN: ADMIN, ...LEASE });
  alice = apiClient(t.url, token);

  // The next version: its revision must not reuse number 2, which the deployer served with version 2.
  await alias('champion', 5);
  const d = await serving('iris-restore', 3);
  expect(d.revisions.find((r: { number: number }) => r.number === 3)).toMatchObject({ modelVersion: { version: 5 } });
  expect(d.revisions.map((r: { number: number }) => r.number)).not.toContain(2);
  expect((await show('iris-restore')).revisions.some((r: { state: string }) => r.state === 'FAILED')).toBe(false);
}, 240_000);
