// `npm run bench -- peers` (#21): Atelier against a Postgres job queue, graphile-worker (its defaults and the
// configuration its docs recommend for throughput), on one Postgres 15 and one nats-server started here, in one
// process tree, interleaved (for each repetition: graphile default, graphile tuned, Atelier), medians of the
// repetitions, each beside the peer and the goal. Then Atelier alone: startRun → first progress at a graphql-ws
// subscriber beside its floor, 1,000 subscribers to one run, and the embedded default. Statements per task and
// per edge come from pg_stat_statements, counted the same way for both (bench/peers/statements.ts).
//
// Sizes: ATELIER_BENCH_PEERS_SCALE (default 1: the issue's sizes; 0.1 for a quick run), ATELIER_BENCH_PEERS_REPS
// (default 3), ATELIER_BENCH_PEERS_ONLY (e.g. `s1,s2`: only those scenarios), ATELIER_BENCH_PEERS_S5_DEADLINE_S.
import os from 'node:os';
import postgres from 'postgres';
import { startNats } from '../test/harness/nats';
import { hasServerLibrary, startPostgres } from '../test/harness/postgres';
import { floor } from './foundation';
import { percentile, type Row, round, runWhenMain } from './lib';
import { type AtelierUnderTest, atelierChain, atelierThroughput, chain, embeddedThroughput, independent, startAtelier } from './peers/atelier';
import { fanOutFloor } from './peers/fan-out-floor';
import { graphileChain, graphileThroughput, type PeerConfig } from './peers/graphile';
import { fanOut, firstProgress } from './peers/live';
import { inDatabase, type StatementCounter, statementCounter } from './peers/statements';

export interface PeersOptions {
  scale?: number;
  reps?: number;
  only?: string[];
  s5DeadlineS?: number;
  /** Print progress lines (default true). */
  log?: boolean;
}

/** The issue's goals (#21). */
const GOALS = { s1TasksPerSecond: 5000, s2P50: 3, s2P99: 15, s3P50: 5, s3P99: 20, s4P99: 100, s4RssMiB: 300, s5TasksPerSecond: 1000 };

const median = (xs: number[]) => percentile(xs, 50);
const load = () =>
  os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');

export function optionsFromEnv(env: NodeJS.ProcessEnv = process.env): PeersOptions {
  return {
    scale: env.ATELIER_BENCH_PEERS_SCALE ? Number(env.ATELIER_BENCH_PEERS_SCALE) : 1,
    reps: env.ATELIER_BENCH_PEERS_REPS ? Number(env.ATELIER_BENCH_PEERS_REPS) : 3,
    only: env.ATELIER_BENCH_PEERS_ONLY ? env.ATELIER_BENCH_PEERS_ONLY.split(',').map((s) => s.trim().toLowerCase()) : undefined,
    s5DeadlineS: env.ATELIER_BENCH_PEERS_S5_DEADLINE_S ? Number(env.ATELIER_BENCH_PEERS_S5_DEADLINE_S) : undefined,
  };
}

/** A counter that counts nothing, for a server without the pg_stat_statements library. */
const noCounter: StatementCounter = {
  reset: async () => {},
  read: async () => ({ statements: NaN, serverMs: NaN, evicted: false }),
  end: async () => {},
};

export async function peersBench(options: PeersOptions = optionsFromEnv()): Promise<Row[]> {
  const scale = options.scale ?? 1;
  const reps = Math.max(1, options.reps ?? 3);
  const on = (s: string) => !options.only || options.only.includes(s);
  const log = options.log === false ? () => {} : (line: string) => console.log(`peers: ${line}`);
  const size = (full: number, least: number) => Math.max(least, Math.round(full * scale));
  const n = {
    s1: size(10_000, 20),
    s2: size(200, 5),
    s3: size(200, 5),
    s4Subscribers: size(1000, 5),
    s4Tasks: size(20, 2),
    s5: size(2000, 20),
    s5Big: size(10_000, 50),
    s5DeadlineS: options.s5DeadlineS ?? Math.max(20, Math.round(200 * scale)),
  };
  const rows: Row[] = [];
  const row = (metric: string, value: number, unit: string, extra: Partial<Row> = {}) => rows.push({ bench: 'peers', metric, value, unit, ...extra });
  const unmeasured: string[] = [];
  log(`sizes ${JSON.stringify(n)}, ${reps} repetitions; load average ${load()}`);

  const countable = hasServerLibrary('pg_stat_statements');
  if (!countable) unmeasured.push('statements per task/edge: this Postgres has no pg_stat_statements library');
  const [pg, nats] = await Promise.all([
    startPostgres(
      countable ? { settings: { shared_preload_libraries: 'pg_stat_statements', 'pg_stat_statements.max': '20000', 'pg_stat_statements.track': 'top' } } : {},
    ),
    startNats(),
  ]);
  const admin = postgres(inDatabase(pg.url, 'postgres'), { max: 1, onnotice: () => {} });
  for (const db of ['graphile', 'floor', 'atelier_s4']) await admin.unsafe(`create database ${db}`);
  await admin.end();
  const counter = countable ? await statementCounter(inDatabase(pg.url, 'postgres')) : noCounter;
  const graphileUrl = inDatabase(pg.url, 'graphile');
  const infra = { pgUrl: pg.url, natsUrl: nats.url };
  let atelier: AtelierUnderTest | undefined;
  try {
    // ---- S1 and S2, interleaved ------------------------------------------------------------------------------
    if (on('s1') || on('s2') || on('s3')) {
      atelier = await startAtelier(infra, [independent('peers-s1', n.s1), chain('peers-s2', n.s2), independent('peers-one', 1)], counter);
      log(`Atelier up; idle control plane: ${atelier.idleStatementsPerSecond} statements/s`);
    }
    const peers: PeerConfig[] = ['graphile default', 'graphile tuned'];
    type Sys = PeerConfig | 'Atelier';
    const s1: Record<Sys, { tps: number[]; stmts: number[]; net: number[]; serverMs: number[]; evicted: boolean; errors: string[] }> = Object.fromEntries(
      [...peers, 'Atelier'].map((s) => [s, { tps: [], stmts: [], net: [], serverMs: [], evicted: false, errors: [] }]),
    ) as never;
    const s2: Record<Sys, { p50: number[]; p99: number[]; stmts: number[]; net: number[]; serverMs: number[]; evicted: boolean }> = Object.fromEntries(
      [...peers, 'Atelier'].map((s) => [s, { p50: [], p99: [], stmts: [], net: [], serverMs: [], evicted: false }]),
    ) as never;
    for (let rep = 1; rep <= reps; rep++) {
      if (on('s1')) {
        for (const peer of peers) {
          const r = await graphileThroughput(graphileUrl, peer, n.s1, counter);
          Object.assign(s1[peer], { evicted: s1[peer].evicted || r.evicted });
          s1[peer].tps.push(r.tasksPerSecond);
          s1[peer].stmts.push(r.statementsPerTask);
          s1[peer].net.push(r.statementsPerTask);
          s1[peer].serverMs.push(r.serverMsPerTask);
          log(`S1 rep ${rep} ${peer}: ${Math.round(r.tasksPerSecond)} tasks/s, ${round(r.statementsPerTask, 3)} statements/task (load ${load()})`);
        }
        const r = await atelierThroughput(atelier!, 'peers-s1', n.s1, counter);
        const a = s1.Atelier;
        a.evicted ||= r.evicted;
        a.tps.push(r.tasksPerSecond);
        a.stmts.push(r.statementsPerTask);
        a.net.push(r.netStatementsPerTask);
        a.serverMs.push(r.serverMsPerTask);
        if (r.startError) a.errors.push(r.startError);
        log(
          `S1 rep ${rep} Atelier: ${Math.round(r.tasksPerSecond)} tasks/s, ${round(r.statementsPerTask)} statements/task${r.startError ? `; startRun answered: ${r.startError}` : ''} (load ${load()})`,
        );
      }
      if (on('s2')) {
        for (const sys of [...peers, 'Atelier'] as Sys[]) {
          const r = sys === 'Atelier' ? await atelierChain(atelier!, 'peers-s2', n.s2, counter) : await graphileChain(graphileUrl, sys, n.s2, counter);
          const x = s2[sys];
          x.evicted ||= r.evicted;
          x.p50.push(r.p50);
          x.p99.push(r.p99);
          x.stmts.push(r.statementsPerEdge);
          x.net.push('netStatementsPerEdge' in r ? (r.netStatementsPerEdge as number) : r.statementsPerEdge);
          x.serverMs.push(r.serverMsPerEdge);
          log(`S2 rep ${rep} ${sys}: edge p50 ${round(r.p50)} ms, p99 ${round(r.p99)} ms, ${round(r.statementsPerEdge)} statements/edge (load ${load()})`);
        }
      }
    }
    if (on('s1')) {
      const mine = median(s1.Atelier.tps);
      for (const sys of [...peers, 'Atelier'] as Sys[]) {
        const x = s1[sys];
        row(`S1 ${n.s1} no-op tasks, start → all done: ${sys}`, median(x.tps), 'tasks/s', {
          note: `median of ${x.tps.map(Math.round).join(', ')}`,
        });
      }
      row('S1 Atelier ÷ graphile tuned', mine / median(s1['graphile tuned'].tps), '×');
      row('S1 Atelier ÷ graphile default', mine / median(s1['graphile default'].tps), '×');
      row('S1 Atelier ÷ goal (5,000 tasks/s)', mine / GOALS.s1TasksPerSecond, '×');
      for (const sys of [...peers, 'Atelier'] as Sys[]) {
        const x = s1[sys];
        row(`S1 statements per task: ${sys}`, median(x.stmts), 'statements', {
          note: `${Math.round(median(x.stmts) * n.s1)} in all; ${sys === 'Atelier' ? `${round(median(x.net))} per task less the idle loops; ` : ''}server ${round(median(x.serverMs), 3)} ms/task${x.evicted ? '; entries evicted: too low' : ''}`,
        });
      }
      if (s1.Atelier.errors.length)
        row('S1 Atelier startRun answered an error (the run existed)', s1.Atelier.errors.length, 'times', { note: s1.Atelier.errors[0]!.slice(0, 120) });
    }
    if (on('s2')) {
      for (const sys of [...peers, 'Atelier'] as Sys[]) {
        const x = s2[sys];
        row(`S2 chain of ${n.s2}, child start − parent finish p50: ${sys}`, median(x.p50), 'ms', {
          note: `median of ${x.p50.map((v) => round(v)).join(', ')}`,
        });
        row(`S2 chain of ${n.s2}, child start − parent finish p99: ${sys}`, median(x.p99), 'ms', {
          note: `median of ${x.p99.map((v) => round(v)).join(', ')}`,
        });
      }
      const a = s2.Atelier;
      row('S2 Atelier p50 ÷ graphile tuned', median(a.p50) / median(s2['graphile tuned'].p50), '×');
      row('S2 Atelier p50 ÷ goal (3 ms)', median(a.p50) / GOALS.s2P50, '×');
      row('S2 Atelier p99 ÷ goal (15 ms)', median(a.p99) / GOALS.s2P99, '×');
      for (const sys of [...peers, 'Atelier'] as Sys[]) {
        const x = s2[sys];
        row(`S2 statements per edge: ${sys}`, median(x.stmts), 'statements', {
          note: `${sys === 'Atelier' ? `${round(median(x.net))} less the idle loops; ` : ''}server ${round(median(x.serverMs), 3)} ms/edge${x.evicted ? '; entries evicted: too low' : ''}`,
        });
      }
      row('S2 clocks', 0, '', {
        note: 'graphile: this process, performance.now (µs); Atelier: stored started_at/finished_at = executor host Date.now (ms)',
      });
    }

    // ---- S3: startRun → first progress at a graphql-ws subscriber, beside its floor ----------------------------
    if (on('s3')) {
      const r = await firstProgress(atelier!, 'peers-one', n.s3);
      const f = await floor({ pgUrl: inDatabase(pg.url, 'floor'), natsUrl: nats.url }, 200, n.s3);
      row('S3 startRun → first progress at graphql-ws subscriber, p50', r.p50, 'ms', {
        floor: f.p50,
        ratio: r.p50 / f.p50,
        note: `goal ${GOALS.s3P50} ms: ${round(r.p50 / GOALS.s3P50)}×`,
      });
      row('S3 startRun → first progress at graphql-ws subscriber, p99', r.p99, 'ms', {
        floor: f.p99,
        ratio: r.p99 / f.p99,
        note: `goal ${GOALS.s3P99} ms: ${round(r.p99 / GOALS.s3P99)}×`,
      });
      log(`S3: p50 ${round(r.p50)} ms, p99 ${round(r.p99)} ms; floor p50 ${round(f.p50)} ms (load ${load()})`);
    }
    await atelier?.stop();
    atelier = undefined;

    // ---- S4: 1,000 subscribers to one run, the control plane as its own process ------------------------------
    if (on('s4')) {
      const r = await fanOut({ pgUrl: inDatabase(pg.url, 'atelier_s4'), natsUrl: nats.url }, n.s4Subscribers, n.s4Tasks);
      const note = `${r.subscribers} subscribers, ${r.events} events (${r.eventsToAll} reached all), ${r.deliveries} deliveries`;
      const f = await fanOutFloor(n.s4Subscribers, r.schedule);
      row('S4 event → subscriber, p50 of deliveries', r.p50, 'ms', { note, floor: f.p50, ratio: r.p50 / f.p50 });
      row('S4 event → subscriber, p99 of deliveries', r.p99, 'ms', {
        floor: f.p99,
        ratio: r.p99 / f.p99,
        note: `goal ${GOALS.s4P99} ms: ${round(r.p99 / GOALS.s4P99)}×; floor: a bare graphql-ws server, the same events at the same moments`,
      });
      row('S4 event → the last of its subscribers, p99 of events', r.p99ToAll, 'ms');
      row('S4 control-plane RSS, peak', r.rssPeakMiB, 'MiB', {
        note: `idle ${Math.round(r.rssIdleMiB)}, subscribed ${Math.round(r.rssSubscribedMiB)}; goal ≤ ${GOALS.s4RssMiB} MB`,
      });
      log(`S4: p99 ${round(r.p99)} ms (bare graphql-ws floor ${round(f.p99)} ms), RSS peak ${Math.round(r.rssPeakMiB)} MiB (load ${load()})`);
    }

    // ---- S5: the embedded default ----------------------------------------------------------------------------
    if (on('s5')) {
      const small = await embeddedThroughput(n.s5, n.s5DeadlineS * 1000);
      if (small.tasksPerSecond !== undefined)
        row(`S5 embedded, ${n.s5} no-op tasks`, small.tasksPerSecond, 'tasks/s', {
          note: `goal ${GOALS.s5TasksPerSecond}: ${round(small.tasksPerSecond / GOALS.s5TasksPerSecond)}×`,
        });
      else row(`S5 embedded, ${n.s5} no-op tasks`, NaN, 'tasks/s', { note: small.unfinished });
      log(`S5 ${n.s5}: ${small.tasksPerSecond ? `${Math.round(small.tasksPerSecond)} tasks/s` : small.unfinished} (load ${load()})`);
      const big = await embeddedThroughput(n.s5Big, n.s5DeadlineS * 1000);
      row(`S5 embedded, ${n.s5Big} no-op tasks`, big.wallMs ?? NaN, 'ms', {
        note: big.wallMs !== undefined ? `finished: ${Math.round(big.tasksPerSecond!)} tasks/s` : big.unfinished,
      });
      log(`S5 ${n.s5Big}: ${big.wallMs !== undefined ? `finished in ${Math.round(big.wallMs)} ms` : big.unfinished} (load ${load()})`);
    }
  } finally {
    await atelier?.stop().catch(() => {});
    await counter.end();
    await nats.stop();
    await pg.stop();
  }
  row('load average (1, 5, 15 min) at the end', os.loadavg()[0]!, '', { note: `${load()} on ${os.cpus().length} CPUs` });
  for (const u of unmeasured) row('not measured', NaN, '', { note: u });
  return rows;
}

runWhenMain(import.meta.url, () => peersBench());
