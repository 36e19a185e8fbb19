// How many tasks one bus message to a pool carries (server/orchestrator/batch-sizes.ts): never more than the
// smallest live host of the pool runs at once (a batch is delivered to one host, which would otherwise hold tasks a
// free host could run), a message per task for a pool no live host serves, and ATELIER_TASK_BATCH_MAX at most.
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Database } from '../../server/db/client';
import { executorHosts } from '../../server/db/tables/executors';
import { PoolBatchSizes } from '../../server/orchestrator/batch-sizes';
import { openTestDatabase } from '../harness/pglite-template';

let database: Database;
let opened: Awaited<ReturnType<typeof openTestDatabase>> | undefined;

beforeAll(async () => {
  opened = await openTestDatabase('batch-sizes');
  database = opened.database;
}, 60_000);

afterAll(() => opened?.close());

const now = new Date('2026-12-05T12:00:00Z');
const host = (id: string, pools: string[], capacity: number, secondsAgo: number) => ({
  id,
  name: id,
  executors: ['local'],
  pools,
  capacity,
  running: 0,
  version: 'test',
  startedAt: now,
  lastSeenAt: new Date(now.getTime() - secondsAgo * 1000),
});

it('sizes each pool by its smallest live host, caps it, and sends a task alone where no live host is known', async () => {
  await database.db.insert(executorHosts).values([
    host('gpu-1', ['gpu'], 1, 1),
    host('cpu-big', ['cpu', 'mixed'], 256, 1),
    host('cpu-small', ['mixed'], 4, 2),
    host('cpu-gone', ['cpu'], 2, 60), // silent past the stale time: not counted
    host('old-only', ['retired'], 64, 60),
  ]);
  const sizes = new PoolBatchSizes(100, 15_000);
  const size = await database.db.transaction((tx) => sizes.forPools(tx, ['gpu', 'cpu', 'mixed', 'retired', 'nobody'], now));
  expect(['gpu', 'cpu', 'mixed', 'retired', 'nobody'].map(size)).toEqual([1, 100, 4, 1, 1]);
  // ATELIER_TASK_BATCH_MAX=1 turns batches off whatever the hosts.
  const off = new PoolBatchSizes(1, 15_000);
  expect((await database.db.transaction((tx) => off.forPools(tx, ['cpu'], now)))('cpu')).toBe(1);
});
