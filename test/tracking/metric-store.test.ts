// The metric store: each point once, NaN and ±Infinity kept, and summaries that a late or repeated batch cannot
// corrupt. Against the embedded database (the same SQL runs on Postgres in the end-to-end suites).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { and, asc, eq } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ensureIdentity, identityForToken, issueToken } from '../../server/auth/tokens';
import { type Database, openDatabase } from '../../server/db/client';
import { tokens } from '../../server/db/tables/tokens';
import { metricPoints, metricSummaries } from '../../server/db/tables/tracking';
import { type MetricPointInput, storeMetricPoints } from '../../server/tracking/metrics';
import { pruneExpiredTaskTokens, TASK_TRACKING_IDENTITY } from '../../server/tracking/task-tokens';
import { seedEmbeddedDatabase } from '../harness/pglite-template';

let database: Database;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'atelier-metric-store-'));
  await seedEmbeddedDatabase(dir);
  database = await openDatabase({ dataDir: dir });
}, 60_000);

afterAll(async () => {
  await database?.close();
  await rm(dir, { recursive: true, force: true });
});

const taskId = '00000000-0000-4000-8000-000000000001';
const runId = '00000000-0000-4000-8000-000000000002';
const at = new Date('2026-12-01T00:00:00Z');
const point = (seq: number, name: string, value: number, step = seq, attempt = 1): MetricPointInput => ({ taskId, runId, attempt, seq, name, step, value, at });

it('keeps every point once, NaN and ±Infinity included, and summarises last, min and max by order', async () => {
  const db = database.db;
  const batch = [
    point(1, 'loss', 2.5),
    point(2, 'loss', Number.NaN),
    point(3, 'loss', 0.5),
    point(4, 'loss', Number.POSITIVE_INFINITY),
    point(5, 'acc', Number.NEGATIVE_INFINITY),
  ];
  expect(await storeMetricPoints(db, batch)).toBe(5);
  // A redelivered batch stores nothing and changes no summary.
  expect(await storeMetricPoints(db, batch)).toBe(0);
  // A batch that arrives late (earlier seq) does not replace `last`; its minimum still counts.
  expect(await storeMetricPoints(db, [point(0, 'loss', -1, 0)])).toBe(1);

  const values = await db
    .select()
    .from(metricPoints)
    .where(and(eq(metricPoints.taskId, taskId), eq(metricPoints.name, 'loss')))
    .orderBy(asc(metricPoints.seq));
  expect(values.map((p) => p.value)).toEqual([-1, 2.5, Number.NaN, 0.5, Number.POSITIVE_INFINITY]);
  const summaries = await db.select().from(metricSummaries).where(eq(metricSummaries.taskId, taskId));
  const loss = summaries.find((s) => s.name === 'loss')!;
  expect(loss).toMatchObject({ count: 5, last: Number.POSITIVE_INFINITY, lastStep: 4, min: -1, minStep: 0, max: Number.POSITIVE_INFINITY, maxStep: 4 });
  const acc = summaries.find((s) => s.name === 'acc')!;
  expect(acc).toMatchObject({ count: 1, last: Number.NEGATIVE_INFINITY, min: Number.NEGATIVE_INFINITY, max: Number.NEGATIVE_INFINITY });
});

it('leaves min and max empty while a metric has only NaN', async () => {
  const other = '00000000-0000-4000-8000-000000000003';
  await storeMetricPoints(database.db, [{ ...point(1, 'nan-only', Number.NaN), taskId: other }]);
  const [s] = await database.db.select().from(metricSummaries).where(eq(metricSummaries.taskId, other));
  expect(s).toMatchObject({ count: 1, min: null, max: null });
  expect(Number.isNaN(s!.last)).toBe(true);
});

// Task tokens (MLFLOW_TRACKING_TOKEN inside a task) are minted per attempt; the control plane deletes the expired
// ones, leaving live task tokens and every ordinary token (expired or not) alone. Here for its embedded database.
it('deletes expired task tokens only: live task tokens and ordinary tokens stay', async () => {
  const db = database.db;
  const tracker = await ensureIdentity(db, { name: TASK_TRACKING_IDENTITY, kind: 'service', role: 'viewer' });
  const person = await ensureIdentity(db, { name: 'ada', kind: 'user', role: 'member' });
  const now = new Date();
  const earlier = new Date(now.getTime() - 60_000);
  const later = new Date(now.getTime() + 3_600_000);
  const task = (n: number) => ({ id: `00000000-0000-4000-8000-00000000000${n}`, attempt: 1 });
  const expiredTask = await issueToken(db, tracker.id, 'task 1', { scopes: [], task: task(1), expiresAt: earlier });
  const liveTask = await issueToken(db, tracker.id, 'task 2', { scopes: [], task: task(2), expiresAt: later });
  const expiredPersonal = await issueToken(db, person.id, 'laptop', { expiresAt: earlier });
  const personal = await issueToken(db, person.id, 'ci');

  expect(await pruneExpiredTaskTokens(db, now)).toBe(1);
  expect(await pruneExpiredTaskTokens(db, now)).toBe(0);
  const names = (await db.select({ name: tokens.name }).from(tokens)).map((r) => r.name).sort();
  expect(names).toEqual(['ci', 'laptop', 'task 2']);
  // What was deleted authenticated nothing before and nothing after; the rest answer as they did.
  expect(await identityForToken(db, expiredTask)).toBeNull();
  expect(await identityForToken(db, expiredPersonal)).toBeNull();
  expect(await identityForToken(db, personal)).not.toBeNull();
  expect(await identityForToken(db, liveTask)).not.toBeNull();
});
