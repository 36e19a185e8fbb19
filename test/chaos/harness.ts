// The chaos suite: a deployment of two control planes and two executor hosts on real Postgres and nats-server
// (cluster.ts) runs fan-out/fan-in workflows and a cron schedule while seeded faults (faults.ts) kill and restart
// its processes and servers, and subscribers (subscribers.ts) watch the runs. Once the system has settled it
// counts what must never happen (counters.ts) and prints the figures. `npm run chaos` (run.ts) runs a long form;
// test/chaos/suite.test.ts a short one inside `npm test`.
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Cron } from 'croner';
import postgres from 'postgres';
import { packDirectory } from '../../server/artifacts/archive';
import { fixturesDir } from '../harness/app';
import { apiClient, PUBLISH } from '../harness/client';
import { CHAOS_TOKEN, type Cluster, type ObjectStoreOption, startCluster } from './cluster';
import { type Counters, executions, type Measured, measure } from './counters';
import { nothingLeft, watchUndelivered } from './drained';
import { type FaultKind, faultKinds, faultSchedule, seededRandom } from './faults';
import { watchModuleProcesses } from './procs';
import { type RunWatch, watchRun } from './subscribers';
import { type FaultSpan, suspectTasks, taskTimelines } from './timeline';

export interface ChaosOptions {
  seed: number;
  /** How long faults are injected and runs started, ms. */
  durationMs: number;
  /** Faults injected over that time (kills and restarts of every kind). */
  faults: number;
  /** A run is started about this often, ms, while faults are injected… */
  runEveryMs: number;
  /** …unless this many of the suite's runs are still open (a slow machine is not buried under a backlog). */
  maxOpenRuns: number;
  /** Width of the fan-out (tasks between the split and the join), smallest and largest. */
  fanOut: [number, number];
  /** How long each task's module works, ms. */
  taskMs: [number, number];
  /** The schedule's cron expression (6 fields: seconds first). */
  cron: string;
  heartbeatTimeoutSeconds: number;
  executorConcurrency: number;
  /** After the chaos phase, open runs count as stuck once none has ended for this long, ms. */
  settleMs: number;
  /**
   * The least time kept after the last fault, ms (a module alive past its killed host's grace is seen in it). The
   * suite settles only once nothing is left to deliver again (drained.ts), however long that takes: a task whose ack
   * a fault lost is redelivered after the hosts' ack wait, and is checked then.
   */
  quietMs: number;
  /** The executor hosts' task ack wait (ATELIER_TASK_ACK_WAIT_SECONDS); unset, the bus default of 30 s. */
  taskAckWaitSeconds?: number;
  objectStore: ObjectStoreOption;
  log: (line: string) => void;
}

export const defaultChaosOptions: ChaosOptions = {
  seed: 1,
  durationMs: 120_000,
  faults: 30,
  runEveryMs: 1_500,
  maxOpenRuns: 8,
  fanOut: [4, 12],
  taskMs: [200, 1_500],
  cron: '*/3 * * * * *',
  heartbeatTimeoutSeconds: 5,
  executorConcurrency: 8,
  settleMs: 120_000,
  quietMs: 5_000,
  objectStore: { kind: 'shared-dir' },
  log: (line) => console.log(line),
};

export interface ChaosReport {
  options: Omit<ChaosOptions, 'log'>;
  faults: { kind: FaultKind; target: number; at: number; tookMs: number; error?: string }[];
  kills: Record<FaultKind, number>;
  /** Processes that exited without being killed (started again), with the end of their output. */
  exitedOnTheirOwn: { process: string; output: string }[];
  measured: Measured;
  counters: Counters;
  table: string;
  elapsedMs: number;
  /** For a failure: each suspect task's events, executions and the faults around them, in time order. */
  timeline: string;
  /** For a failure: where every process's whole output, the harness's log and the timeline were kept. */
  evidenceDir?: string;
}

/** Whether anything the suite checks went wrong. */
const failed = (r: Pick<ChaosReport, 'counters' | 'exitedOnTheirOwn' | 'faults'>) =>
  Object.values(r.counters).some((n) => n !== 0) || r.exitedOnTheirOwn.length > 0 || r.faults.some((f) => f.error);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));

export async function runChaos(partial: Partial<ChaosOptions> = {}): Promise<ChaosReport> {
  const o: ChaosOptions = { ...defaultChaosOptions, ...partial };
  const began = Date.now();
  const harnessLog: string[] = [];
  const log = (line: string) => {
    harnessLog.push(`${new Date().toISOString()} ${line}`);
    o.log(`[chaos +${((Date.now() - began) / 1000).toFixed(1)}s] ${line}`);
  };
  log(`seed ${o.seed}: ${o.faults} faults over ${o.durationMs / 1000} s, a run every ~${o.runEveryMs} ms, heartbeat timeout ${o.heartbeatTimeoutSeconds} s`);
  const cluster = await startCluster({
    heartbeatTimeoutSeconds: o.heartbeatTimeoutSeconds,
    executorConcurrency: o.executorConcurrency,
    taskAckWaitSeconds: o.taskAckWaitSeconds,
    objectStore: o.objectStore,
    log,
  });
  const procs = watchModuleProcesses({ hostPids: () => cluster.hostPids() });
  const watches: RunWatch[] = [];
  const executionLog = path.join(cluster.dir, 'executions.log');
  let sql: postgres.Sql | undefined;
  let evidenceDir: string | undefined;
  try {
    await mkdir(cluster.dir, { recursive: true });
    const random = seededRandom(o.seed ^ 0x5bd1e995);
    const gql = retryingGql(cluster, o.settleMs + 60_000);
    const setup = await prepare(cluster, o, random, executionLog);
    log(`deployment up (${((Date.now() - began) / 1000).toFixed(1)} s); workflows ${setup.workflows.join(', ')}; schedule ${o.cron}`);

    // --- the chaos phase: faults on their schedule, runs started and watched meanwhile --------------------
    const chaosStart = Date.now();
    const chaosEnd = chaosStart + o.durationMs;
    const plan = faultSchedule(o.seed, o.durationMs, o.faults);
    const done: ChaosReport['faults'] = [];
    const spans: FaultSpan[] = [];
    const exitedOnTheirOwn: ChaosReport['exitedOnTheirOwn'] = [];
    let lastFaultEnd = chaosStart;
    let faultsDone = false;
    const injecting = (async () => {
      for (const f of plan) {
        await sleep(chaosStart + f.at - Date.now());
        const t0 = Date.now();
        let error: string | undefined;
        try {
          await inject(cluster, procs, f.kind, f.target, f.downMs);
        } catch (err) {
          error = (err as Error).message.slice(0, 500);
        }
        exitedOnTheirOwn.push(...(await cluster.reviveExited()));
        lastFaultEnd = Date.now();
        done.push({ kind: f.kind, target: f.target, at: t0 - chaosStart, tookMs: lastFaultEnd - t0, ...(error ? { error } : {}) });
        spans.push({ kind: f.kind, target: f.target, from: t0, to: lastFaultEnd, ...(error ? { error } : {}) });
        log(
          `${f.kind}${f.kind.includes('control') || f.kind.includes('executor') ? ` #${f.target}` : ''} (down ${f.downMs} ms) took ${lastFaultEnd - t0} ms${error ? `: ${error}` : ''}`,
        );
      }
    })().finally(() => {
      faultsDone = true;
    });

    // The schedule fires, and runs start, for as long as faults are injected (slow recoveries on a loaded machine
    // stretch the phase past its planned length: the faults must still hit work under way).
    const ticksCounted = (async () => {
      await sleep(chaosEnd - Date.now());
      await injecting;
      const end = Date.now();
      return pauseScheduleWhenCaughtUp(sqlFor(cluster), gql, setup.scheduleId, o.cron, setup.createdBy, end, end + o.settleMs);
    })();
    ticksCounted.catch(() => undefined); // awaited below; not an unhandled rejection meanwhile
    const acknowledged = new Map<string, string>();
    const starting: Promise<void>[] = [];
    let pending = 0;
    for (let i = 0; Date.now() < chaosEnd || !faultsDone; i++) {
      // Open: its subscriber has not seen it end (one that lost the end is let go after 2 minutes).
      const open = watches.filter((w) => !w.done && Date.now() - w.since < 120_000).length;
      if (pending + open >= o.maxOpenRuns) {
        i--;
        await sleep(250);
        continue;
      }
      pending++;
      const workflow = setup.workflows[Math.floor(random() * setup.workflows.length)]!;
      const key = `chaos-${o.seed}-${i}`;
      const transport = i % 2 ? 'sse' : 'graphql-ws';
      starting.push(
        gql(`mutation ($w: String!, $k: String!) { startRun(workflow: $w, idempotencyKey: $k) { id } }`, { w: workflow, k: key }).then(
          (data) => {
            pending--;
            acknowledged.set(key, data.startRun.id);
            watches.push(watchRun(data.startRun.id, transport, () => cluster.upUrl(), CHAOS_TOKEN));
          },
          (err) => {
            pending--;
            log(`starting ${key} was never acknowledged: ${(err as Error).message}`);
          },
        ),
      );
      await sleep(o.runEveryMs * (0.5 + random()));
    }
    await injecting;
    await Promise.all(starting);
    log(`chaos phase over: ${done.length} faults, ${acknowledged.size} runs started; settling`);

    // --- settling: the schedule caught up and paused, every run ended, nothing left to deliver again ---------
    const ticks = await ticksCounted;
    sql = sqlFor(cluster);
    // Settled: nothing open, nothing left on the bus or in the outbox that could be delivered again (a redelivered
    // task must find its task finished: it is checked, not hoped to land in a fixed quiet time), and the least quiet
    // time after the last fault passed. Stuck: open, and nothing ended for `settleMs` (a slow machine still making
    // progress is given the time it needs); deliveries left `settleMs` after the last run ended are reported.
    const quietUntil = lastFaultEnd + o.quietMs;
    const undelivered = watchUndelivered(cluster.nats.url, sql);
    let waitingSaid = false;
    let lastOpen = Number.POSITIVE_INFINITY;
    let lastProgress = Date.now();
    for (;;) {
      exitedOnTheirOwn.push(...(await cluster.reviveExited()));
      const [open] = await sql<{ runs: number; fires: number }[]>`
        select (select count(*)::int from runs where status in ('QUEUED', 'RUNNING')) as runs,
               (select count(*)::int from schedule_fires where outcome = 'PENDING') as fires`;
      const openNow = open!.runs + open!.fires;
      if (openNow < lastOpen) lastProgress = Date.now();
      lastOpen = openNow;
      if (openNow === 0 && Date.now() >= quietUntil) {
        const left = await undelivered.left();
        if (nothingLeft(left)) {
          log(`settled, ${((Date.now() - lastFaultEnd) / 1000).toFixed(1)} s after the last fault`);
          break;
        }
        if (!waitingSaid) log(`every run ended; left to deliver again: ${JSON.stringify(left ?? 'nats-server or Postgres did not answer')}`);
        waitingSaid = true;
        if (Date.now() - lastProgress > o.settleMs) {
          log(
            `settled with deliveries left ${o.settleMs / 1000} s after the last run ended: ${JSON.stringify(left ?? 'nats-server or Postgres did not answer')}`,
          );
          break;
        }
      }
      if (openNow > 0 && Date.now() - lastProgress > o.settleMs) {
        log(`not settled: ${open!.runs} runs open and ${open!.fires} fires pending, none ended in ${o.settleMs / 1000} s`);
        break;
      }
      await sleep(500);
    }
    await undelivered.close();
    // Subscribers get a moment to see the end; one still waiting then keeps what it saw.
    await Promise.race([Promise.all(watches.map((w) => w.finished)), sleep(10_000)]);
    for (const w of watches) w.stop();
    await Promise.all(watches.map((w) => w.finished));
    await procs.sampleNow();
    await procs.stop();

    const seenExecutions = await executions(sql, executionLog, procs.seen());
    const measured = await measure({
      sql,
      acknowledged,
      watches,
      executions: seenExecutions,
      orphans: procs.orphans(),
      modulesUnderKilledHosts: procs.underKilledHosts(),
      schedule: { id: setup.scheduleId, ticks },
    });
    const kills = Object.fromEntries(faultKinds.map((k) => [k, done.filter((f) => f.kind === k && !f.error).length])) as Record<FaultKind, number>;
    const { log: _log, ...options } = o;
    const report: ChaosReport = {
      options,
      faults: done,
      kills,
      exitedOnTheirOwn,
      measured,
      counters: measured.counters,
      table: '',
      elapsedMs: Date.now() - began,
      timeline: '',
    };
    report.table = figuresTable(report);
    if (failed(report) || process.env.CHAOS_KEEP_EVIDENCE) {
      report.timeline = await taskTimelines(sql, await suspectTasks(sql, measured.evidence, seenExecutions), seenExecutions, spans);
      evidenceDir =
        process.env.CHAOS_EVIDENCE_DIR ?? path.join(os.tmpdir(), `atelier-chaos-evidence-${o.seed}-${new Date().toISOString().replace(/[:.]/g, '-')}`);
      report.evidenceDir = evidenceDir;
      await mkdir(evidenceDir, { recursive: true });
      await writeFile(path.join(evidenceDir, 'report.json'), JSON.stringify(report, null, 1));
      await writeFile(path.join(evidenceDir, 'timeline.txt'), `${report.timeline}\n`);
      await writeFile(path.join(evidenceDir, 'harness.log'), `${harnessLog.join('\n')}\n`);
    }
    return report;
  } catch (err) {
    o.log(`chaos harness failed: ${(err as Error).stack}\n${cluster.output()}`);
    throw err;
  } finally {
    for (const w of watches) w.stop();
    await procs.stop();
    await sql?.end({ timeout: 5 });
    const left = await procs.alive();
    await cluster.stop(evidenceDir && path.join(evidenceDir, 'logs'));
    // Module processes the suite started that outlived their hosts: ours to end.
    for (const pid of left) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {}
    }
  }
}

function sqlFor(cluster: Cluster) {
  return postgres(cluster.pg.url, { max: 2, onnotice: () => undefined });
}

async function inject(cluster: Cluster, procs: ReturnType<typeof watchModuleProcesses>, kind: FaultKind, target: number, downMs: number) {
  switch (kind) {
    case 'kill-control-plane':
      return cluster.killControlPlane(target, downMs);
    case 'kill-executor-host':
      return cluster.killExecutor(
        target,
        downMs,
        () => procs.sampleNow(),
        (pid) => procs.hostKilled(pid),
      );
    case 'nats-sigterm':
      return cluster.nats.restart('SIGTERM', downMs);
    case 'nats-sigkill':
      return cluster.nats.restart('SIGKILL', downMs);
    case 'postgres-fast-restart':
      return cluster.pg.restart('fast', downMs);
    case 'postgres-sigkill':
      return cluster.pg.restart('kill', downMs);
  }
}

/** A GraphQL call through whichever control plane is up, tried again for up to `patienceMs` (a replica may be down). */
function retryingGql(cluster: Cluster, patienceMs: number) {
  return async (query: string, variables: Record<string, unknown> = {}): Promise<any> => {
    const deadline = Date.now() + patienceMs;
    for (;;) {
      try {
        return await apiClient(cluster.upUrl(), CHAOS_TOKEN).gql(query, variables);
      } catch (err) {
        if (Date.now() > deadline) throw err;
        await sleep(300);
      }
    }
  };
}

/** Publishes the chaos module, creates the fan-out/fan-in workflows and the schedule. */
async function prepare(cluster: Cluster, o: ChaosOptions, random: () => number, logFile: string) {
  const api = apiClient(cluster.urls[0]!, CHAOS_TOKEN);
  const published = await api.upload(PUBLISH, {}, 'artifact', await packDirectory(path.join(fixturesDir, 'modules', 'chaos')));
  if (published.errors) throw new Error(`publishing the chaos module: ${JSON.stringify(published.errors)}`);
  const between = (lo: number, hi: number) => lo + Math.floor(random() * (hi - lo + 1));
  const task = (name: string, ms: number, dependsOn?: string[]) => ({
    name,
    module: 'test/chaos',
    parameters: { ms, log: logFile },
    ...(dependsOn ? { dependsOn } : {}),
  });
  const fan = (name: string, width: number) => {
    const middle = Array.from({ length: width }, (_, i) => task(`work${i}`, between(...o.taskMs), ['split']));
    return {
      name,
      tasks: [
        task('split', o.taskMs[0]),
        ...middle,
        task(
          'join',
          o.taskMs[0],
          middle.map((t) => t.name),
        ),
      ],
    };
  };
  const [lo, hi] = o.fanOut;
  const widths = [...new Set([lo, Math.round((lo + hi) / 2), hi])];
  const specs = [...widths.map((w) => fan(`chaos-fan-${w}`, w)), fan('chaos-tick', 2)];
  for (const spec of specs) await api.gql(`mutation ($s: String!) { createWorkflow(spec: $s) { created } }`, { s: JSON.stringify(spec) });
  const { createSchedule } = await api.gql(`mutation ($input: CreateScheduleInput!) { createSchedule(input: $input) { id } }`, {
    input: { workflow: 'chaos-tick', cron: o.cron, catchUp: 'ALL', catchUpLimit: 1000, overlap: 'ALLOW' },
  });
  // Fire times after this moment are the schedule's (one within the mutation's few ms would be ambiguous).
  return { workflows: widths.map((w) => `chaos-fan-${w}`), scheduleId: createSchedule.id as string, createdBy: new Date() };
}

/**
 * Waits until the scheduler has dealt with every fire time up to `until`, pauses the schedule, and returns its
 * fire times from its creation to the last one dealt with: each must have started exactly one run.
 */
async function pauseScheduleWhenCaughtUp(
  sql: postgres.Sql,
  gql: (q: string, v?: Record<string, unknown>) => Promise<any>,
  scheduleId: string,
  cron: string,
  created: Date,
  until: number,
  deadline: number,
): Promise<Date[]> {
  // Postgres may be down for a fault still under way: ask again until it answers.
  const ask = async <T>(query: () => Promise<T>): Promise<T> => {
    for (;;) {
      try {
        return await query();
      } catch (err) {
        if (Date.now() > deadline + 300_000) throw err;
        await sleep(500);
      }
    }
  };
  try {
    for (;;) {
      const [s] = await ask(() => sql<{ next_fire_time: Date | null }[]>`select next_fire_time from schedules where id = ${scheduleId}`);
      if (!s?.next_fire_time || s.next_fire_time.getTime() > until || Date.now() > deadline) break;
      await sleep(500);
    }
    await gql(`mutation ($id: ID!) { pauseSchedule(id: $id) { id } }`, { id: scheduleId });
    const [s] = await ask(() => sql<{ last_fire_time: Date }[]>`select last_fire_time from schedules where id = ${scheduleId}`);
    const timing = new Cron(cron, { paused: true, mode: '5-or-6-parts', timezone: 'UTC' });
    const ticks: Date[] = [];
    for (let t = timing.nextRun(created); t && t <= s!.last_fire_time; t = timing.nextRun(t)) ticks.push(t);
    return ticks;
  } finally {
    await sql.end({ timeout: 5 });
  }
}

/** The figures, as a Markdown table. */
export function figuresTable(r: ChaosReport): string {
  const m = r.measured;
  const rows: [string, string | number][] = [
    ['seed', r.options.seed],
    ['chaos phase', `${r.options.durationMs / 1000} s, whole run ${Math.round(r.elapsedMs / 1000)} s`],
    ['faults injected', r.faults.filter((f) => !f.error).length],
    ...faultKinds.map((k): [string, number] => [`  ${k}`, r.kills[k]]),
    ['faults that failed to apply', r.faults.filter((f) => f.error).length],
    [
      'processes that exited on their own',
      `${r.exitedOnTheirOwn.length}${r.exitedOnTheirOwn.length ? ` (${r.exitedOnTheirOwn.map((e) => e.process).join(', ')})` : ''}`,
    ],
    ['runs (scheduled)', `${m.runs.total} (${m.runs.scheduled})`],
    ['runs by status', JSON.stringify(m.runs.byStatus)],
    ['tasks', m.tasks.total],
    ['tasks by status', JSON.stringify(m.tasks.byStatus)],
    ['tasks on a later attempt', m.tasks.attemptsRetried],
    ['executions seen (by source)', `${m.tasks.executions} ${JSON.stringify(m.executionSources)}`],
    ['attempts recorded from several executions, results ignored', `${m.tasks.attemptsExecutedAgain}, ${m.tasks.resultsIgnored}`],
    ['subscribers (graphql-ws / SSE), reconnects', `${m.subscribers.total} (${m.subscribers.graphqlWs} / ${m.subscribers.sse}), ${m.subscribers.reconnects}`],
    ['schedule ticks', m.ticks],
    ['module processes running under a host when it was killed', m.modulesUnderKilledHosts],
    ['**runs lost**', m.counters.runsLost],
    ['**runs stuck**', m.counters.runsStuck],
    ['**tasks with more than one recorded success**', m.counters.tasksSucceededTwice],
    ['**attempts executed after their task finished**', m.counters.attemptsExecutedAfterFinish],
    ['**module processes alive after their host died**', m.counters.orphanedModuleProcesses],
    ['**subscriber end states differing from the database**', m.counters.subscriberStatesDiffering],
    ['**schedule ticks fired ≠ 1**', m.counters.scheduleTicksNotFiredOnce],
  ];
  return ['| figure | value |', '| --- | --- |', ...rows.map(([k, v]) => `| ${k} | ${v} |`)].join('\n');
}

/** The evidence behind each counter that is not zero, for the report. */
export function evidenceText(r: ChaosReport, perCounter = 5): string {
  const lines: string[] = [];
  if (r.evidenceDir) lines.push(`evidence kept in ${r.evidenceDir} (every process's output, the harness's log, report.json, timeline.txt)`);
  for (const exit of r.exitedOnTheirOwn) lines.push(`${exit.process} exited on its own; its last output:\n${exit.output.slice(-600)}`);
  for (const [name, items] of Object.entries(r.measured.evidence) as [string, unknown[]][]) {
    if (!items.length) continue;
    lines.push(`${name} (${items.length}):`);
    for (const item of items.slice(0, perCounter)) lines.push(`  ${JSON.stringify(item)}`);
  }
  if (r.timeline) lines.push(`timeline of the tasks behind it (times UTC):\n${r.timeline}`);
  return lines.join('\n');
}
