// insertedTask (startRun's READY tasks handed to dispatch as written, not read back) against the database itself: a
// row inserted as startRun writes one reads back equal to what insertedTask makes of it, every column.
import { randomUUID } from 'node:crypto';
import { eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { bulkInsert } from '../../server/db/bulk';
import type { Database } from '../../server/db/client';
import { type NewTask, tasks } from '../../server/db/tables/runs';
import { insertedTask } from '../../server/orchestrator/known-facts';
import { openTestDatabase } from '../harness/pglite-template';

let db: { database: Database; close(): Promise<void> };
beforeAll(async () => {
  db = await openTestDatabase('inserted-task');
});
afterAll(() => db?.close());

const at = new Date('2026-12-05T10:00:00.123Z');
const rows: (NewTask & { id: string })[] = [
  // as startRun writes a plain READY module task
  {
    id: randomUUID(),
    runId: randomUUID(),
    node: 'train',
    kind: 'module',
    moduleRef: 'ns/train@latest',
    moduleVersionId: randomUUID(),
    workflowRef: null,
    childWorkflowVersionId: null,
    mapOver: null,
    mapAs: null,
    parameters: { lr: 0.1, nested: { list: [1, 'two', null] } },
    dependsOn: [],
    triggerRule: 'all_succeeded',
    upstreamDone: 0,
    upstreamSucceeded: 0,
    upstreamFailed: 0,
    status: 'READY',
    maxAttempts: 3,
    retryDelayMs: 500,
    timeoutMs: 3_600_000,
    pool: 'local',
    executor: 'local',
    settings: { executor: { local: { env: { A: '1' } } } },
    gpus: 1,
    hotCluster: 'warm',
    dataAccess: null,
    models: null,
    queuedAt: at,
  },
  // and one with upstreams, a map over a list, no timeout
  {
    id: randomUUID(),
    runId: randomUUID(),
    node: 'fan',
    kind: 'map',
    moduleRef: 'ns/item@1',
    moduleVersionId: null,
    workflowRef: null,
    childWorkflowVersionId: null,
    mapOver: [1, 2, 3],
    mapAs: 'x',
    parameters: {},
    dependsOn: ['a', 'b'],
    triggerRule: 'all_done',
    upstreamDone: 2,
    upstreamSucceeded: 1,
    upstreamFailed: 1,
    status: 'READY',
    maxAttempts: 1,
    retryDelayMs: 1000,
    timeoutMs: 0,
    pool: 'noop',
    executor: 'noop',
    settings: {},
    gpus: 0,
    hotCluster: null,
    dataAccess: null,
    models: null,
    queuedAt: at,
  },
];

it('makes of a row startRun writes exactly what reading it back gives', async () => {
  const { db: d } = db.database;
  await d
    .transaction(async (tx) => {
      // The run, workflow and module rows the foreign keys point at are not what this is about.
      await tx.execute(sql`set local session_replication_role = replica`);
      await bulkInsert(tx, tasks, rows);
      for (const row of rows) {
        const [stored] = await tx.select().from(tasks).where(eq(tasks.id, row.id));
        expect(insertedTask(row)).toEqual(stored);
      }
      tx.rollback();
    })
    .catch((error) => {
      if (!String(error).includes('Rollback')) throw error;
    });
});

it('writes rows that share most columns (sent once, as the base record) as each row says', async () => {
  const { db: d } = db.database;
  const runId = randomUUID();
  // Every row sets `models`, most as `{}`: an empty object is not an empty array (d), though neither is serialized to tell.
  const shared = { ...rows[0]!, runId, queuedAt: new Date(at.getTime()), models: {} };
  const many: (NewTask & { id: string })[] = [
    // the same values, in objects of their own (equal only by content)
    { ...shared, id: randomUUID(), node: 'a', parameters: { lr: 0.1 }, settings: { executor: { local: { env: { A: '1' } } } } },
    {
      ...shared,
      id: randomUUID(),
      node: 'b',
      parameters: { lr: 0.1 },
      settings: { executor: { local: { env: { A: '1' } } } },
      queuedAt: new Date(at.getTime()),
    },
    // one that differs in a few, and one that leaves a column out that the others set (written null, as before)
    { ...shared, id: randomUUID(), node: 'c', parameters: { lr: 0.2 }, gpus: 2, mapOver: 'text', queuedAt: null },
    { ...shared, id: randomUUID(), node: 'd', parameters: { lr: 0.1 }, hotCluster: undefined, models: [] as never },
  ];
  await d
    .transaction(async (tx) => {
      await tx.execute(sql`set local session_replication_role = replica`);
      await bulkInsert(tx, tasks, many);
      for (const row of many) {
        const [stored] = await tx.select().from(tasks).where(eq(tasks.id, row.id));
        expect(stored).toEqual(insertedTask({ ...row, hotCluster: row.hotCluster ?? null }));
      }
      tx.rollback();
    })
    .catch((error) => {
      if (!String(error).includes('Rollback')) throw error;
    });
});
