// Where a logging task's extra execution time goes (issue #17): the same modules as bench/tracking-metrics.ts, logging
// 100,000 points point by point (test/metrics), in one metricSeries call (test/metrics-bulk) or none, reporting their
// own times (test/tracking/metric-module.ts, `timing`), with the host's hops traced (plugins/trace.ts). Per run, from
// the host's `executionMs` (its stamp of the module's exit less the attempt's start and provisioning):
//   startup: the module's process began → its loop began (node starting, the helper imported)
//   loop: the loop's wall time (logging: the helper's per-point cost and its writes, plus contention)
//   module CPU: the module's own CPU in all (process.cpuUsage at its end)
//   outside module: executionMs less the module's own span (process began → its last line): the host's steps,
//   spawning the process, its ending, and the host's stamp of its exit (late when the host's event loop is busy)
//   host before spawn: the attempt began → the module's process spawned (with provisioning, which executionMs leaves out)
//   spawned → began: the host's spawn returned → the module's process began (its clock origin; may be negative)
//   last line → stamp: the module's last line → the host's stamp of its exit (the process ending, the host's loop)
//   reads before stamp: the host's handling of progress-file reads before the exit stamp, summed (ms of its loop)
// `npx tsx bench/tracking-split.ts` (embedded default, as the tracking bench). ATELIER_BENCH_SPLIT_RUNS (default 5).
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { eq } from 'drizzle-orm';
import { flushTrace, startTracing } from '../plugins/trace';
import { tasks } from '../server/db/tables/runs';
import { startTestApp } from '../test/harness/app';
import { PUBLISH } from '../test/harness/client';
import { metricsBulkModuleArchive, metricsModuleArchive } from '../test/tracking/metric-module';
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
interface Hop {
  hop: string;
  key: string;
  at: number;
  ms?: number;
}

export async function trackingSplit(): Promise<Row[]> {
  const traceDir = await mkdtemp(path.join(tmpdir(), 'atelier-split-'));
  startTracing(traceDir);
  const t = await startTestApp();
  try {
    for (const archive of [metricsModuleArchive, metricsBulkModuleArchive]) {
      const published = await t.api.upload(PUBLISH, { tags: ['latest'] }, 'artifact', await archive());
      if (published.errors) throw new Error(JSON.stringify(published.errors));
    }
    const kinds = [
      ['silent', 'test/metrics', false],
      ['logging', 'test/metrics', true],
      ['bulk', 'test/metrics-bulk', true],
    ] as const;
    for (const [kind, module, log] of kinds)
      await t.createWorkflow({ name: `split-${kind}`, tasks: [{ name: 'train', module, parameters: { count: POINTS, log, timing: true } }] });
    await runOnce(t, 'split-silent');
    const rows: Record<string, Record<string, number[]>> = { silent: {}, logging: {}, bulk: {} };
    const runsOf: { kind: string; runId: string; timing: Timing }[] = [];
    for (let i = 0; i < RUNS; i++) {
      for (const [kind] of kinds) {
        const task = await runOnce(t, `split-${kind}`);
        const [row] = await t.app.database.db.select().from(tasks).where(eq(tasks.id, task.id));
        const timing = (row!.outputs as { timing: Timing }).timing;
        const add = (name: string, v: number) => (rows[kind]![name] ??= []).push(v);
        add('executionMs', row!.executionMs ?? Number.NaN);
        add('startup', timing.loopBegan - timing.began);
        add('loop', timing.ended - timing.loopBegan);
        add('module CPU', timing.cpuMs);
        add('outside module', (row!.executionMs ?? Number.NaN) - (timing.ended - timing.began));
        runsOf.push({ kind, runId: task.runId, timing });
      }
    }
    flushTrace();
    const hops: Hop[] = [];
    for (const file of await readdir(traceDir))
      for (const line of (await readFile(path.join(traceDir, file), 'utf8')).split('\n')) if (line) hops.push(JSON.parse(line) as Hop);
    for (const { kind, runId, timing } of runsOf) {
      const of = (hop: string) => hops.find((h) => h.key === runId && h.hop === hop)?.at ?? Number.NaN;
      const [began, spawned, stamped] = [of('host: attempt began'), of('host: module spawned'), of('host: module exit stamped')];
      const add = (name: string, v: number) => (rows[kind]![name] ??= []).push(v);
      add('host before spawn', spawned - began);
      add('spawned → began', timing.began - spawned);
      add('last line → stamp', stamped - timing.ended);
      add(
        'reads before stamp',
        hops.filter((h) => h.key === runId && h.hop === 'host: progress read' && h.at < stamped).reduce((sum, h) => sum + (h.ms ?? 0), 0),
      );
    }
    if (process.env.ATELIER_BENCH_SPLIT_HOPS)
      for (const { kind, runId } of runsOf.slice(-6)) {
        const mine = hops.filter((h) => h.key === runId).sort((a, b) => a.at - b.at);
        console.log(
          kind,
          mine.map((h) => `${h.hop.replace('host: ', '')} +${round(h.at - mine[0]!.at, 1)}${h.ms === undefined ? '' : ` (${round(h.ms, 1)})`}`).join(', '),
        );
      }
    console.log(
      `uptime: ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}; p50 of ${RUNS} runs (ms)`,
    );
    const column = (s: string) => s.padStart(9);
    console.log(['part'.padEnd(19), ...['silent', 'logging', 'extra', 'bulk', 'extra'].map(column)].join(' '));
    for (const name of Object.keys(rows.silent!)) {
      const [s, l, b] = (['silent', 'logging', 'bulk'] as const).map((k) => percentile(rows[k]![name]!, 50));
      console.log([name.padEnd(19), ...[s!, l!, l! - s!, b!, b! - s!].map((v) => column(String(round(v, 1))))].join(' '));
    }
    return [];
  } finally {
    await t.stop();
    await rm(traceDir, { recursive: true, force: true });
  }
}

runWhenMain(import.meta.url, trackingSplit);
