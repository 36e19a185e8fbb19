// The serving recorder (server/deployments/serving.ts) over Postgres restarts: a window whose insert failed is counted
// in the next one, and one that was written though the recorder heard a failure (Postgres went away between its
// COMMIT and the answer) is not counted again. Before, the recorder moved its base on before the insert: a window
// that failed to be written (every pass while Postgres restarted) was lost, its requests never observed.
import { and, eq } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { DeploymentStatus } from '../../plugins/deployer-sdk';
import { type Database, type Db, openDatabase } from '../../server/db/client';
import type { DeploymentRevisionRow, DeploymentRow } from '../../server/db/tables/deployments';
import { observations } from '../../server/db/tables/monitoring';
import { createServingRecorder } from '../../server/deployments/serving';
import { refused } from '../harness/ports';
import { type PostgresServer, startPostgres } from '../harness/postgres';

let pg: PostgresServer | undefined;
let database: Database | undefined;

beforeAll(async () => {
  pg = await startPostgres({ durableCommits: true });
  database = await openDatabase({ url: pg.url, dataDir: '/nonexistent' });
}, 120_000);
afterAll(async () => {
  await database?.close();
  await pg?.stop();
}, 30_000);

const versionId = '00000000-0000-4000-8000-000000000001';
// The recorder reads these fields only; no deployment row is needed for observations.
const deployment = { id: '00000000-0000-4000-8000-00000000000d', name: 'scorer', alias: null, modelId: versionId, teamId: null } as unknown as DeploymentRow;
const revisions = [{ number: 1, modelVersionId: versionId }] as unknown as DeploymentRevisionRow[];
const status = (requests: number): DeploymentStatus =>
  ({ serving: { epoch: 'e1', firstMs: 1, growth: 2, revisions: { 1: { requests, errors: 0, buckets: [requests, 0] } } } }) as unknown as DeploymentStatus;
const at = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s));

async function observedRequests(): Promise<number> {
  const rows = await database!.db
    .select({ value: observations.value })
    .from(observations)
    .where(and(eq(observations.versionId, versionId), eq(observations.metric, 'serving.requests')));
  return rows.reduce((sum, r) => sum + r.value, 0);
}

/** `db`, except that while `losing()` its inserts commit and then fail as if the connection closed before the answer. */
function answersLost(db: Db, losing: () => boolean): Db {
  return new Proxy(db, {
    get(target, prop, receiver) {
      if (prop !== 'insert' || !losing()) return Reflect.get(target, prop, receiver);
      return (table: typeof observations) => ({
        values: (rows: (typeof observations.$inferInsert)[]) =>
          target
            .insert(table)
            .values(rows)
            .then(() => {
              throw Object.assign(new Error('write CONNECTION_CLOSED'), { code: 'CONNECTION_CLOSED' });
            }),
      });
    },
  });
}

it('counts every request once over a restart of Postgres and over a commit whose answer was lost', async () => {
  let losing = false;
  const recorder = createServingRecorder(
    answersLost(database!.db, () => losing),
    1_000,
  );
  expect(await recorder.record(deployment, revisions, status(10), at(0))).toBe(0); // first sight: counts from here
  expect(await recorder.record(deployment, revisions, status(30), at(1))).toBe(4);

  // Postgres stops while a window is due: its insert fails, and the next window takes its requests in.
  const restarted = pg!.restart('fast', 1_500);
  while (!(await refused(pg!.port))) await new Promise((r) => setTimeout(r, 20));
  await expect(recorder.record(deployment, revisions, status(50), at(2))).rejects.toThrow();
  await restarted;
  let written = 0;
  for (let i = 0; i < 50 && !written; i++) {
    written = await recorder.record(deployment, revisions, status(70), at(3)).catch(() => 0);
    if (!written) await new Promise((r) => setTimeout(r, 100));
  }
  expect(written).toBe(4);
  expect(await observedRequests()).toBe(60); // 70 - 10

  // A window written though the recorder heard a failure is found written: the next one does not count it again.
  losing = true;
  await expect(recorder.record(deployment, revisions, status(90), at(4))).rejects.toThrow(/CONNECTION_CLOSED/);
  losing = false;
  expect(await observedRequests()).toBe(80);
  expect(await recorder.record(deployment, revisions, status(100), at(5))).toBe(4);
  expect(await observedRequests()).toBe(90); // 100 - 10: each request once
}, 60_000);
