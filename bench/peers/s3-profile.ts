// Where S3's time goes (`npm run bench -- peers`: startRun → the run's first progress at a graphql-ws subscriber):
// one-task no-op runs as S3 runs them, each hop of each run stamped by the hop tracer (plugins/trace.ts) in the
// bench process (client and control plane) and the executor host's process, then per hop the time since the hop
// before it and since startRun was sent, p50 and p99 over the runs. `npx tsx bench/peers/s3-profile.ts [runs]`.
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startTracing, stopTracing } from '../../plugins/trace';
import { percentile, round, runWhenMain } from '../lib';
import { independent } from './atelier';
import { firstProgress } from './live';
import { profileWorld } from './profile-world';

/** The hops in the order a run passes them, each measured from the one named (default: the one above it). */
const HOPS: { hop: string; from?: string }[] = [
  { hop: 'client: startRun sent' },
  { hop: 'control plane: startRun entered' },
  { hop: 'control plane: commit sent' },
  { hop: 'control plane: committed' },
  { hop: 'control plane: task publishing' },
  { hop: 'control plane: task published' },
  { hop: 'client: startRun answered', from: 'control plane: committed' },
  { hop: 'host: task delivered', from: 'control plane: task published' },
  { hop: 'host: claim asked' },
  { hop: 'control plane: claim received' },
  { hop: 'control plane: claim answered' },
  { hop: 'host: claim answered' },
  { hop: 'host: module started' },
  { hop: 'host: progress reported' },
  { hop: 'host: progress event sent' },
  { hop: 'control plane: event delivered' },
  { hop: 'control plane: recording begun' },
  { hop: 'control plane: locked and read' },
  { hop: 'control plane: settling' },
  { hop: 'control plane: commit sent (last)' },
  { hop: 'control plane: progress committed' },
  { hop: 'control plane: progress committed', from: 'control plane: recording begun' }, // the recording whole
  { hop: 'control plane: feed published' },
  { hop: 'control plane: feed delivered' },
  { hop: 'control plane: subscription woken' },
  { hop: 'control plane: subscription yields' },
  { hop: 'control plane: graphql-ws frame sent' },
  { hop: 'client: progress received' },
];

export interface HopRow {
  hop: string;
  from: string;
  p50: number;
  p99: number;
  sinceSentP50: number;
  runs: number;
}

/** Per run (key), the first time each hop was stamped, from the trace files of every process. */
export async function readTrace(dir: string): Promise<Map<string, Map<string, number>>> {
  const runs = new Map<string, Map<string, number>>();
  for (const name of await readdir(dir)) {
    for (const line of (await readFile(path.join(dir, name), 'utf8')).split('\n')) {
      if (!line) continue;
      const { hop, key, at } = JSON.parse(line) as { hop: string; key: string; at: number };
      let hops = runs.get(key);
      if (!hops) runs.set(key, (hops = new Map()));
      if (!hops.has(hop) || hops.get(hop)! > at) hops.set(hop, at);
      // A hop stamped more than once a run (a commit sent by startRun and by the recording) is told by its last stamp too.
      const last = `${hop} (last)`;
      if (!hops.has(last) || hops.get(last)! < at) hops.set(last, at);
    }
  }
  return runs;
}

/** The per-hop table over the runs that were sent and seen at the client. */
export function hopTable(runs: Map<string, Map<string, number>>): HopRow[] {
  const measured = [...runs.values()].filter((h) => h.has('client: startRun sent') && h.has('client: progress received'));
  return HOPS.slice(1).map(({ hop, from }, i) => {
    const before = from ?? HOPS[i]!.hop;
    const steps: number[] = [];
    const since: number[] = [];
    for (const h of measured) {
      const at = h.get(hop);
      const prior = h.get(before);
      if (at === undefined) continue;
      if (prior !== undefined) steps.push(at - prior);
      since.push(at - h.get('client: startRun sent')!);
    }
    return { hop, from: before, p50: percentile(steps, 50), p99: percentile(steps, 99), sinceSentP50: percentile(since, 50), runs: steps.length };
  });
}

const fixed = (n: number, width: number) => (Number.isFinite(n) ? n.toFixed(2) : '-').padStart(width);

export interface S3Profile {
  rows: HopRow[];
  /** Every statement the control plane sent meanwhile (pg_stat_statements: calls and normalised text). */
  statements: { calls: string; plans: string; ms: number; planMs: number; query: string }[];
}

export async function s3Profile(runCount: number, print = true): Promise<S3Profile> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'atelier-s3-trace-'));
  process.env.ATELIER_TRACE_DIR = dir; // the executor host's process traces too (startAtelier passes it on)
  startTracing(dir);
  // S3_PROFILE_SLEEP_MS: the task sleeps that long after its progress, so its first progress is recorded with its start
  // and without its result, as from a module that runs past the host's fold (test/db/progress-round-trips.test.ts counts
  // that recording); without it, a no-op's start, progress and result come in one bundle.
  const sleepMs = Number(process.env.S3_PROFILE_SLEEP_MS ?? 0);
  const workflow = independent('s3-profile', 1);
  if (sleepMs > 0) for (const task of workflow.tasks) Object.assign(task, { parameters: { sleepMs } });
  // S3_PROFILE_STATEMENTS: with Postgres' planning counted too (a statement planned on every call shows 1.00 plans a run).
  const world = await profileWorld([workflow], process.env.S3_PROFILE_STATEMENTS ? { 'pg_stat_statements.track_planning': 'on' } : {});
  try {
    await world.counter.reset(); // the statements of the runs (and of the idle loops meanwhile), not of the setup
    const r = await firstProgress(world.atelier, 's3-profile', runCount);
    stopTracing();
    await new Promise((resolve) => setTimeout(resolve, 500)); // the host writes its stamps every 100 ms
    const rows = hopTable(await readTrace(dir));
    const statements = await world.statements('calls');
    if (!print) return { rows, statements };
    const calls = statements.reduce((sum, row) => sum + Number(row.calls), 0);
    console.log(
      `S3 first progress over ${runCount} runs${sleepMs > 0 ? ` (the task sleeping ${sleepMs} ms after it)` : ''}: p50 ${round(r.p50)} ms, p99 ${round(r.p99)} ms; ${(calls / runCount).toFixed(2)} statements a run`,
    );
    if (process.env.S3_PROFILE_STATEMENTS)
      for (const row of statements)
        console.log(
          `${(Number(row.calls) / runCount).toFixed(2).padStart(6)} calls ${(Number(row.plans) / runCount).toFixed(2).padStart(5)} plans ${((row.ms + row.planMs) / runCount).toFixed(3).padStart(6)} ms a run  ${row.query.replace(/\s+/g, ' ').slice(0, 140)}`,
        );
    console.log(`${'hop'.padEnd(40)} ${'step p50'.padStart(9)} ${'step p99'.padStart(9)} ${'since sent p50'.padStart(15)}`);
    for (const [i, row] of rows.entries()) {
      const note = `${row.from !== HOPS[i]!.hop ? `  (from ${row.from})` : ''}${row.runs < runCount ? `  (${row.runs} runs)` : ''}`;
      console.log(`${row.hop.padEnd(40)} ${fixed(row.p50, 9)} ${fixed(row.p99, 9)} ${fixed(row.sinceSentP50, 15)}${note}`);
    }
    return { rows, statements };
  } finally {
    delete process.env.ATELIER_TRACE_DIR;
    await world.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

runWhenMain(import.meta.url, async () => {
  await s3Profile(Number(process.argv[2] ?? 200));
  return [];
});
