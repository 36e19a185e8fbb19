// Where a logging task's extra execution time goes (issue #17): the same module as bench/tracking-metrics.ts, logging
// 100,000 points or none, reporting its own times (test/tracking/metric-module.ts, `timing`). Per run, from the
// host's `executionMs` (its stamp of the module's exit less the attempt's start and provisioning):
//   startup: the module's process began → its loop began (node starting, the helper imported), less host spawn lag
//   loop: the loop's wall time (logging: the helper's per-point cost and its writes, plus contention)
//   loop CPU: the module's own CPU in all (process.cpuUsage at its end)
//   outside module: executionMs less the module's own span (process began → its last line): spawning the process,
//   its ending, and the host's stamp of its exit (late when the host's event loop is busy, e.g. storing points)
// `npx tsx bench/tracking-split.ts` (embedded default, as the tracking bench).
import { eq } from 'drizzle-orm';
import { tasks } from '../server/db/tables/runs';
import { startTestApp } from '../test/harness/app';
import { PUBLISH } from '../test/harness/client';
import { metricsModuleArchive } from '../test/tracking/metric-module';
import { percentile, type Row, round, runWhenMain } from './lib';
import { runOnce } from './run-once';

const POINTS = 100_000;
const RUNS = Number(process.env.ATELIER_BENCH_SPLIT_RUNS ?? 5);

interface Timing {
  began: number;
  loopBegan: number;
  ended: number;
  cpuMs: number;
}

export async function trackingSplit(): Promise<Row[]> {
  const t = await startTestApp();
  try {
    const published = await t.api.upload(PUBLISH, { tags: ['latest'] }, 'artifact', await metricsModuleArchive());
    if (published.errors) throw new Error(JSON.stringify(published.errors));
    for (const log of [true, false])
      await t.createWorkflow({ name: `split-${log}`, tasks: [{ name: 'train', module: 'test/metrics', parameters: { count: POINTS, log, timing: true } }] });
    await runOnce(t, 'split-false', 5);
    const rows: Record<string, Record<string, number[]>> = { silent: {}, logging: {} };
    for (let i = 0; i < RUNS; i++) {
      for (const [kind, log] of [
        ['silent', false],
        ['logging', true],
      ] as const) {
        const task = await runOnce(t, `split-${log}`, 5);
        const [row] = await t.app.database.db.select().from(tasks).where(eq(tasks.id, task.id));
        const timing = (row!.outputs as { timing: Timing }).timing;
        const add = (name: string, v: number) => (rows[kind]![name] ??= []).push(v);
        add('executionMs', row!.executionMs ?? Number.NaN);
        add('startup', timing.loopBegan - timing.began);
        add('loop', timing.ended - timing.loopBegan);
        add('module CPU', timing.cpuMs);
        add('outside module', (row!.executionMs ?? Number.NaN) - (timing.ended - timing.began));
      }
    }
    console.log(
      `uptime: ${(await import('node:os'))
        .loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}; p50 of ${RUNS} runs (ms)`,
    );
    const names = Object.keys(rows.silent!);
    console.log(['part'.padEnd(14), 'silent'.padStart(8), 'logging'.padStart(8), 'extra'.padStart(8)].join(' '));
    for (const name of names) {
      const [s, l] = [percentile(rows.silent![name]!, 50), percentile(rows.logging![name]!, 50)];
      console.log([name.padEnd(14), String(round(s, 1)).padStart(8), String(round(l, 1)).padStart(8), String(round(l - s, 1)).padStart(8)].join(' '));
    }
    return [];
  } finally {
    await t.stop();
  }
}

runWhenMain(import.meta.url, trackingSplit);
