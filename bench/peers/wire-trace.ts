// What S2's "locked and read" and "commit sent → committed" are made of (bench/peers/edge-trace.ts's hops): a no-op
// chain as S2 runs it, the hop tracer on (plugins/trace.ts), the control plane's Postgres sockets tapped
// (wire-tap.ts: each write and each chunk read, stamped, with the protocol messages they carry), and with
// WIRE_TRACE_STRACE=1 its Postgres backends under `strace -ttt -T` (when each backend read its bytes and sent each
// answer, on the same wall clock). Per edge, the two windows split at those stamps; p50 over the edges, in ms.
// With WIRE_TRACE_CPU=1, V8's profiler (every 50 µs) says what the main thread ran in the windows that are ours
// (window-cpu.ts). `npx tsx bench/peers/wire-trace.ts [length]`. The tap costs a few µs a chunk (it shows in the
// profile as wire-tap.ts); strace slows the backends' syscalls (~20–60 µs each), so its Postgres figures are upper
// bounds and its run is not one to time the edge by.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startTracing, stopTracing } from '../../plugins/trace';
import { percentile, round, runWhenMain } from '../lib';
import { atelierChain, chain } from './atelier';
import { readTaskTrace } from './edge-trace';
import { profileWorld } from './profile-world';
import { OBSERVER } from './statements';
import { profileWindows } from './window-cpu';
import { tapPostgresSockets, type WireEvent } from './wire-tap';

/** One syscall of a backend: when it began (epoch ms), what it was, how long it took, what it carried. */
interface BackendCall {
  at: number;
  pid: number;
  call: 'recvfrom' | 'sendto' | 'epoll_wait';
  ms: number;
  text: string;
}

export async function wireTrace(length: number): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'atelier-wire-trace-'));
  process.env.ATELIER_TRACE_DIR = dir;
  startTracing(dir);
  const tap = tapPostgresSockets((p) => p.database === 'atelier' && p.user !== OBSERVER);
  const world = await profileWorld([chain('wire-trace', length)], { 'pg_stat_statements.track_planning': 'on' });
  let strace: ChildProcess | undefined;
  const straceFile = path.join(`${dir}-strace.txt`); // beside the stamps' directory, whose files readTaskTrace reads
  try {
    if (process.env.WIRE_TRACE_STRACE === '1') {
      const pids = await world.atelier.observer<{ pid: number }[]>`
        select pid from pg_stat_activity where datname = 'atelier' and usename = 'postgres' and pid <> pg_backend_pid()`;
      strace = spawn(
        'strace',
        ['-ttt', '-T', '-s', '256', '-e', 'trace=recvfrom,sendto,epoll_wait', '-o', straceFile, ...pids.flatMap((r) => ['-p', String(r.pid)])],
        {
          stdio: 'ignore',
        },
      );
      await new Promise((resolve) => setTimeout(resolve, 1000)); // attached
    }
    // WIRE_TRACE_CPU=1: V8's profiler over the chain, its samples charged to the windows below (window-cpu.ts).
    const cpu = process.env.WIRE_TRACE_CPU === '1' ? await profileWindows() : undefined;
    const r = await atelierChain(world.atelier, 'wire-trace', length, world.counter);
    const samples = await cpu?.stop();
    stopTracing();
    tap.stop();
    if (strace) {
      strace.kill('SIGINT');
      await new Promise((resolve) => strace!.once('exit', resolve));
    }
    await new Promise((resolve) => setTimeout(resolve, 500)); // the host writes its stamps every 100 ms
    const stamps = await readTaskTrace(dir);
    const backend = strace ? parseStrace(await readFile(straceFile, 'utf8')) : [];
    const nodes = await world.atelier.observer<{ id: string; node: string }[]>`
      select t.id, t.node from tasks t join runs r on r.id = t.run_id join workflows w on w.id = r.workflow_id where w.name = 'wire-trace'`;
    const byIndex = new Map(nodes.map((t) => [Number(t.node.slice(1)), t.id]));
    console.log(
      `S2 chain of ${length}: edge p50 ${round(r.p50)} ms, ${r.statementsPerEdge.toFixed(2)} statements per edge; ${tap.events.length} chunks tapped`,
    );
    const whole = new Steps();
    const read = new Steps();
    const commit = new Steps();
    let shown = 0;
    for (let i = 1; i < length; i++) {
      const parent = stamps.get(byIndex.get(i - 1)!);
      const child = stamps.get(byIndex.get(i)!);
      if (!parent || !child) continue;
      const begun = parent.get('control plane: recording begun');
      const lockedRead = parent.get('control plane: locked and read');
      const sent = child.get('control plane: commit sent');
      const committed = child.get('control plane: committed');
      whole.add('edge: P host wait returned → C host module started', (child.get('host: module started') ?? NaN) - (parent.get('host: wait returned') ?? NaN));
      whole.add("recording begun → C committed (the recording's transaction)", (committed ?? NaN) - (begun ?? NaN));
      if (begun !== undefined && lockedRead !== undefined) readWindow(read, tap.events, backend, begun, lockedRead);
      if (samples && begun !== undefined && lockedRead !== undefined && sent !== undefined && committed !== undefined) {
        const firstOut = tap.events.find((e) => e.dir === 'out' && e.at >= begun);
        if (firstOut) samples.charge('recording begun → its first write', begun, firstOut.at);
        samples.charge('locked and read → commit sent', lockedRead, sent);
        samples.charge('commit sent → committed', sent, committed);
      }
      if (sent !== undefined && committed !== undefined) {
        commitWindow(commit, tap.events, backend, sent, committed);
        if (process.env.WIRE_TRACE_SHOW && i >= 100 && shown++ < Number(process.env.WIRE_TRACE_SHOW)) show(tap.events, backend, begun ?? sent, committed);
      }
    }
    whole.print('the edge, and the recording in it');
    // Postgres' own time for each statement an edge sends (pg_stat_statements: no wire, no wake-ups, no strace).
    const edges = length - 1;
    const rows = (await world.statements('time')).map((r) => ({ ...r, exec: r.ms, plan: r.planMs }));
    console.log(`\nPostgres' time an edge (pg_stat_statements, track_planning on)`);
    console.log(
      `${'calls/edge'.padStart(10)} ${'plans/edge'.padStart(10)} ${'ms/plan'.padStart(8)} ${'exec/call'.padStart(9)} ${'ms/edge'.padStart(8)}  statement`,
    );
    let sum = 0;
    for (const row of rows) {
      const calls = Number(row.calls);
      const perEdge = (row.exec + row.plan) / edges;
      sum += perEdge;
      if (calls / edges >= 0.5)
        console.log(
          `${(calls / edges).toFixed(2).padStart(10)} ${(Number(row.plans) / edges).toFixed(2).padStart(10)} ${(row.plan / Math.max(1, Number(row.plans))).toFixed(3).padStart(8)} ${(row.exec / calls).toFixed(3).padStart(9)} ${perEdge.toFixed(3).padStart(8)}  ${row.query.replace(/\s+/g, ' ').slice(0, 80)}`,
        );
    }
    console.log(`${''.padStart(40)} ${sum.toFixed(3).padStart(8)}  (all statements, the idle loops' included)`);
    read.print("recording begun → locked and read (the recording's first round trip)");
    commit.print("commit sent → committed (the dispatch's transaction's end)");
    samples?.print(length - 1);
  } finally {
    tap.stop();
    strace?.kill('SIGINT');
    delete process.env.ATELIER_TRACE_DIR;
    await world.stop();
    await rm(dir, { recursive: true, force: true });
    await rm(straceFile, { force: true });
  }
}

/** Named steps of a window, one sample per edge each, printed as p50 / p90 in the order first seen. */
export class Steps {
  private steps = new Map<string, number[]>();
  add(name: string, ms: number | undefined): void {
    if (ms === undefined || !Number.isFinite(ms)) return;
    if (!this.steps.has(name)) this.steps.set(name, []);
    this.steps.get(name)!.push(ms);
  }
  print(title: string): void {
    console.log(`\n${title}\n${'step'.padEnd(64)} ${'p50'.padStart(7)} ${'p90'.padStart(7)} ${'mean'.padStart(7)} ${'edges'.padStart(6)}`);
    for (const [name, v] of this.steps)
      console.log(
        `${name.padEnd(64)} ${percentile(v, 50).toFixed(3).padStart(7)} ${percentile(v, 90).toFixed(3).padStart(7)} ${(v.reduce((a, b) => a + b, 0) / v.length).toFixed(3).padStart(7)} ${String(v.length).padStart(6)}`,
      );
  }
}

const within = (events: WireEvent[], from: number, to: number) => events.filter((e) => e.at >= from && e.at <= to);

/** The recording's first round trip: BEGIN, the lock, the reads and the early insert sent at once, their answers back. */
export function readWindow(steps: Steps, events: WireEvent[], backend: BackendCall[], begun: number, lockedRead: number): void {
  const w = within(events, begun, lockedRead);
  const firstOut = w.find((e) => e.dir === 'out' && e.messages.some((m) => /^[PQ]:begin/i.test(m)));
  const ins = w.filter((e) => e.dir === 'in');
  const lastIn = ins.at(-1);
  if (!firstOut || !lastIn) return;
  const outs = w.filter((e) => e.dir === 'out');
  steps.add('begun → BEGIN and its statements written', firstOut.at - begun);
  steps.add('  writes in the window', outs.length);
  steps.add('  statements in the first write', firstOut.messages.filter((m) => m.startsWith('P:') || m.startsWith('Q:') || m === 'B').length);
  steps.add('written → last answer chunk read (wire + Postgres)', lastIn.at - outs.at(-1)!.at);
  steps.add('  answer chunks read', ins.length);
  steps.add('last chunk read → its data listeners returned', (lastIn.handledAt ?? NaN) - lastIn.at);
  steps.add('listeners returned → locked and read stamped', lockedRead - (lastIn.handledAt ?? NaN));
  pgSplit(steps, backend, outs.at(-1)!.at, lastIn.at);
}

/** The end of the transaction: the statements still unanswered at `commit sent`, the COMMIT behind them, its answer. */
export function commitWindow(steps: Steps, events: WireEvent[], backend: BackendCall[], sent: number, committed: number): void {
  const w = within(events, sent, committed);
  // The COMMIT goes as a named statement the driver prepared once (Bind, Execute, Sync: no text): the last write before its answer.
  const commitIn = w.find((e) => e.dir === 'in' && e.messages.includes('C:COMMIT'));
  const commitOut = commitIn && w.findLast((e) => e.dir === 'out' && e.at < commitIn.at);
  if (!commitOut || !commitIn) return;
  const firstOut = w.find((e) => e.dir === 'out')!;
  steps.add('commit sent → first write after it', firstOut.at - sent);
  steps.add('commit sent → COMMIT written', commitOut.at - sent);
  steps.add("  writes in the window (the COMMIT's included)", w.filter((e) => e.dir === 'out').length);
  steps.add(
    '  answers read between commit sent and COMMIT written',
    w.filter((e) => e.dir === 'in' && e.at < commitOut.at).flatMap((e) => e.messages.filter((m) => m.startsWith('C:'))).length,
  );
  const pending = w.filter((e) => e.dir === 'in' && e.at >= commitOut.at && e !== commitIn).flatMap((e) => e.messages.filter((m) => m.startsWith('C:')));
  steps.add('  answers read after COMMIT written, before its own', pending.length);
  steps.add('COMMIT written → its answer read (wire + Postgres)', commitIn.at - commitOut.at);
  steps.add('  answer chunks read in that time', w.filter((e) => e.dir === 'in' && e.at > commitOut.at && e.at <= commitIn.at).length);
  steps.add("COMMIT's chunk read → its data listeners returned", (commitIn.handledAt ?? NaN) - commitIn.at);
  steps.add('listeners returned → committed stamped', committed - (commitIn.handledAt ?? NaN));
  pgSplit(steps, backend, commitOut.at, commitIn.at, 'COMMIT');
}

/**
 * With strace: between the last write and the chunk that answered it, when the backend read it and sent its last
 * answer, so the round trip splits into the kernel's delivery to the backend, Postgres' work, and the way back.
 */
function pgSplit(steps: Steps, backend: BackendCall[], written: number, answered: number, tag?: string): void {
  if (!backend.length) return;
  const recv = backend.find((c) => c.call === 'recvfrom' && c.at >= written - 0.05 && c.at <= answered && !c.text.includes('EAGAIN'));
  const sends = backend.filter((c) => c.call === 'sendto' && c.at <= answered && c.at >= written - 0.05 && (!tag || c.text.includes(tag)));
  const send = sends.at(-1);
  if (!recv || !send) return;
  steps.add('  backend: written → read by the backend (kernel, wake-up)', recv.at + recv.ms - written);
  steps.add('  backend: read → last answer sent (Postgres, under strace)', send.at - (recv.at + recv.ms));
  steps.add('  backend: answer sent → chunk read here (kernel, wake-up, loop)', answered - send.at);
}

/** The first edges' wire events and backend calls, in time order, for reading by eye (WIRE_TRACE_SHOW=n). */
function show(events: WireEvent[], backend: BackendCall[], from: number, to: number): void {
  const rows = [
    ...within(events, from, to).map((e) => ({
      at: e.at,
      text: `${e.dir} conn ${e.conn} ${e.bytes} B ${e.messages.join(' ')}${e.handledAt ? ` (handled ${(e.handledAt - e.at).toFixed(3)})` : ''}`,
    })),
    ...backend.filter((c) => c.at >= from && c.at <= to).map((c) => ({ at: c.at, text: `  pg ${c.pid} ${c.call} ${c.ms.toFixed(3)} ${c.text.slice(0, 90)}` })),
  ].sort((a, b) => a.at - b.at);
  console.log('---');
  for (const r of rows) console.log(`${(r.at - from).toFixed(3).padStart(8)}  ${r.text}`);
}

/** `strace -ttt -T -o` lines of several pids: `pid secs.micros call(args) = result <secs>`. */
function parseStrace(text: string): BackendCall[] {
  const calls: BackendCall[] = [];
  for (const line of text.split('\n')) {
    const m = /^(\d+)\s+(\d+\.\d+) (recvfrom|sendto|epoll_wait)\((.*)\) = .*<(\d+\.\d+)>$/.exec(line);
    if (m) calls.push({ pid: Number(m[1]), at: Number(m[2]) * 1000, call: m[3] as BackendCall['call'], text: m[4]!, ms: Number(m[5]) * 1000 });
  }
  return calls.sort((a, b) => a.at - b.at);
}

runWhenMain(import.meta.url, async () => {
  await wireTrace(Number(process.argv[2] ?? 200));
  return [];
});
