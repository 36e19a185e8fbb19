// Where S2's edge time goes (`npm run bench -- peers`: a chain's child start − its parent's finish): one no-op chain
// as S2 runs it, each hop of each edge stamped by the hop tracer (plugins/trace.ts, stamps naming their task) in the
// bench process (the control plane) and the executor host's process, then per hop the time since the hop before it
// and since the parent's `wait` returned, p50 and p99 over the edges. `npx tsx bench/peers/edge-trace.ts [length]`.
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startTracing, stopTracing } from '../../plugins/trace';
import { percentile, round, runWhenMain } from '../lib';
import { atelierChain, chain } from './atelier';
import { profileWorld } from './profile-world';

/** An edge's hops in the order it passes them: the parent's (P) up to its recording, then the child's (C). */
const HOPS: { hop: string; of: 'P' | 'C'; from?: string }[] = [
  { hop: 'host: wait returned', of: 'P' },
  { hop: 'host: result sent', of: 'P' },
  { hop: 'host: result published', of: 'P' },
  { hop: 'control plane: event delivered', of: 'P', from: 'host: result sent' },
  { hop: 'control plane: recording begun', of: 'P' },
  { hop: 'control plane: locked and read', of: 'P' },
  { hop: 'control plane: settling', of: 'P' },
  { hop: 'control plane: evaluated', of: 'C' },
  { hop: 'control plane: dispatched', of: 'C' },
  { hop: 'control plane: commit sent', of: 'C' },
  { hop: 'control plane: committed', of: 'C' },
  { hop: 'control plane: task publishing', of: 'C' },
  { hop: 'control plane: task published', of: 'C' },
  { hop: 'host: task delivered', of: 'C', from: 'control plane: task publishing' },
  { hop: 'host: claim asked', of: 'C' },
  { hop: 'control plane: claim received', of: 'C' },
  // No 'claims flushed': a claim answered from the dispatch's reservation (session 33) is never queued for the query.
  { hop: 'control plane: claim answered', of: 'C' },
  { hop: 'host: claim answered', of: 'C' },
  { hop: 'host: attempt began', of: 'C' },
  { hop: 'host: module started', of: 'C' },
];
const ORIGIN = 'P:host: wait returned';

/** Per task, the first time each hop was stamped with its name, from the trace files of every process. */
export async function readTaskTrace(dir: string): Promise<Map<string, Map<string, number>>> {
  const tasks = new Map<string, Map<string, number>>();
  for (const name of await readdir(dir)) {
    for (const line of (await readFile(path.join(dir, name), 'utf8')).split('\n')) {
      if (!line) continue;
      const { hop, task, at } = JSON.parse(line) as { hop: string; task?: string; at: number };
      if (task === undefined) continue;
      let hops = tasks.get(task);
      if (!hops) tasks.set(task, (hops = new Map()));
      if (!hops.has(hop) || hops.get(hop)! > at) hops.set(hop, at);
    }
  }
  return tasks;
}

const fixed = (n: number, width: number) => (Number.isFinite(n) ? n.toFixed(2) : '-').padStart(width);

export interface EdgeHopRow {
  /** `P` (the parent) or `C` (the child), then the hop. */
  hop: string;
  p50: number;
  p99: number;
  sinceWaitP50: number;
  /** Edges on which this hop and the one it is measured from were both stamped. */
  edges: number;
}

export async function edgeTrace(length: number, print = true): Promise<{ rows: EdgeHopRow[]; edges: number }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'atelier-edge-trace-'));
  process.env.ATELIER_TRACE_DIR = dir; // the executor host's process traces too (startAtelier passes it on)
  startTracing(dir);
  const world = await profileWorld([chain('edge-trace', length)]);
  try {
    const r = await atelierChain(world.atelier, 'edge-trace', length, world.counter);
    stopTracing();
    await new Promise((resolve) => setTimeout(resolve, 500)); // the host writes its stamps every 100 ms
    const stamps = await readTaskTrace(dir);
    const nodes = await world.atelier.observer<{ id: string; node: string }[]>`
      select t.id, t.node from tasks t join runs r on r.id = t.run_id join workflows w on w.id = r.workflow_id where w.name = 'edge-trace'`;
    const byIndex = new Map(nodes.map((t) => [Number(t.node.slice(1)), t.id]));
    // Each edge's hops as one map: `P:hop` of the parent, `C:hop` of the child.
    const edges: Map<string, number>[] = [];
    for (let i = 1; i < length; i++) {
      const parent = stamps.get(byIndex.get(i - 1)!);
      const child = stamps.get(byIndex.get(i)!);
      if (!parent || !child) continue;
      edges.push(new Map([...[...parent].map(([h, at]) => [`P:${h}`, at] as const), ...[...child].map(([h, at]) => [`C:${h}`, at] as const)]));
    }
    const rows: EdgeHopRow[] = [];
    if (print) {
      console.log(
        `S2 chain of ${length}: edge p50 ${round(r.p50)} ms, p99 ${round(r.p99)} ms (stored times); ${r.statementsPerEdge.toFixed(2)} statements per edge`,
      );
      console.log(`${'hop'.padEnd(44)} ${'step p50'.padStart(9)} ${'step p99'.padStart(9)} ${'since P wait p50'.padStart(17)}`);
    }
    for (const [i, { hop, of, from }] of HOPS.entries()) {
      if (i === 0) continue;
      const key = `${of}:${hop}`;
      const before = from ? `${HOPS.find((h) => h.hop === from)!.of}:${from}` : `${HOPS[i - 1]!.of}:${HOPS[i - 1]!.hop}`;
      const steps: number[] = [];
      const since: number[] = [];
      for (const e of edges) {
        const at = e.get(key);
        if (at === undefined) continue;
        if (e.has(before)) steps.push(at - e.get(before)!);
        if (e.has(ORIGIN)) since.push(at - e.get(ORIGIN)!);
      }
      const row = { hop: `${of} ${hop}`, p50: percentile(steps, 50), p99: percentile(steps, 99), sinceWaitP50: percentile(since, 50), edges: steps.length };
      rows.push(row);
      const note = `${from ? `  (from ${from})` : ''}${steps.length < edges.length ? `  (${steps.length} edges)` : ''}`;
      if (print) console.log(`${row.hop.padEnd(44)} ${fixed(row.p50, 9)} ${fixed(row.p99, 9)} ${fixed(row.sinceWaitP50, 17)}${note}`);
    }
    return { rows, edges: edges.length };
  } finally {
    delete process.env.ATELIER_TRACE_DIR;
    await world.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

runWhenMain(import.meta.url, async () => {
  await edgeTrace(Number(process.argv[2] ?? 200));
  return [];
});
