// What the suite measures once the system has settled, from the database, the executions the modules reported
// (their log file, their stdout lines recorded by Atelier, their processes seen in /proc) and the subscribers.

import { readFile } from 'node:fs/promises';
import type postgres from 'postgres';
import { SEQ_BLOCK } from '../../plugins/protocol';
import type { ModuleProcess, Orphan } from './procs';
import type { RunWatch } from './subscribers';

export interface Execution {
  task: string;
  attempt: number;
  time: number;
  pid?: number;
  /** Which sources saw it: `file`, `stdout` (Atelier's log events), `proc`. */
  sources: string[];
}

export interface Counters {
  runsLost: number;
  runsStuck: number;
  tasksSucceededTwice: number;
  attemptsExecutedAfterFinish: number;
  orphanedModuleProcesses: number;
  subscriberStatesDiffering: number;
  scheduleTicksNotFiredOnce: number;
}

export interface Evidence {
  runsLost: string[];
  runsStuck: unknown[];
  tasksSucceededTwice: unknown[];
  attemptsExecutedAfterFinish: unknown[];
  orphanedModuleProcesses: Orphan[];
  subscriberStatesDiffering: unknown[];
  scheduleTicksNotFiredOnce: unknown[];
}

export interface Measured {
  counters: Counters;
  evidence: Evidence;
  runs: { total: number; byStatus: Record<string, number>; scheduled: number };
  tasks: {
    total: number;
    byStatus: Record<string, number>;
    executions: number;
    attemptsRetried: number;
    /** Attempts whose recorded events came from more than one execution (sequence blocks), and results kept only as
     * a note that they were ignored (another execution's result had decided the attempt). Not faults: what they cost. */
    attemptsExecutedAgain: number;
    resultsIgnored: number;
  };
  executionSources: Record<string, number>;
  subscribers: { total: number; graphqlWs: number; sse: number; reconnects: number; completed: number };
  /** Module processes running under a host when it was SIGKILLed: the candidates for orphans. */
  modulesUnderKilledHosts: number;
  ticks: number;
}

/** Every execution the modules reported, merged by (task, attempt, start time) across the three sources. */
export async function executions(sql: postgres.Sql, logFile: string, seen: ModuleProcess[]): Promise<Execution[]> {
  const all = new Map<string, Execution>();
  const add = (e: { task: string; attempt: number; time: number; pid?: number }, source: string) => {
    const key = `${e.task}:${e.attempt}:${e.time}`;
    const known = all.get(key) ?? { task: e.task, attempt: e.attempt, time: e.time, pid: e.pid, sources: [] };
    if (!known.sources.includes(source)) known.sources.push(source);
    all.set(key, known);
  };
  const text = await readFile(logFile, 'utf8').catch(() => '');
  for (const line of text.split('\n')) if (line.trim()) add(JSON.parse(line), 'file');
  const logged = await sql<{ line: string }[]>`
    select l.line from task_events e, jsonb_array_elements_text(e.payload->'lines') as l(line)
    where e.kind = 'log' and l.line like 'chaos-exec %'`;
  for (const { line } of logged) add(JSON.parse(line.slice('chaos-exec '.length)), 'stdout');
  for (const p of seen) add(p, 'proc');
  return [...all.values()];
}

const countBy = <T>(rows: T[], key: (r: T) => string) =>
  rows.reduce<Record<string, number>>((acc, r) => {
    acc[key(r)] = (acc[key(r)] ?? 0) + 1;
    return acc;
  }, {});

export interface MeasureInput {
  sql: postgres.Sql;
  /** Runs the harness was told were started (idempotency key → run id). */
  acknowledged: Map<string, string>;
  watches: RunWatch[];
  executions: Execution[];
  orphans: Orphan[];
  modulesUnderKilledHosts: number;
  schedule: { id: string; ticks: Date[] };
}

export async function measure(input: MeasureInput): Promise<Measured> {
  const { sql, acknowledged, watches, schedule } = input;
  const runs = await sql<{ id: string; status: string; trigger: string; idempotency_key: string | null }[]>`
    select id, status, trigger, idempotency_key from runs`;
  const tasks = await sql<{ id: string; run_id: string; node: string; status: string; attempt: number; finished_at: Date | null }[]>`
    select id, run_id, node, status, attempt, finished_at from tasks`;
  const runById = new Map(runs.map((r) => [r.id, r]));
  const taskById = new Map(tasks.map((t) => [t.id, t]));

  const runsLost = [...acknowledged].filter(([, id]) => !runById.has(id)).map(([key, id]) => `${key} → ${id}`);
  const stuck = runs.filter((r) => r.status === 'QUEUED' || r.status === 'RUNNING');
  const runsStuck = stuck.map((r) => ({
    run: r.id,
    status: r.status,
    open: tasks
      .filter((t) => t.run_id === r.id && !['SUCCEEDED', 'FAILED', 'CANCELLED', 'SKIPPED'].includes(t.status))
      .map((t) => `${t.node}:${t.status}#${t.attempt}`),
  }));

  const twice = await sql<{ task_id: string; results: unknown }[]>`
    select task_id, jsonb_agg(jsonb_build_object('attempt', attempt, 'seq', seq, 'host', payload->>'host', 'at', at) order by at) as results
    from task_events where kind = 'result' and payload->'outcome'->>'state' = 'SUCCEEDED'
    group by task_id having count(*) > 1`;

  const late = input.executions
    .filter((e) => {
      const t = taskById.get(e.task);
      return t?.finished_at && ['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(t.status) && e.time > t.finished_at.getTime();
    })
    .map((e) => {
      const t = taskById.get(e.task)!;
      return {
        task: e.task,
        node: t.node,
        attempt: e.attempt,
        finalAttempt: t.attempt,
        startedAt: new Date(e.time).toISOString(),
        taskFinishedAt: t.finished_at!.toISOString(),
        sources: e.sources,
      };
    });

  const differing: unknown[] = [];
  for (const w of watches) {
    const run = runById.get(w.runId);
    const dbTasks = tasks.filter((t) => t.run_id === w.runId);
    const diffs: string[] = [];
    if (w.runStatus !== run?.status) diffs.push(`run: saw ${w.runStatus ?? 'nothing'}, database ${run?.status}`);
    for (const t of dbTasks) {
      const s = w.tasks.get(t.node);
      if (!s || s.status !== t.status || s.attempt !== t.attempt)
        diffs.push(`${t.node}: saw ${s ? `${s.status}#${s.attempt}` : 'nothing'}, database ${t.status}#${t.attempt}`);
    }
    if (diffs.length)
      differing.push({
        run: w.runId,
        transport: w.transport,
        reconnects: w.reconnects,
        done: w.done,
        lastError: w.lastError,
        diffs: diffs.slice(0, 8),
        differing: diffs.length,
      });
  }

  const fires = await sql<{ fire_time: Date; outcome: string; message: string | null }[]>`
    select fire_time, outcome, message from schedule_fires where schedule_id = ${schedule.id}`;
  const fireAt = new Map(fires.map((f) => [f.fire_time.getTime(), f]));
  // A fire time's run has the idempotency key the scheduler derives from it (server/scheduler/scheduler.ts).
  const runsOfKey = countBy(
    runs.filter((r) => r.idempotency_key),
    (r) => r.idempotency_key!,
  );
  const badTicks = schedule.ticks
    .map((t) => ({ tick: t.toISOString(), fire: fireAt.get(t.getTime()), runs: runsOfKey[`schedule:${schedule.id}:${t.toISOString()}`] ?? 0 }))
    .filter(({ runs }) => runs !== 1)
    .map(({ tick, fire, runs }) => ({ tick, runs, outcome: fire?.outcome ?? 'never claimed', message: fire?.message }));

  const executionsCount = input.executions.length;
  const [again] = await sql<{ attempts: number; ignored: number }[]>`
    select
      (select count(*)::int from (select 1 from task_events group by task_id, attempt having count(distinct floor(seq / ${SEQ_BLOCK})) > 1) a) as attempts,
      (select count(*)::int from task_events where kind = 'log' and payload->'lines'->>0 like '[atelier] ignored the result%') as ignored`;
  return {
    counters: {
      runsLost: runsLost.length,
      runsStuck: stuck.length,
      tasksSucceededTwice: twice.length,
      attemptsExecutedAfterFinish: late.length,
      orphanedModuleProcesses: input.orphans.length,
      subscriberStatesDiffering: differing.length,
      scheduleTicksNotFiredOnce: badTicks.length,
    },
    evidence: {
      runsLost,
      runsStuck,
      tasksSucceededTwice: twice.map((t) => ({ task: t.task_id, node: taskById.get(t.task_id)?.node, results: t.results })),
      attemptsExecutedAfterFinish: late,
      orphanedModuleProcesses: input.orphans,
      subscriberStatesDiffering: differing,
      scheduleTicksNotFiredOnce: badTicks,
    },
    runs: { total: runs.length, byStatus: countBy(runs, (r) => r.status), scheduled: runs.filter((r) => r.trigger === 'SCHEDULE').length },
    tasks: {
      total: tasks.length,
      byStatus: countBy(tasks, (t) => t.status),
      executions: executionsCount,
      attemptsRetried: tasks.filter((t) => t.attempt > 1).length,
      attemptsExecutedAgain: again!.attempts,
      resultsIgnored: again!.ignored,
    },
    executionSources: countBy(
      input.executions.flatMap((e) => e.sources),
      (s) => s,
    ),
    subscribers: {
      total: watches.length,
      graphqlWs: watches.filter((w) => w.transport === 'graphql-ws').length,
      sse: watches.filter((w) => w.transport === 'sse').length,
      reconnects: watches.reduce((a, w) => a + w.reconnects, 0),
      completed: watches.filter((w) => w.done).length,
    },
    ticks: schedule.ticks.length,
    modulesUnderKilledHosts: input.modulesUnderKilledHosts,
  };
}
