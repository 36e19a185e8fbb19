// The metric store: each point once, NaN and ±Infinity kept, and summaries that a late or repeated batch cannot
// corrupt. Against the embedded database (the same SQL runs on Postgres in the end-to-end suites).
import { and, asc, eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ensureIdentity, identityForToken, issueToken } from '../../server/auth/tokens';
import type { Database } from '../../server/db/client';
import { tasks } from '../../server/db/tables/runs';
import { tokens } from '../../server/db/tables/tokens';
import { metricPoints, metricRollupPages, metricSummaries, runMetricSummaries } from '../../server/db/tables/tracking';
import { compareRuns } from '../../server/tracking/compare';
import { type MetricPointInput, storeMetricPoints } from '../../server/tracking/metrics';
import { metricHistory } from '../../server/tracking/queries';
import { ROLLUP_PAGE_SHIFT, ROLLUP_SHIFTS, rollupStoredPoints } from '../../server/tracking/rollups';
import { pruneExpiredTaskTokens, TASK_TRACKING_IDENTITY } from '../../server/tracking/task-tokens';
import { openTestDatabase } from '../harness/pglite-template';
import { seedRun } from './seed';

let database: Database;
let opened: Awaited<ReturnType<typeof openTestDatabase>> | undefined;

beforeAll(async () => {
  opened = await openTestDatabase('metric-store');
  database = opened.database;
}, 60_000);

afterAll(() => opened?.close());

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

it("keeps each point's time to the millisecond, in order, before 1970 and far ahead included", async () => {
  const other = '00000000-0000-4000-8000-000000000004';
  const times = ['2026-12-05T10:00:00.001Z', '2026-12-05T10:00:00.999Z', '1969-07-20T20:17:40.123Z', '2999-12-31T23:59:59.987Z', '2026-12-05T10:00:00.000Z'];
  const batch = times.map((iso, i) => ({ ...point(i, 'timed', i), taskId: other, at: new Date(iso) }));
  expect(await storeMetricPoints(database.db, batch)).toBe(times.length);
  const stored = await database.db.select().from(metricPoints).where(eq(metricPoints.taskId, other)).orderBy(asc(metricPoints.seq));
  expect(stored.map((p) => p.at.toISOString())).toEqual(times);
});

it('leaves min and max empty while a metric has only NaN', async () => {
  const other = '00000000-0000-4000-8000-000000000003';
  await storeMetricPoints(database.db, [{ ...point(1, 'nan-only', Number.NaN), taskId: other }]);
  const [s] = await database.db.select().from(metricSummaries).where(eq(metricSummaries.taskId, other));
  expect(s).toMatchObject({ count: 1, min: null, max: null });
  expect(Number.isNaN(s!.last)).toBe(true);
});

it("keeps each run's summary with its tasks': last from the task that reported last, min and max over all, NaN as none", async () => {
  const db = database.db;
  const run = '00000000-0000-4000-8000-0000000000a0';
  const [a, b] = ['00000000-0000-4000-8000-0000000000a1', '00000000-0000-4000-8000-0000000000a2'];
  const p = (task: string, seq: number, value: number, minute: number): MetricPointInput => ({
    taskId: task,
    runId: run,
    attempt: 1,
    seq,
    name: 'acc',
    step: seq,
    value,
    at: new Date(at.getTime() + minute * 60_000),
  });
  const summary = async () => (await db.select().from(runMetricSummaries).where(eq(runMetricSummaries.runId, run)))[0];
  // Both tasks in one batch: b reported last.
  await storeMetricPoints(db, [p(a, 1, 0.5, 1), p(b, 1, 0.9, 2), p(a, 2, 0.7, 1)]);
  expect(await summary()).toMatchObject({ last: 0.9, lastTask: b, min: 0.5, max: 0.9 });
  // a reports again, later: its value is the run's last; the extremes keep both tasks'.
  await storeMetricPoints(db, [p(a, 3, 0.6, 3)]);
  expect(await summary()).toMatchObject({ last: 0.6, lastTask: a, min: 0.5, max: 0.9 });
  // A late batch of b (earlier in time) changes no last; its new low still counts.
  await storeMetricPoints(db, [p(b, 0, 0.1, 0)]);
  expect(await summary()).toMatchObject({ last: 0.6, lastTask: a, min: 0.1, max: 0.9 });
  // NaN as the latest value: the run has no last value (search treats it as none), the extremes stay.
  await storeMetricPoints(db, [p(a, 4, Number.NaN, 4)]);
  expect(await summary()).toMatchObject({ last: null, lastTask: a, min: 0.1, max: 0.9 });
});

/** The rollup rows a series' stored points call for, recomputed here from the points themselves. */
function expectedRollups(points: { seq: number; step: number; value: number }[]) {
  const out = new Map<string, { n: number; lo: number[] | null; hi: number[] | null; first: number[]; last: number[] }>();
  const less = (a: number[], b: number[]) => {
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! < b[i]! || Number.isNaN(b[i]!);
    return false;
  };
  for (const [axis, shifts] of Object.entries(ROLLUP_SHIFTS))
    for (const shift of shifts)
      for (const p of points) {
        const k = axis === 'seq' ? p.seq : p.step;
        const key = `${axis}/${shift}/${Math.floor(k / 2 ** shift)}`;
        const at = [k, p.seq, p.step, p.value];
        const v = Number.isNaN(p.value) ? null : [p.value, p.seq, p.step];
        const row = out.get(key);
        if (!row) out.set(key, { n: 1, lo: v, hi: v, first: at, last: at });
        else {
          row.n++;
          if (v && (!row.lo || less(v, row.lo))) row.lo = v;
          if (v && (!row.hi || less(row.hi, v))) row.hi = v;
          if (less(at, row.first)) row.first = at;
          if (less(row.last, at)) row.last = at;
        }
      }
  return out;
}

it('keeps rollups equal to a fold of the stored points, whatever the batches: late, redelivered, NaN, negative steps', async () => {
  const db = database.db;
  const task = '00000000-0000-4000-8000-0000000000b1';
  const p = (seq: number, value: number, step = seq * 3 - 40): MetricPointInput => ({ ...point(seq, 'curve', value, step), taskId: task });
  const all = Array.from({ length: 300 }, (_, i) => p(i, i % 50 === 7 ? Number.NaN : Math.sin(i / 9) + (i === 123 ? 5 : 0)));
  // A run of NaN alone fills one seq bucket (seqs 32 to 47).
  for (let i = 32; i < 48; i++) all[i] = p(i, Number.NaN);
  await storeMetricPoints(db, all.slice(100, 250));
  await storeMetricPoints(db, all.slice(250)); // later
  expect(await storeMetricPoints(db, all.slice(100, 250))).toBe(0); // redelivered: adds nothing
  await storeMetricPoints(db, all.slice(0, 100)); // late
  await storeMetricPoints(db, [{ ...p(5, 42), name: 'other' }]); // another metric of the task: a series of its own

  const pages = await db
    .select()
    .from(metricRollupPages)
    .where(and(eq(metricRollupPages.taskId, task), eq(metricRollupPages.name, 'curve')));
  // Unpacked: one row per bucket, each in its page, in bucket order, the page's total its buckets' sum.
  const rows = pages.flatMap((p) => {
    expect(p.buckets).toEqual([...p.buckets].sort((a, b) => a - b));
    expect(p.buckets.every((b) => Math.floor(b / 2 ** ROLLUP_PAGE_SHIFT) === p.page)).toBe(true);
    expect(p.total).toBe(p.ns.reduce((a, b) => a + b, 0));
    return p.buckets.map((bucket, i) => ({
      axis: p.axis,
      shift: p.shift,
      bucket,
      n: p.ns[i],
      lo: p.loValue[i] === null ? null : [p.loValue[i], p.loSeq[i], p.loStep[i]],
      hi: p.hiValue[i] === null ? null : [p.hiValue[i], p.hiSeq[i], p.hiStep[i]],
      first: [p.firstKey[i], p.firstSeq[i], p.firstStep[i], p.firstValue[i]],
      last: [p.lastKey[i], p.lastSeq[i], p.lastStep[i], p.lastValue[i]],
    }));
  });
  const expected = expectedRollups(all.map((x) => ({ seq: x.seq, step: x.step, value: x.value })));
  expect(rows).toHaveLength(expected.size);
  for (const r of rows) expect({ n: r.n, lo: r.lo, hi: r.hi, first: r.first, last: r.last }).toEqual(expected.get(`${r.axis}/${r.shift}/${r.bucket}`));

  // The same pages folded in SQL from the stored points (how benches seed them and backfills rebuild them).
  const where = and(eq(metricRollupPages.taskId, task), eq(metricRollupPages.name, 'curve'));
  await db.delete(metricRollupPages).where(where);
  await db.execute(rollupStoredPoints(sql`task_id = ${task}::uuid and name = 'curve'`));
  const byPage = (list: typeof pages) => [...list].sort((a, b) => `${a.axis}/${a.shift}/${a.page}`.localeCompare(`${b.axis}/${b.shift}/${b.page}`));
  expect(byPage(await db.select().from(metricRollupPages).where(where))).toEqual(byPage(pages));
});

it('downsamples a long series from its rollups: at most maxPoints, its extremes, first and last, a NaN stretch kept', async () => {
  const db = database.db;
  const runId = await seedRun(db, {});
  const [task] = await db
    .insert(tasks)
    .values({ runId, node: 'train', status: 'SUCCEEDED', executor: 'local', pool: 'default', timeoutMs: 60_000 })
    .returning();
  const values = Array.from({ length: 5_000 }, (_, i) => (i >= 1000 && i < 1400 ? Number.NaN : Math.cos(i / 100) + (i === 2345 ? -9 : i === 4321 ? 9 : 0)));
  const points = values.map((value, i) => ({ ...point(i + 1, 'loss', value, i * 2), taskId: task!.id, runId }));
  await storeMetricPoints(db, points.slice(2_500));
  await storeMetricPoints(db, points.slice(0, 2_500));
  const history = await metricHistory(db, task!.id, 'loss', 40);
  expect(history.total).toBe(5_000);
  expect(history.points.length).toBeLessThanOrEqual(40);
  expect(history.points.length).toBeGreaterThan(20);
  expect(history.points.map((x) => x.seq)).toEqual([...history.points.map((x) => x.seq)].sort((a, b) => a - b));
  for (const x of history.points) expect(Object.is(x.value, values[x.seq - 1]) && x.step === (x.seq - 1) * 2).toBe(true);
  const seqs = history.points.map((x) => x.seq);
  expect(seqs).toContain(1);
  expect(seqs).toContain(5_000);
  expect(seqs).toContain(2_346);
  expect(seqs).toContain(4_322);
  expect(history.points.some((x) => Number.isNaN(x.value))).toBe(true);
  // Fewer points wanted than rollup buckets (20 of 256 points): they are grouped, the extremes still kept.
  const coarse = (await metricHistory(db, task!.id, 'loss', 12)).points.map((x) => x.seq);
  expect(coarse.length).toBeLessThanOrEqual(12);
  expect(coarse).toEqual(expect.arrayContaining([1, 2_346, 4_322, 5_000]));

  // compareRuns over the same series by step (10,000 steps → 20 buckets): the extremes survive, within maxPoints.
  // ±Infinity are kept through the rollups (Postgres writes them in JSON as strings).
  const special = (i: number) => (i === 77 ? 100 : i === 1_500 ? Number.POSITIVE_INFINITY : i === 2_000 ? Number.NEGATIVE_INFINITY : 1);
  const other = await seedRun(db, { tasks: [Array.from({ length: 3_000 }, (_, i): [string, number, number] => ['loss', special(i), i * 3])] });
  const compared = await compareRuns(db, ['experimentation'], { ids: [runId, other], metrics: ['loss'], maxPoints: 40 });
  const [mine, theirs] = compared.series.map((s) => s.steps.map((step, i) => ({ step, value: s.values[i]! })));
  expect(mine!.length).toBeLessThanOrEqual(40);
  expect(mine!.some((x) => x.value === -9 + Math.cos(23.45) && x.step === 2345 * 2)).toBe(true);
  expect(mine!.some((x) => x.value === 9 + Math.cos(43.21) && x.step === 4321 * 2)).toBe(true);
  expect(mine!.some((x) => Number.isNaN(x.value))).toBe(true);
  expect(theirs!.length).toBeLessThanOrEqual(40);
  expect(theirs!).toContainEqual({ step: 231, value: 100 });
  expect(theirs!).toContainEqual({ step: 4_500, value: Number.POSITIVE_INFINITY });
  expect(theirs!).toContainEqual({ step: 6_000, value: Number.NEGATIVE_INFINITY });
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
