// Metric points in blocks (metric_blocks): NaN and ±Infinity kept in the arrays, steps as reported in any order,
// batches arriving late or twice, a series spanning many blocks read back downsampled with its extremes, a retried
// attempt in blocks of its own, and the migration that moved existing rows into blocks. Against the embedded database.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { and, asc, eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Database } from '../../server/db/client';
import { tasks } from '../../server/db/tables/runs';
import { metricBlocks, metricPoints, metricSummaries } from '../../server/db/tables/tracking';
import { METRIC_BLOCK_POINTS, type MetricPointInput, storeMetricPoints } from '../../server/tracking/metrics';
import { metricHistory } from '../../server/tracking/queries';
import { openTestDatabase } from '../harness/pglite-template';
import { seedRun } from './seed';

let database: Database;
let opened: Awaited<ReturnType<typeof openTestDatabase>> | undefined;

beforeAll(async () => {
  opened = await openTestDatabase('metric-blocks');
  database = opened.database;
}, 60_000);

afterAll(() => opened?.close());

const at = new Date('2026-12-01T00:00:00Z');

/** A task of a fresh run, and a point maker for it. */
async function freshTask() {
  const runId = await seedRun(database.db, {});
  const [task] = await database.db
    .insert(tasks)
    .values({ runId, node: 'train', status: 'SUCCEEDED', executor: 'local', pool: 'default', timeoutMs: 60_000 })
    .returning();
  const point = (seq: number, name: string, value: number, step = seq, attempt = 1): MetricPointInput => ({
    taskId: task!.id,
    runId,
    attempt,
    seq,
    name,
    step,
    value,
    at,
  });
  return { taskId: task!.id, runId, point };
}

const blocksOf = (taskId: string, name: string) =>
  database.db
    .select()
    .from(metricBlocks)
    .where(and(eq(metricBlocks.taskId, taskId), eq(metricBlocks.name, name)))
    .orderBy(asc(metricBlocks.attempt), asc(metricBlocks.block));

it('keeps NaN and ±Infinity as such in the block arrays', async () => {
  const { taskId, point } = await freshTask();
  const values = [1.5, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -0.25];
  expect(
    await storeMetricPoints(
      database.db,
      values.map((v, i) => point(i + 1, 'odd', v)),
    ),
  ).toBe(5);
  const [block] = await blocksOf(taskId, 'odd');
  expect(block).toMatchObject({ attempt: 1, block: 0, n: 5, seqLo: 1, seqHi: 5, seqs: [1, 2, 3, 4, 5] });
  expect(block!.vals.map(Number)).toEqual(values);
  const [summary] = await database.db.select().from(metricSummaries).where(eq(metricSummaries.taskId, taskId));
  expect(summary).toMatchObject({ count: 5, last: -0.25, min: Number.NEGATIVE_INFINITY, max: Number.POSITIVE_INFINITY });
});

it('keeps steps as reported, out of order, and stores a late or repeated batch once', async () => {
  const { taskId, point } = await freshTask();
  const steps = [5, 3, 9, 9, -2, 7];
  const all = steps.map((step, i) => point(i + 1, 'loss', i / 10, step));
  expect(await storeMetricPoints(database.db, all.slice(3))).toBe(3);
  expect(await storeMetricPoints(database.db, all.slice(0, 3))).toBe(3); // late: lower seqs after higher ones
  expect(await storeMetricPoints(database.db, all)).toBe(0); // redelivered, whole
  expect(await storeMetricPoints(database.db, [all[1]!, point(7, 'loss', 0.7, 1)])).toBe(1); // partly new
  const points = await database.db
    .select()
    .from(metricPoints)
    .where(and(eq(metricPoints.taskId, taskId), eq(metricPoints.name, 'loss')))
    .orderBy(asc(metricPoints.seq));
  expect(points.map((p) => [p.seq, p.step])).toEqual([...steps.map((s, i) => [i + 1, s]), [7, 1]]);
  const history = await metricHistory(database.db, taskId, 'loss', 100);
  expect(history.points.map((p) => p.step)).toEqual([...steps, 1]);
  const [summary] = await database.db.select().from(metricSummaries).where(eq(metricSummaries.taskId, taskId));
  expect(summary).toMatchObject({ count: 7, lastStep: 1 });
});

it('fills blocks of a fixed size across batches, and reads a series of many blocks downsampled with its extremes', async () => {
  const { taskId, point } = await freshTask();
  const total = 5 * METRIC_BLOCK_POINTS + 17;
  const values = Array.from({ length: total }, (_, i) => Math.sin(i / 300) + (i === 2_222 ? -50 : i === 4_444 ? 50 : 0));
  values[3_000] = Number.NaN;
  const all = values.map((v, i) => point(i + 1, 'wave', v, i));
  // Batches of odd sizes, as hosts and MLflow clients send them.
  for (let i = 0; i < total; i += 777) await storeMetricPoints(database.db, all.slice(i, i + 777));
  const blocks = await blocksOf(taskId, 'wave');
  expect(blocks.map((b) => b.n)).toEqual([...Array(5).fill(METRIC_BLOCK_POINTS), 17]);
  expect(blocks.map((b) => b.block)).toEqual([0, 1, 2, 3, 4, 5]);
  for (const b of blocks) expect(b.seqs).toEqual([...b.seqs].sort((x, y) => x - y));
  const history = await metricHistory(database.db, taskId, 'wave', 30);
  expect(history.total).toBe(total);
  expect(history.points.length).toBeLessThanOrEqual(30);
  const seqs = history.points.map((p) => p.seq);
  for (const kept of [1, total, 2_223, 4_445]) expect(seqs).toContain(kept);
  for (const p of history.points) expect(Object.is(p.value, values[p.seq - 1])).toBe(true);
});

it('puts a retried attempt in blocks of its own; history reads the latest attempt unless told', async () => {
  const { taskId, point } = await freshTask();
  await storeMetricPoints(
    database.db,
    Array.from({ length: 1_500 }, (_, i) => point(i + 1, 'loss', 1 / (i + 1), i, 1)),
  );
  // The retry numbers its points from 1 again: they are its own, not repeats of the first attempt's.
  expect(await storeMetricPoints(database.db, [point(1, 'loss', 9, 0, 2), point(2, 'loss', 8, 1, 2)])).toBe(2);
  const blocks = await blocksOf(taskId, 'loss');
  expect(blocks.map((b) => [b.attempt, b.block, b.n])).toEqual([
    [1, 0, METRIC_BLOCK_POINTS],
    [1, 1, 1_500 - METRIC_BLOCK_POINTS],
    [2, 0, 2],
  ]);
  expect((await metricHistory(database.db, taskId, 'loss', 10)).points.map((p) => p.value)).toEqual([9, 8]);
  const first = await metricHistory(database.db, taskId, 'loss', 10, 1);
  expect(first).toMatchObject({ attempt: 1, total: 1_500 });
});

it('migration metric-blocks moves existing point rows into blocks, in order, NaN and ±Infinity kept', async () => {
  const db = database.db;
  const { taskId, runId } = await freshTask();
  // The old table's shape, under another name, filled as the old write path did (one row per point).
  await db.execute(
    sql`create temporary table legacy_points (task_id uuid, run_id uuid, attempt int, seq bigint, name text, step bigint, value float8, at timestamptz)`,
  );
  const n = METRIC_BLOCK_POINTS + 3;
  await db.execute(sql`insert into legacy_points
    select ${taskId}::uuid, ${runId}::uuid, a, g, m, g * 2, case when g = 5 then 'NaN'::float8 when g = 6 then '-Infinity'::float8 else g / 10.0 end, now()
    from generate_series(${n}, 1, -1) g, (values (1), (2)) as x(a), (values ('acc'), ('loss')) as y(m)`);
  const migration = await readFile(
    path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'server', 'db', 'migrations', '0042_metric-blocks.sql'),
    'utf8',
  );
  const move = migration.split('--> statement-breakpoint').find((s) => s.includes('INSERT INTO "metric_blocks"'));
  expect(move).toContain('FROM "metric_points" p');
  await db.execute(sql.raw(move!.replace('FROM "metric_points" p', 'FROM "legacy_points" p')));
  const blocks = await database.db.select().from(metricBlocks).where(eq(metricBlocks.taskId, taskId));
  expect(blocks).toHaveLength(8); // 2 attempts × 2 metrics × 2 blocks
  for (const b of blocks) {
    expect(b.n).toBe(b.block === 0 ? METRIC_BLOCK_POINTS : 3);
    expect(b.seqs[0]).toBe(b.block * METRIC_BLOCK_POINTS + 1);
    expect(b.seqs).toEqual([...b.seqs].sort((x, y) => x - y));
    expect(b.steps).toEqual(b.seqs.map((s) => s * 2));
  }
  const loss = blocks.find((b) => b.name === 'loss' && b.attempt === 2 && b.block === 0)!;
  expect(Number.isNaN(Number(loss.vals[4]))).toBe(true);
  expect(Number(loss.vals[5])).toBe(Number.NEGATIVE_INFINITY);
  await db.execute(sql`drop table legacy_points`);
});
