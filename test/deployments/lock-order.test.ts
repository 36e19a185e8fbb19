// Lock order on real Postgres: every transaction that writes a deployment's revisions takes the deployment's row
// first. The reconciler's release once wrote revision health first and the deployment after, while a person's promote
// held the deployment and wanted the revisions: Postgres killed one as a deadlock's victim and the promote answered
// INTERNAL_SERVER_ERROR (seen in CI, test/deployments/crash.test.ts). Here the two meet on purpose.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createFileObjectStore } from '../../server/artifacts/store';
import { type Database, openDatabase, queryRows } from '../../server/db/client';
import { deploymentRevisions, deployments } from '../../server/db/tables/deployments';
import { registeredModels } from '../../server/db/tables/registry';
import { release } from '../../server/deployments/lease';
import { type PostgresServer, startPostgres } from '../harness/postgres';
import { irisVersion } from './setup';

let pg: PostgresServer;
let database: Database;
let dataDir = '';

beforeAll(async () => {
  pg = await startPostgres();
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'atelier-deployments-locks-'));
  database = await openDatabase({ url: pg.url, dataDir, maxConnections: 4 });
}, 120_000);

afterAll(async () => {
  await database?.close();
  await pg?.stop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

it("a reconciler's release waits behind a person's change instead of deadlocking with it", async () => {
  const { db } = database;
  const versionId = await irisVersion({ db, store: createFileObjectStore(path.join(dataDir, 'objects')) }, 1);
  const [model] = await db.select().from(registeredModels).where(eq(registeredModels.name, 'iris'));
  const [d] = await db
    .insert(deployments)
    .values({
      name: 'locks',
      modelId: model!.id,
      pinnedVersionId: versionId,
      domain: 'experimentation',
      deployer: 'local',
      policy: { steps: [{ percent: 100 }] } as never,
      fallback: { kind: 'PREVIOUS' },
      leaseOwner: 'replica-a',
    })
    .returning();
  await db.insert(deploymentRevisions).values({ deploymentId: d!.id, number: 1, modelVersionId: versionId, state: 'SERVING' });
  const waiting = async () => (await queryRows<{ n: number }>(db, sql`select count(*)::int as n from pg_stat_activity where wait_event_type = 'Lock'`))[0]!.n;

  let released: Promise<boolean> | undefined;
  // The person's change: the deployment's row first (as findDeployment's lock does), its revisions after.
  await db.transaction(async (tx) => {
    await tx.select({ id: deployments.id }).from(deployments).where(eq(deployments.id, d!.id)).for('update');
    released = release({ db, replica: 'replica-a', leaseMs: 2000 }, d!, {
      deploymentId: d!.id,
      ready: true,
      url: 'http://127.0.0.1:1',
      traffic: { 1: 100 },
      message: 'serving',
      revisions: [{ number: 1, modelVersion: 'ml/iris/1', health: 'READY', restarts: 0, message: null }],
    });
    // The release has gone as far as it can: it waits on a lock this transaction holds.
    for (let i = 0; i < 200 && (await waiting()) === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(await waiting()).toBeGreaterThan(0);
    await tx.update(deploymentRevisions).set({ state: 'RETIRED' }).where(eq(deploymentRevisions.deploymentId, d!.id));
  });
  await released;

  const [after] = await db.select().from(deployments).where(eq(deployments.id, d!.id));
  expect(after).toMatchObject({ leaseOwner: null, ready: true, message: 'serving' });
  const [revision] = await db.select().from(deploymentRevisions).where(eq(deploymentRevisions.deploymentId, d!.id));
  expect(revision).toMatchObject({ state: 'RETIRED', health: 'READY' });
}, 60_000);
