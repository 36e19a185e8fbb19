// Tracking metrics on the embedded default (PGlite, in-process bus and host): a task logging 100,000 points in a
// tight loop against the same loop logging nothing (the task's execution time), points stored per second through
// the recorder (metric events of 2,000 points, as the host batches them), and Task.metricHistory of a
// 1,000,000-point series downsampled to 1,000 points.
import { and, count, eq, sql } from 'drizzle-orm';
import type { ExecutorEvent } from '../plugins/protocol';
import { tasks } from '../server/db/tables/runs';
import { metricPoints } from '../server/db/tables/tracking';
import { metricHistory } from '../server/tracking/queries';
import { startTestApp, type TestApp } from '../test/harness/app';
import { PUBLISH } from '../test/harness/client';
import { metricsModuleArchive } from '../test/tracking/metric-module';
import { percentile, type Row } from './lib';
import { runOnce } from './run-once';

const POINTS = 100_000;
const RUNS = 3;
const HISTORY_POINTS = 1_000_000;
const HISTORY_SAMPLES = 15;

const pointCount = async (t: TestApp, taskId: string) =>
  (await t.app.database.db.select({ n: count() }).from(metricPoints).where(eq(metricPoints.taskId, taskId)))[0]!.n;

export async function trackingMetricsBench(): Promise<Row[]> {
  const t = await startTestApp();
  try {
    const published = await t.api.upload(PUBLISH, { tags: ['latest'] }, 'artifact', await metricsModuleArchive());
    if (published.errors) throw new Error(JSON.stringify(published.errors));
    await t.createWorkflow({ name: 'bench-logging', tasks: [{ name: 'train', module: 'test/metrics', parameters: { count: POINTS } }] });
    await t.createWorkflow({ name: 'bench-silent', tasks: [{ name: 'train', module: 'test/metrics', parameters: { count: POINTS, log: false } }] });
    await runOnce(t, 'bench-silent', 5); // warm the artifact and the control plane's paths
    const logging: number[] = [];
    const silent: number[] = [];
    let lastTask = '';
    for (let i = 0; i < RUNS; i++) {
      const s = await runOnce(t, 'bench-silent', 5);
      silent.push(s.executionMs ?? Number.NaN);
      const l = await runOnce(t, 'bench-logging', 5);
      logging.push(l.executionMs ?? Number.NaN);
      lastTask = l.id;
    }
    const stored = await pointCount(t, lastTask);
    if (stored !== POINTS) throw new Error(`expected ${POINTS} points stored, found ${stored}`);

    // Ingestion: metric events of 2,000 points each, as a host publishes them, through the bus and the recorder.
    const [task] = await t.app.database.db.select().from(tasks).where(eq(tasks.id, lastTask));
    const base = { taskId: task!.id, runId: task!.runId, attempt: 7, host: 'bench', at: new Date().toISOString() };
    const before = await pointCount(t, task!.id);
    const startedAt = performance.now();
    for (let e = 0; e < POINTS / 2_000; e++) {
      const firstPoint = e * 2_000;
      const points = Array.from({ length: 2_000 }, (_, i) => ({ name: 'ingest', value: Math.random(), step: firstPoint + i, at: Date.now() }));
      const event: ExecutorEvent = { ...base, seq: e, kind: 'metric', firstPoint, points };
      await t.app.bus.publishEvent(event, `bench:${e}`);
    }
    while ((await pointCount(t, task!.id)) < before + POINTS) await new Promise((resolve) => setTimeout(resolve, 5));
    const ingestSeconds = (performance.now() - startedAt) / 1000;

    // History: 1,000,000 points of one series, inserted in SQL, read back as 1,000.
    await t.app.database.db.execute(sql`
      insert into metric_points (task_id, run_id, attempt, seq, name, step, value, at)
      select ${task!.id}::uuid, ${task!.runId}::uuid, 9, g, 'big', g, sin(g / 1000.0) + random() / 10, now()
      from generate_series(0, ${HISTORY_POINTS - 1}) as g`);
    const timings: number[] = [];
    for (let i = 0; i < HISTORY_SAMPLES + 1; i++) {
      const t0 = performance.now();
      const history = await metricHistory(t.app.database.db, task!.id, 'big', 1000, 9);
      if (i > 0) timings.push(performance.now() - t0);
      if (history.points.length > 1000 || history.total !== HISTORY_POINTS) throw new Error('metricHistory answered the wrong series');
    }
    await t.app.database.db.delete(metricPoints).where(and(eq(metricPoints.taskId, task!.id), eq(metricPoints.name, 'big')));

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
        metric: 'points stored per second (recorder, 2,000-point events)',
        value: POINTS / ingestSeconds,
        unit: 'points/s',
        note: 'embedded PGlite; aim ≥ 50,000/s',
      },
      {
        bench: 'tracking',
        metric: `metricHistory of ${HISTORY_POINTS.toLocaleString('en')} points → 1,000: p50 (${HISTORY_SAMPLES})`,
        value: p50(timings),
        unit: 'ms',
        note: 'downsampled in SQL; aim ≤ 50 ms',
      },
    ];
  } finally {
    await t.stop();
  }
}
