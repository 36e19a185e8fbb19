// Tracking metrics on the embedded default (PGlite, in-process bus and host): a task logging 100,000 points in a
// tight loop against the same loop logging nothing (the task's execution time; and the same points handed over at once
// through the bulk API, metricSeries, reported apart), points stored per second through
// the recorder (metric events of 2,000 points, as the host batches them), and Task.metricHistory of a
// 1,000,000-point series downsampled to 1,000 points.
import { and, eq, sql, sum } from 'drizzle-orm';
import type { ExecutorEvent } from '../plugins/protocol';
import { tasks } from '../server/db/tables/runs';
import { metricBlocks } from '../server/db/tables/tracking';
import { METRIC_BLOCK_POINTS } from '../server/tracking/metrics';
import { metricHistory } from '../server/tracking/queries';
import { rollupStoredPoints } from '../server/tracking/rollups';
import { startTestApp, type TestApp } from '../test/harness/app';
import { PUBLISH } from '../test/harness/client';
import { metricsBulkModuleArchive, metricsModuleArchive } from '../test/tracking/metric-module';
import { percentile, type Row, runWhenMain } from './lib';
import { runOnce } from './run-once';

const POINTS = 100_000;
// Nine of each, in turns: a 3-run p50 of a ~45 ms task moved by ±0.15× between runs of one build on a quiet machine.
const RUNS = 9;
const HISTORY_POINTS = 1_000_000;
const HISTORY_SAMPLES = 15;

const pointCount = async (t: TestApp, taskId: string) =>
  Number(
    (
      await t.app.database.db
        .select({ n: sum(metricBlocks.n) })
        .from(metricBlocks)
        .where(eq(metricBlocks.taskId, taskId))
    )[0]!.n ?? 0,
  );

export async function trackingMetricsBench(): Promise<Row[]> {
  const t = await startTestApp();
  try {
    const published = await t.api.upload(PUBLISH, { tags: ['latest'] }, 'artifact', await metricsModuleArchive());
    if (published.errors) throw new Error(JSON.stringify(published.errors));
    await t.createWorkflow({ name: 'bench-logging', tasks: [{ name: 'train', module: 'test/metrics', parameters: { count: POINTS } }] });
    await t.createWorkflow({ name: 'bench-silent', tasks: [{ name: 'train', module: 'test/metrics', parameters: { count: POINTS, log: false } }] });
    await runOnce(t, 'bench-silent'); // warm the artifact and the control plane's paths
    const logging: number[] = [];
    const silent: number[] = [];
    let lastTask = '';
    let silentTask = '';
    for (let i = 0; i < RUNS; i++) {
      const s = await runOnce(t, 'bench-silent');
      silent.push(s.executionMs ?? Number.NaN);
      silentTask = s.id;
      const l = await runOnce(t, 'bench-logging');
      logging.push(l.executionMs ?? Number.NaN);
      lastTask = l.id;
    }
    const stored = await pointCount(t, lastTask);
    if (stored !== POINTS) throw new Error(`expected ${POINTS} points stored, found ${stored}`);
    // The bulk API beside it (metricSeries: the loop's points in arrays, handed over at once), against its own silent
    // runs of the same minutes; after the per-point pairs, which it leaves as they were.
    const bulkPublished = await t.api.upload(PUBLISH, { tags: ['latest'] }, 'artifact', await metricsBulkModuleArchive());
    if (bulkPublished.errors) throw new Error(JSON.stringify(bulkPublished.errors));
    await t.createWorkflow({ name: 'bench-bulk', tasks: [{ name: 'train', module: 'test/metrics-bulk', parameters: { count: POINTS } }] });
    const bulk: number[] = [];
    const bulkSilent: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      bulkSilent.push((await runOnce(t, 'bench-silent')).executionMs ?? Number.NaN);
      const b = await runOnce(t, 'bench-bulk');
      bulk.push(b.executionMs ?? Number.NaN);
      if ((await pointCount(t, b.id)) !== POINTS) throw new Error(`expected ${POINTS} points stored from the bulk module`);
    }

    // Ingestion: metric events of 2,000 points each, as a host publishes them, through the bus and the recorder. They
    // go to a task of a silent run (no points yet) as late reports of its own attempt: event numbers past its own
    // (in the block of the execution that ended it, so they are recorded, not refused as another execution's).
    const [task] = await t.app.database.db.select().from(tasks).where(eq(tasks.id, silentTask));
    const base = { taskId: task!.id, runId: task!.runId, attempt: task!.attempt, host: 'bench', at: new Date().toISOString() };
    if ((await pointCount(t, task!.id)) !== 0) throw new Error('the silent task has points');
    const events = Array.from({ length: POINTS / 2_000 }, (_, e): ExecutorEvent => {
      const firstPoint = e * 2_000;
      const points = Array.from({ length: 2_000 }, (_, i) => ({ name: 'ingest', value: Math.random(), step: firstPoint + i, at: Date.now() }));
      return { ...base, seq: 1_000_000 + e, kind: 'metric', firstPoint, points };
    });
    const startedAt = performance.now();
    for (const event of events) await t.app.bus.publishEvent(event, `bench:${event.seq}`);
    while ((await pointCount(t, task!.id)) < POINTS) {
      if (performance.now() - startedAt > 120_000) throw new Error('ingestion did not finish within 2 minutes');
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const ingestSeconds = (performance.now() - startedAt) / 1000;
    // Its floor: the same points in one bare INSERT per event into an unindexed table of the same columns.
    await t.app.database.db.execute(sql`create temporary table bench_points (like metric_points)`);
    const floorStartedAt = performance.now();
    for (const event of events) {
      if (event.kind !== 'metric') continue;
      const p = event.points;
      await t.app.database.db.execute(sql`insert into bench_points select ${base.taskId}::uuid, ${base.runId}::uuid, ${base.attempt}::int, s, 'ingest', s, v, now()
        from unnest(${`{${p.map((x) => x.step).join(',')}}`}::bigint[], ${`{${p.map((x) => String(x.value)).join(',')}}`}::float8[]) as u(s, v)`);
    }
    const floorSeconds = (performance.now() - floorStartedAt) / 1000;
    await t.app.database.db.execute(sql`drop table bench_points`);

    // History: 1,000,000 points of one series, inserted in SQL, read back as 1,000.
    await t.app.database.db.execute(sql`
      insert into metric_blocks (task_id, name, attempt, block, run_id, n, seq_lo, seq_hi, seqs, steps, vals, ats)
      select ${task!.id}::uuid, 'big', 9, g / ${sql.raw(String(METRIC_BLOCK_POINTS))}, ${task!.runId}::uuid, count(*), min(g), max(g),
        array_agg(g order by g), array_agg(g order by g), array_agg(sin(g / 1000.0) + random() / 10 order by g), array_agg(now() order by g)
      from generate_series(0, ${HISTORY_POINTS - 1}::bigint) as g group by g / ${sql.raw(String(METRIC_BLOCK_POINTS))}`);
    // Its rollups, as storeMetricPoints keeps them (and migration metric-rollups backfills them).
    await t.app.database.db.execute(rollupStoredPoints(sql`task_id = ${task!.id}::uuid and name = 'big' and attempt = 9`));
    // Its floor: the whole series' count and max through its index (what downsampling the points themselves must at
    // least scan; the rollups let metricHistory read far less, so its ratio is below 1).
    const floorTimings: number[] = [];
    for (let i = 0; i < HISTORY_SAMPLES + 1; i++) {
      const t0 = performance.now();
      await t.app.database.db.execute(sql`select count(*), max(value) from metric_points where task_id = ${task!.id}::uuid and name = 'big' and attempt = 9`);
      if (i > 0) floorTimings.push(performance.now() - t0);
    }
    const timings: number[] = [];
    for (let i = 0; i < HISTORY_SAMPLES + 1; i++) {
      const t0 = performance.now();
      const history = await metricHistory(t.app.database.db, task!.id, 'big', 1000, 9);
      if (i > 0) timings.push(performance.now() - t0);
      if (history.points.length > 1000 || history.total !== HISTORY_POINTS) throw new Error('metricHistory answered the wrong series');
    }
    await t.app.database.db.delete(metricBlocks).where(and(eq(metricBlocks.taskId, task!.id), eq(metricBlocks.name, 'big')));

    const p50 = (xs: number[]) => percentile(xs, 50);
    return [
      {
        bench: 'tracking',
        metric: `task logging ${POINTS.toLocaleString('en')} points: execution p50 (${RUNS} runs)`,
        value: p50(logging),
        unit: 'ms',
        floor: p50(silent),
        ratio: p50(logging) / p50(silent),
        note: 'floor: the same loop logging nothing (aim ≤ 1.2×)',
      },
      {
        bench: 'tracking',
        metric: `task logging ${POINTS.toLocaleString('en')} points in one metricSeries call: execution p50 (${RUNS} runs)`,
        value: p50(bulk),
        unit: 'ms',
        floor: p50(bulkSilent),
        ratio: p50(bulk) / p50(bulkSilent),
        note: 'the bulk API beside metric(); floor: the same loop logging nothing, its own runs',
      },
      {
        bench: 'tracking',
        metric: 'points stored per second (recorder, 2,000-point events)',
        value: POINTS / ingestSeconds,
        unit: 'points/s',
        floor: POINTS / floorSeconds,
        ratio: POINTS / floorSeconds / (POINTS / ingestSeconds),
        note: 'floor: bare unindexed INSERTs of the same points; embedded PGlite; aim ≥ 50,000/s',
      },
      {
        bench: 'tracking',
        metric: `metricHistory of ${HISTORY_POINTS.toLocaleString('en')} points → 1,000: p50 (${HISTORY_SAMPLES})`,
        value: p50(timings),
        unit: 'ms',
        floor: p50(floorTimings),
        ratio: p50(timings) / p50(floorTimings),
        note: 'floor: count and max of the series; aim ≤ 50 ms',
      },
    ];
  } finally {
    await t.stop();
  }
}

// `npx tsx bench/tracking-metrics.ts`: this bench alone (it needs no Postgres or NATS).
runWhenMain(import.meta.url, trackingMetricsBench);
