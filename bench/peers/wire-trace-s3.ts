// wire-trace.ts for S3 (`npm run bench -- peers`: startRun → the run's first progress at a graphql-ws subscriber):
// one-task no-op runs as S3 runs them, the control plane's Postgres sockets tapped (wire-tap.ts), and per run
// startRun's transaction (entered → committed) split into our side and the time a statement of it was waiting on
// Postgres, then the recording's two windows as wire-trace.ts splits S2's. p50 over the runs, in ms.
// `npx tsx bench/peers/wire-trace-s3.ts [runs]`.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startTracing, stopTracing } from '../../plugins/trace';
import { round, runWhenMain } from '../lib';
import { independent } from './atelier';
import { firstProgress } from './live';
import { profileWorld } from './profile-world';
import { readTrace } from './s3-profile';
import { OBSERVER } from './statements';
import { tapPostgresSockets, type WireEvent } from './wire-tap';
import { commitWindow, readWindow, Steps } from './wire-trace';

export async function wireTraceS3(runCount: number): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'atelier-wire-s3-'));
  process.env.ATELIER_TRACE_DIR = dir;
  startTracing(dir);
  const tap = tapPostgresSockets((p) => p.database === 'atelier' && p.user !== OBSERVER);
  const world = await profileWorld([independent('wire-s3', 1)]);
  try {
    const r = await firstProgress(world.atelier, 'wire-s3', runCount);
    stopTracing();
    tap.stop();
    await new Promise((resolve) => setTimeout(resolve, 500)); // the host writes its stamps every 100 ms
    const runs = [...(await readTrace(dir)).values()].filter((h) => h.has('client: startRun sent') && h.has('client: progress received'));
    console.log(`S3 over ${runCount} runs: p50 ${round(r.p50)} ms; ${tap.events.length} chunks tapped`);
    const start = new Steps();
    const read = new Steps();
    const commit = new Steps();
    for (const h of runs) {
      const entered = h.get('control plane: startRun entered');
      const committed = h.get('control plane: committed');
      if (entered !== undefined && committed !== undefined) startWindow(start, tap.events, entered, committed);
      const begun = h.get('control plane: recording begun');
      const lockedRead = h.get('control plane: locked and read');
      const sent = h.get('control plane: commit sent (last)');
      const progressCommitted = h.get('control plane: progress committed');
      if (begun !== undefined && lockedRead !== undefined) readWindow(read, tap.events, [], begun, lockedRead);
      if (sent !== undefined && progressCommitted !== undefined) commitWindow(commit, tap.events, [], sent, progressCommitted);
    }
    start.print("startRun entered → committed (startRun's transaction)");
    read.print("recording begun → locked and read (the recording's first round trip)");
    commit.print("commit sent → progress committed (the recording's end)");
  } finally {
    tap.stop();
    delete process.env.ATELIER_TRACE_DIR;
    await world.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * A transaction's window: how many writes and round trips it took, and how long a statement of it was written and not
 * yet answered (the union, over the writes, of each write up to the first chunk read after it): Postgres' side with the
 * wire and the wake-ups; the rest of the window is the control plane's.
 */
function startWindow(steps: Steps, events: WireEvent[], from: number, to: number): void {
  const w = events.filter((e) => e.at >= from && e.at <= to);
  const outs = w.filter((e) => e.dir === 'out');
  if (!outs.length) return;
  let waiting = 0;
  let covered = from;
  let trips = 0;
  for (const out of outs) {
    const answer = w.find((e) => e.dir === 'in' && e.at > out.at);
    const end = answer?.at ?? to;
    if (out.at >= covered) trips++;
    waiting += Math.max(0, end - Math.max(out.at, covered));
    covered = Math.max(covered, end);
  }
  steps.add('whole window', to - from);
  steps.add('  writes', outs.length);
  steps.add('  round trips (writes sent after the answers before them)', trips);
  steps.add('waiting on Postgres (a statement written, its answer not yet read)', waiting);
  steps.add("the control plane's side (the rest)", to - from - waiting);
  steps.add('  entered → first write', outs[0]!.at - from);
}

runWhenMain(import.meta.url, async () => {
  await wireTraceS3(Number(process.argv[2] ?? 200));
  return [];
});
