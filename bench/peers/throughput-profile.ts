// The statements of S1 one by one: a run of `width` independent no-op tasks on Postgres + NATS (as S1 of
// `npm run bench -- peers`), every statement the control plane sent while it ran (pg_stat_statements), by server
// time: calls per task, rows per task (read or written), total ms. `npx tsx bench/peers/throughput-profile.ts [width]`.
// Postgres' CPU a task is the whole cluster's (postgres-probe.ts); PROFILE_PG_STATS=1 adds rows a task by table (HOT
// updates, TOAST), the trigger functions' time, WAL and each statement's buffers; PROFILE_PERF=file a perf profile of it.
import { copyFile, readdir, readFile, writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector';
import { constants, PerformanceObserver } from 'node:perf_hooks';
import { getHeapSpaceStatistics, writeHeapSnapshot } from 'node:v8';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { type Row, runWhenMain } from '../lib';
import { type AtelierUnderTest, atelierThroughput, independent } from './atelier';
import { perfProbe, perfRecord, postgresCpuMs, statsLines, statsSettings, statsSnapshot } from './postgres-probe';
import { profileWorld } from './profile-world';
import { OBSERVER } from './statements';

/**
 * `PROFILE_EXPLAIN_MS=n`: auto_explain logs the plan of every statement slower than n ms, with its triggers' time (startRun's
 * foreign-key checks); the log is copied to PROFILE_EXPLAIN_LOG.
 */
const explainMs = process.env.PROFILE_EXPLAIN_MS;
const explainSettings: Record<string, string> = explainMs
  ? {
      shared_preload_libraries: 'pg_stat_statements,auto_explain',
      'auto_explain.log_min_duration': `${explainMs}ms`,
      'auto_explain.log_analyze': 'on',
      'auto_explain.log_triggers': 'on',
    }
  : {};

export async function throughputProfile(width: number): Promise<Row[]> {
  // V8 keeps one sampling heap profiler a process: a second start fails, and so would the run's end.
  if (process.env.PROFILE_SURVIVORS && process.env.PROFILE_HEAP)
    throw new Error('PROFILE_SURVIVORS and PROFILE_HEAP cannot be set together: run one, then the other');
  const world = await profileWorld([independent('profile', width)], { ...statsSettings, ...explainSettings });
  try {
    // PROFILE_PG_BEFORE='sql': run (as the observer, a superuser) before the run, e.g. a trigger disabled or an index dropped to price it.
    if (process.env.PROFILE_PG_BEFORE) await world.atelier.observer.unsafe(process.env.PROFILE_PG_BEFORE);
    const nats = await pidOf('nats-server', `-p ${new URL(world.natsUrl).port}`);
    const host = world.atelier.executor.child.pid;
    // PROFILE_WARMUP=1: one run of the same width first, unmeasured, so the run measured finds the control plane's code
    // compiled (a fresh process compiles the hot paths while its first wide run goes: V8's optimizing compiler's threads).
    if (process.env.PROFILE_WARMUP === '1') await atelierThroughput(world.atelier, 'profile', width, world.counter);
    const messages0 = await streamMessages(world.natsUrl);
    const pgStats = process.env.PROFILE_PG_STATS === '1' ? await statsSnapshot(world.atelier.observer) : undefined;
    const cpu0 = { plane: process.cpuUsage(), host: await cpuMs(host), nats: await cpuMs(nats), pg: await postgresCpuMs(world.pgPort) };
    const startedAt = Date.now();
    const gcs = gcProbe();
    const heap = heapProbe(world.atelier.observer, width);
    const survivors = await survivorProbe();
    const cpuProfile = await cpuProbe();
    const perf = await perfProbe(world.pgPort);
    const planePerf = await planePerfProbe();
    const allocations = await allocationProbe();
    // PROFILE_MARKS=1: the run's window marked in the output, for what node prints as it goes (`node --trace-opt
    // --trace-deopt --import tsx bench/peers/throughput-profile.ts`: the functions V8 optimized and deoptimized in it).
    const mark = (line: string) => process.env.PROFILE_MARKS === '1' && console.log(line);
    mark('=== the run begins');
    const r = await atelierThroughput(world.atelier, 'profile', width, world.counter).finally(() => heap.stop());
    mark('=== the run has ended');
    await allocations.stop();
    await cpuProfile.stop();
    await perf.stop();
    await planePerf.stop();
    await survivors.stop();
    const plane = process.cpuUsage(cpu0.plane);
    const gcLine = await gcs.stop();
    const perTask = (ms: number) => `${((ms / width) * 1000).toFixed(0)} µs`;
    const cpu = `CPU per task: control plane ${perTask((plane.user + plane.system) / 1000)}, executor host ${perTask((await cpuMs(host)) - cpu0.host)}, nats-server ${perTask((await cpuMs(nats)) - cpu0.nats)}, Postgres ${perTask((await postgresCpuMs(world.pgPort)) - cpu0.pg)}`;
    for (const row of await world.statements('time'))
      console.log(
        `${Number(row.ms).toFixed(0).padStart(7)} ms ${(Number(row.calls) / width).toFixed(4).padStart(7)}/task ${(Number(row.rows) / width).toFixed(2).padStart(5)} rows/task  ${row.query.replace(/\s+/g, ' ').slice(0, Number(process.env.PROFILE_WIDTH ?? 200))}`,
      );
    console.log(
      `${width} tasks: ${r.tasksPerSecond.toFixed(0)} tasks/s, ${r.statementsPerTask.toFixed(3)} statements per task (${r.netStatementsPerTask.toFixed(3)} less the idle loops), ${r.serverMsPerTask.toFixed(3)} ms server time per task; startRun answered in ${r.startMs.toFixed(0)} ms of ${r.wallMs.toFixed(0)} ms`,
    );
    // Where the wall time went: the run's creation (startRun's transaction), its first task queued, started and
    // finished, its last task queued and finished, each in ms from the run's creation.
    const [t] = await world.atelier.observer<Record<string, number>[]>`
      select extract(epoch from min(t.queued_at) - r.created_at) * 1000 as first_queued,
        extract(epoch from max(t.queued_at) - r.created_at) * 1000 as last_queued,
        extract(epoch from min(t.started_at) - r.created_at) * 1000 as first_started,
        extract(epoch from min(t.finished_at) - r.created_at) * 1000 as first_finished,
        extract(epoch from max(t.finished_at) - r.created_at) * 1000 as last_finished,
        extract(epoch from r.finished_at - r.created_at) * 1000 as run_finished,
        extract(epoch from r.created_at - ${new Date(startedAt)}::timestamptz) * 1000 as created_after_request
      from runs r join tasks t on t.run_id = r.id
      where r.id = (select id from runs order by created_at desc limit 1) group by r.created_at, r.finished_at`;
    // Which way the control plane's connections came (PROFILE_PG_SOCKET): a Unix socket's have no client address.
    const ways = await world.atelier.observer<{ socket: number; tcp: number }[]>`
      select count(*) filter (where client_addr is null)::int as socket, count(*) filter (where client_addr is not null)::int as tcp
      from pg_stat_activity where datname = ${world.atelier.database} and usename <> current_user`;
    console.log(cpu);
    console.log(`the control plane's connections to Postgres: ${ways[0]?.socket ?? 0} over a Unix socket, ${ways[0]?.tcp ?? 0} over TCP`);
    // Each stored message is one acknowledged publish and (for events) one delivery and one ack back: per task.
    const messages = await streamMessages(world.natsUrl);
    console.log(
      `JetStream messages per task: ${Object.entries(messages)
        .map(([stream, n]) => `${stream} ${((n - (messages0[stream] ?? 0)) / width).toFixed(3)}`)
        .join(', ')}`,
    );
    console.log(gcLine);
    console.log(heap.line());
    if (t)
      console.log(
        `timeline (ms from the run's creation): ${Object.entries(t)
          .map(([k, v]) => `${k} ${Number(v).toFixed(0)}`)
          .join(', ')}`,
      );
    if (pgStats) {
      await new Promise((resolve) => setTimeout(resolve, 1500)); // each backend's counts, flushed within a second of its going idle
      const after = await statsSnapshot(world.atelier.observer);
      for (const line of await statsLines(world.statementsObserver, world.atelier.database, pgStats, after, width, OBSERVER)) console.log(line);
    }
    // PROFILE_PG_AFTER='sql': its rows printed after the run (as the observer), e.g. what a table holds.
    if (process.env.PROFILE_PG_AFTER) for (const row of await world.atelier.observer.unsafe(process.env.PROFILE_PG_AFTER)) console.log(JSON.stringify(row));
    if (explainMs) await copyFile(world.logFile, process.env.PROFILE_EXPLAIN_LOG ?? 'throughput-profile.log');
    return [];
  } finally {
    await world.stop();
  }
}

/**
 * `PROFILE_PERF_PLANE=file`: `perf record` of the control plane's process (every thread: the main one, V8's GC and
 * compiler threads, libuv's) over the run, 999 samples a second with frame-pointer call graphs: CPU time only, where
 * the CPU profiler samples a thread that is runnable but not running too. Run the bench under
 * `node --perf-basic-prof` (`NODE_OPTIONS=--perf-basic-prof`) so JavaScript frames have names; `perf report -i file
 * --no-children --sort sym` reads it.
 */
async function planePerfProbe(): Promise<{ stop(): Promise<void> }> {
  const file = process.env.PROFILE_PERF_PLANE;
  if (!file) return { async stop() {} };
  return perfRecord(['-F', '999', '-g', '-o', file, '-p', String(process.pid)]);
}

/** Messages each JetStream stream has taken so far (its last sequence number), by stream name. */
async function streamMessages(natsUrl: string): Promise<Record<string, number>> {
  const nc = await connect({ servers: natsUrl });
  try {
    const jsm = await jetstreamManager(nc);
    const counts: Record<string, number> = {};
    for await (const info of jsm.streams.list()) counts[info.config.name] = info.state.last_seq;
    return counts;
  } finally {
    await nc.close();
  }
}

/**
 * The control plane's collections while the run goes, by kind: how many, and their pause in all (ms); and its heap:
 * used at the start and at its largest (no collection forced), the process's resident memory at its largest, and what the old generation took in (the growth of its
 * spaces from one collection's report to the next, summed: what scavenges promoted, and what was allocated there).
 */
function gcProbe(): { stop(): Promise<string> } {
  const kinds = new Map<string, { count: number; ms: number }>();
  const oldSpaces = new Set(['old_space', 'code_space', 'large_object_space', 'code_large_object_space']);
  const oldUsed = () => getHeapSpaceStatistics().reduce((sum, s) => sum + (oldSpaces.has(s.space_name) ? s.space_used_size : 0), 0);
  const startUsed = process.memoryUsage().heapUsed;
  let peak = startUsed;
  let peakRss = process.memoryUsage().rss;
  let old = oldUsed();
  let intake = 0;
  const names: Record<number, string> = {
    [constants.NODE_PERFORMANCE_GC_MINOR]: 'scavenges',
    [constants.NODE_PERFORMANCE_GC_MAJOR]: 'mark-compacts',
    [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental marking steps',
    [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weak callbacks',
  };
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const kind = names[(entry as unknown as { detail: { kind: number } }).detail.kind] ?? 'other';
      const k = kinds.get(kind) ?? { count: 0, ms: 0 };
      k.count++;
      k.ms += entry.duration;
      kinds.set(kind, k);
    }
    const now = oldUsed();
    intake += Math.max(0, now - old);
    old = now;
    const memory = process.memoryUsage();
    peak = Math.max(peak, memory.heapUsed);
    peakRss = Math.max(peakRss, memory.rss);
  });
  observer.observe({ entryTypes: ['gc'] });
  return {
    async stop() {
      await new Promise((resolve) => setTimeout(resolve, 10)); // the last entries are delivered a turn later
      observer.disconnect();
      const mb = (bytes: number) => (bytes / 1e6).toFixed(1);
      return `GC in the control plane while the run went: ${[...kinds].map(([kind, k]) => `${k.count} ${kind} (${k.ms.toFixed(0)} ms)`).join(', ')}${(globalThis as { gc?: unknown }).gc ? " (with the heap probe's full collections)" : ''}; heap used ${mb(startUsed)} MB at the start, ${mb(peak)} at most (resident ${mb(peakRss)} MB at most); the old generation took in ${mb(intake)} MB`;
    },
  };
}

/**
 * The control plane's heap while the run goes: with `--expose-gc` (`NODE_OPTIONS=--expose-gc`), heap used after a full
 * collection before the run, when half its tasks have finished and once it has ended, over the run's tasks (what the
 * plane holds a task); `PROFILE_HEAP_SNAPSHOT=file` also writes heap snapshots at those moments (`file.before`, `file`,
 * `file.end`).
 */
function heapProbe(observer: AtelierUnderTest['observer'], width: number): { stop(): void; line(): string } {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) return { stop() {}, line: () => 'heap: run with NODE_OPTIONS=--expose-gc to measure what the control plane holds a task' };
  const used = () => {
    gc();
    return process.memoryUsage().heapUsed;
  };
  const before = used();
  const snapshot = process.env.PROFILE_HEAP_SNAPSHOT;
  if (snapshot) writeHeapSnapshot(`${snapshot}.before`);
  let mid: { used: number; finished: number } | undefined;
  let after: number | undefined;
  let stopped = false;
  const poll = async () => {
    while (!stopped && !mid) {
      const [row] = await observer<{ n: number }[]>`select count(*)::int as n from tasks where finished_at is not null`;
      if ((row?.n ?? 0) >= width / 2) {
        mid = { used: used(), finished: row!.n };
        if (snapshot) writeHeapSnapshot(snapshot);
      } else await new Promise((r) => setTimeout(r, 50));
    }
  };
  const polling = poll().catch(() => {});
  return {
    stop() {
      stopped = true;
      void polling;
      after = used();
      if (snapshot) writeHeapSnapshot(`${snapshot}.end`);
    },
    line: () =>
      mid
        ? `heap after a full GC: ${(before / 1e6).toFixed(1)} MB before the run, ${(mid.used / 1e6).toFixed(1)} MB with ${mid.finished} of ${width} tasks finished (${((mid.used - before) / width / 1000).toFixed(2)} KB a task of the run), ${((after ?? 0) / 1e6).toFixed(1)} MB once it ended (${(((after ?? 0) - before) / width / 1000).toFixed(2)} KB a task)`
        : 'heap: the run ended before half its tasks were seen finished',
  };
}

/** An inspector session on this process, and its `post` as a promise. */
function inspector(): { session: Session; post: (method: string, params?: object) => Promise<unknown> } {
  const session = new Session();
  session.connect();
  const post = (method: string, params?: object) =>
    new Promise<unknown>((resolve, reject) => session.post(method, params, (err, result) => (err ? reject(err) : resolve(result))));
  return { session, post };
}

/**
 * V8's sampling heap profiler on the control plane (this process) over the run's window, a sample every
 * `samplingInterval` bytes, keeping the samples of objects a full collection freed and, with `minor`, those a scavenge
 * freed too; the profile goes to `file` (a .heapprofile Chrome's DevTools opens). Nothing when `file` is unset.
 */
async function heapSamplingProbe(file: string | undefined, samplingInterval: number, minor: boolean): Promise<{ stop(): Promise<void> }> {
  if (!file) return { async stop() {} };
  const { session, post } = inspector();
  await post('HeapProfiler.startSampling', { samplingInterval, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: minor });
  return {
    async stop() {
      const { profile } = (await post('HeapProfiler.stopSampling')) as { profile: unknown };
      await writeFile(file, JSON.stringify(profile));
      session.disconnect();
    },
  };
}

/**
 * `PROFILE_SURVIVORS=file`: the samples of objects a scavenge did not collect (those a full collection did are kept):
 * where what a scavenge copies and promotes was allocated.
 */
const survivorProbe = () => {
  // V8 keeps one sampling heap profiler a process: the second start would take over the first's samples.
  if (process.env.PROFILE_SURVIVORS && process.env.PROFILE_HEAP)
    throw new Error('PROFILE_SURVIVORS and PROFILE_HEAP cannot be set together: run one, then the other');
  return heapSamplingProbe(process.env.PROFILE_SURVIVORS, 4096, false);
};

/**
 * `PROFILE_HEAP=file`: every sample, a sample every `PROFILE_HEAP_INTERVAL` bytes (4096), the objects either collector
 * freed included: what the run allocates, not only what survives (as `bench/peers/host-heap-probe.cjs` does for the
 * host). `bench/peers/heap-profile-table.ts` reads it as KB a task by area and by function.
 */
const allocationProbe = () => heapSamplingProbe(process.env.PROFILE_HEAP, Number(process.env.PROFILE_HEAP_INTERVAL ?? 4096), true);

/**
 * `PROFILE_CPU=file`: V8's CPU profiler on the control plane (this process) over the run's window only, from the
 * request to the last task seen finished, sampling every 500 µs; the profile goes to `file` (a .cpuprofile, as
 * `node --cpu-prof` writes, without the world's setup and teardown). `bench/peers/cpu-profile-table.ts` reads it.
 */
async function cpuProbe(): Promise<{ stop(): Promise<void> }> {
  const file = process.env.PROFILE_CPU;
  if (!file) return { async stop() {} };
  const { session, post } = inspector();
  await post('Profiler.enable');
  await post('Profiler.setSamplingInterval', { interval: 500 });
  await post('Profiler.start');
  return {
    async stop() {
      const { profile } = (await post('Profiler.stop')) as { profile: unknown };
      await writeFile(file, JSON.stringify(profile));
      session.disconnect();
    },
  };
}

/** A process's CPU time so far (user + system, ms) from /proc; 0 when it cannot be read. */
async function cpuMs(pid: number | undefined): Promise<number> {
  if (pid === undefined) return 0;
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) || 0) + (Number(fields[12]) || 0)) * 10; // utime, stime in clock ticks (100 per second)
}

/** The process whose command line has `name` and `arg` (the nats-server the harness started). */
async function pidOf(name: string, arg: string): Promise<number | undefined> {
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmd = (await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '')).split('\0').join(' ');
    if (cmd.includes(name) && cmd.includes(arg)) return Number(entry);
  }
  return undefined;
}

runWhenMain(import.meta.url, () => throughputProfile(Number(process.argv[2] ?? 10000)));
