// The recorder's JavaScript over a throughput batch (session 34), without Postgres: what recordPart and the functions it
// calls decide over a batch of no-op tasks' events (each task's start and result, every attempt current, keyed as
// protocol 6 hosts key them), as session 33 left it (~20 filters and maps, `taskId:attempt` keys, the event rows built
// by a rest pattern and a spread), against the one walk (server/orchestrator/batch-walk.ts) and the code around it as it
// is now. Statements and their answers are left out (the read's rows are given, the insert stores every row). CPU µs a
// task, median of rounds run in turns. `npx tsx bench/peers/recorder-walk.ts [tasks a batch] [rounds]`.
import { randomUUID } from 'node:crypto';
import type { ExecutorEvent } from '../../plugins/protocol';
import { isUuid } from '../../server/db/uuid';
import { isCurrent, reportVerdict, secondResults, seqBlock } from '../../server/orchestrator/attempts';
import { scanBatch, secondCurrentResults, walkFresh, walkReports } from '../../server/orchestrator/batch-walk';
import { eventRows, latestPerTask } from '../../server/orchestrator/event-rows';
import { aliveTasks } from '../../server/orchestrator/record-alive';
import type { RecordedTask } from '../../server/orchestrator/recorded-tasks';
import { rowKey } from '../../server/orchestrator/report-checks';
import { runWhenMain } from '../lib';

type Result = Extract<ExecutorEvent, { kind: 'result' }>;
type Progress = Extract<ExecutorEvent, { kind: 'progress' }>;
type Started = Extract<ExecutorEvent, { kind: 'started' }>;
type Known = Map<string, RecordedTask>;

/** A batch of `tasks` no-op tasks of one run as the host sends them, and their rows as the recorder reads them. */
function batch(tasks: number): { events: ExecutorEvent[]; rows: RecordedTask[] } {
  const runId = randomUUID();
  const at = new Date().toISOString();
  const events: ExecutorEvent[] = [];
  const rows: RecordedTask[] = [];
  for (let i = 0; i < tasks; i++) {
    // Strings of their own, as JSON.parse makes them for each message and the driver for each row.
    const id = randomUUID();
    const key = randomUUID();
    const base = () => ({ taskId: `${id}`, runId: `${runId}`, attempt: 1, attemptKey: `${key}`, host: 'host-1', at });
    events.push({ ...base(), kind: 'started', seq: 1, handle: null });
    events.push({ ...base(), kind: 'result', seq: 2, durationMs: 3, outcome: { state: 'SUCCEEDED', outputs: {} } });
    rows.push({
      id: `${id}`,
      runId: `${runId}`,
      node: `t${i}`,
      status: i % 2 ? 'QUEUED' : 'RUNNING',
      attempt: 1,
      cacheKey: null,
      hotCluster: null,
      mapParent: null,
      dataAccess: null,
      moduleVersionId: null,
      attemptKey: `${key}`,
    } as RecordedTask);
  }
  return { events, rows };
}

/** Session 33's passes (record-events.ts, report-checks.ts, event-insert.ts, event-rows.ts, record-alive.ts at main 3e956d4). */
function before(given: ExecutorEvent[], taskRows: RecordedTask[]): number {
  const moves = (e: ExecutorEvent) => e.kind === 'started' || e.kind === 'result';
  const moving = [...new Set(given.filter(moves).map((e) => e.runId))];
  const part = given.filter((e) => !moves(e) || e.runId === moving[0]);
  const taskIds = [...new Set(part.map((e) => e.taskId))].filter((id) => isUuid(id));
  const logs = part.some((e) => e.kind === 'log') ? part.filter((e) => e.kind === 'log') : [];
  const writing = [...new Set(part.map((e) => e.runId))].filter((id) => isUuid(id));
  const ending = part.some((e) => e.kind === 'result');
  const first = part.find((e) => e.taskId === taskIds[0])!.runId;
  const early = part.filter((e) => e.kind !== 'log');
  const events = part;
  const known: Known = new Map(taskRows.map((t) => [t.id, t]));
  // staleReports
  const keyed = events.filter((e) => e.attemptKey !== undefined && known.has(e.taskId));
  const older = keyed.filter((e) => e.attempt < known.get(e.taskId)!.attempt);
  const stale = new Set<ExecutorEvent>();
  for (const e of keyed) {
    const task = known.get(e.taskId)!;
    if (e.attempt <= task.attempt && (task.attemptKey ?? null) !== rowKey(e)) stale.add(e);
  }
  const reports = events.filter((e) => e.kind !== 'heartbeat' && known.has(e.taskId));
  const notCurrent = reports.filter((e) => !isCurrent(known.get(e.taskId)!, e.attempt));
  const resultBlocks = new Map<string, number>();
  const startCarried = new Set<string>();
  const refused = new Set<ExecutorEvent>();
  for (const e of reports)
    if (reportVerdict(known.get(e.taskId)!, e, resultBlocks.size ? resultBlocks.get(`${e.taskId}:${e.attempt}`) : undefined) === 'refuse') refused.add(e);
  const seconds = secondResults(reports, (id) => known.get(id)!.attempt, resultBlocks);
  for (const e of seconds.keys()) refused.add(e);
  const ended = (e: ExecutorEvent) =>
    (e.kind === 'progress' ? resultBlocks.has(`${e.taskId}:${e.attempt}`) : e.kind === 'started' && startCarried.has(`${e.taskId}:${e.attempt}:${e.seq}`)) &&
    !isCurrent(known.get(e.taskId)!, e.attempt);
  const kept = [...reports.filter((e) => !refused.has(e) && !ended(e))];
  // storeKept and insertRest, their early insert having stored nothing (a batch above EARLY_MAX_EVENTS)
  const capped = new Set<ExecutorEvent>();
  const logRows = kept.filter((e) => capped.has(e));
  const { rows } = eventRowsBefore(kept);
  const current = new Set<string>();
  const decided = new Map<string, ExecutorEvent[]>();
  for (const e of kept) if (current.has(`${e.taskId}:${e.attempt}`)) decided.set(`${e.taskId}:${e.attempt}`, [e]);
  const rest = rows.filter((r) => !current.has(`${r.task_id}:${r.attempt}`));
  const fresh = kept;
  const notes = fresh.filter((e) => e.kind !== 'started' && e.kind !== 'result');
  const progress = latestPerTask(fresh.filter((e): e is Progress => e.kind === 'progress'));
  const succeeding = new Set(fresh.filter((e) => e.kind === 'result' && e.outcome.state === 'SUCCEEDED').map((e) => `${e.taskId}:${e.attempt}`));
  const withSuccess = new Map(progress.filter((p) => succeeding.has(`${p.taskId}:${p.attempt}`)).map((p) => [p.taskId, p]));
  const aliveProgress = progress.filter((p) => !withSuccess.has(p.taskId));
  // recordAlive
  const endedPairs = new Set(events.filter((e) => e.kind === 'result').map((e) => `${e.taskId}:${e.attempt}`));
  const alive = new Set(
    events.filter((e) => e.kind !== 'result' && known.get(e.taskId)?.attempt === e.attempt && !endedPairs.has(`${e.taskId}:${e.attempt}`)).map((e) => e.taskId),
  );
  const byRun = new Map<string, ExecutorEvent[]>();
  for (const e of fresh) {
    if (e.kind !== 'started' && e.kind !== 'result') continue;
    if (!byRun.has(e.runId)) byRun.set(e.runId, []);
    byRun.get(e.runId)!.push(e);
  }
  const hasResult = fresh.some((e) => e.kind === 'result');
  const zombies = new Map<string, { taskId: string; attempt: number }>();
  for (const e of events) {
    const task = known.get(e.taskId);
    if (!task || e.kind === 'result') continue;
    if ((task.status === 'CANCELLED' && e.attempt === task.attempt) || e.attempt < task.attempt || refused.has(e))
      zombies.set(`${e.taskId}:${e.attempt}`, { taskId: e.taskId, attempt: e.attempt });
  }
  const accepted = events.filter((e) => !refused.has(e));
  const onHot = accepted.filter((e) => (e.kind === 'started' || e.kind === 'result') && known.get(e.taskId)?.hotCluster);
  const json = JSON.stringify(rest);
  return (
    logs.length +
    writing.length +
    (ending ? 1 : 0) +
    first.length +
    early.length +
    older.length +
    stale.size +
    notCurrent.length +
    logRows.length +
    decided.size +
    notes.length +
    aliveProgress.length +
    alive.size +
    byRun.size +
    (hasResult ? 1 : 0) +
    zombies.size +
    onHot.length +
    json.length
  );
}

/** The same decisions now. */
function after(given: ExecutorEvent[], taskRows: RecordedTask[]): number {
  const runs = new Set<string>();
  for (const e of given) if (e.kind === 'started' || e.kind === 'result') runs.add(e.runId);
  const { taskIds, runIds, ending, logs } = scanBatch(given);
  const writing = [...runIds].filter((id) => isUuid(id));
  const first = given.find((e) => e.taskId === taskIds[0])!.runId;
  const early = logs ? given.filter((e) => e.kind !== 'log') : given;
  const events = given;
  const known: Known = new Map();
  let hot = false;
  for (const t of taskRows) {
    known.set(t.id, t);
    if (t.hotCluster) hot = true;
  }
  // staleReports
  const keyed: ExecutorEvent[] = [];
  for (const e of events) {
    if (e.attemptKey === undefined) continue;
    const task = known.get(e.taskId);
    if (!task || (e.attempt === task.attempt && task.attemptKey && e.attemptKey === task.attemptKey)) continue;
    keyed.push(e);
  }
  const { reports, notCurrent, allCurrent } = walkReports(events, known);
  const refused = new Set<ExecutorEvent>();
  for (const e of notCurrent) if (reportVerdict(known.get(e.taskId)!, e, undefined) === 'refuse') refused.add(e);
  const seconds = allCurrent ? secondCurrentResults(reports) : secondResults(reports, (id) => known.get(id)!.attempt, new Map());
  for (const e of seconds.keys()) refused.add(e);
  const kept = allCurrent && !refused.size ? reports : reports.filter((e) => !refused.has(e));
  const { rows } = eventRows(kept);
  const fresh = kept;
  const { notes, moves, hasResult, alive: aliveProgress, withSuccess } = walkFresh(fresh);
  const alive = aliveTasks(events, known);
  const accepted = refused.size ? events.filter((e) => !refused.has(e)) : events;
  const onHot = hot ? accepted.filter((e) => known.get(e.taskId)?.hotCluster) : [];
  const json = JSON.stringify(rows);
  return (
    runs.size +
    writing.length +
    (ending ? 1 : 0) +
    first.length +
    early.length +
    keyed.length +
    notes.length +
    moves.size +
    (hasResult ? 1 : 0) +
    aliveProgress.length +
    withSuccess.size +
    alive.size +
    onHot.length +
    json.length
  );
}

/** event-rows.ts's eventRows at main 3e956d4: execution keys for every event, rows by a rest pattern and a spread. */
function eventRowsBefore(events: ExecutorEvent[]) {
  const row = (e: ExecutorEvent) => {
    const { taskId, runId, attempt, seq, kind, at, host, attemptKey: _key, ...payload } = e;
    const kept = e.kind === 'metric' ? { firstPoint: e.firstPoint, count: e.points?.length ?? 0 } : payload;
    const stored: Record<string, unknown> = { host, ...kept };
    return { task_id: taskId, run_id: runId, attempt, seq, kind, at, payload: stored, attempt_key: rowKey(e) };
  };
  const execution = (e: ExecutorEvent) => `${e.taskId}:${e.attempt}:${seqBlock(e.seq)}`;
  const results = new Map<string, Result>();
  for (const e of events) if (e.kind === 'result' && !results.has(execution(e))) results.set(execution(e), e);
  const carrier = new Map<ExecutorEvent, Result>();
  const starts = new Map<Result, Started>();
  for (const e of events) {
    if (e.kind !== 'started') continue;
    const result = results.get(execution(e));
    if (!result || result.seq < e.seq) continue;
    carrier.set(e, result);
    starts.set(result, e);
  }
  const rows = events
    .filter((e) => !carrier.has(e))
    .map((e) => {
      const r = row(e);
      const start = e.kind === 'result' ? starts.get(e) : undefined;
      if (start) r.payload.started = { seq: start.seq, at: start.at };
      return r;
    });
  return { rows, carrier };
}

export async function recorderWalkBench(tasks: number, rounds: number) {
  const { events, rows } = batch(tasks);
  const ways: [string, (e: ExecutorEvent[], r: RecordedTask[]) => number][] = [
    ['session 33 passes', before],
    ['one walk', after],
  ];
  const times = new Map<string, number[]>(ways.map(([k]) => [k, []]));
  for (let r = 0; r < rounds; r++)
    for (const [name, way] of r % 2 ? [...ways].reverse() : ways) {
      const t0 = process.cpuUsage();
      way(events, rows);
      const t = process.cpuUsage(t0);
      if (r >= 3) times.get(name)!.push((t.user + t.system) / tasks); // the first rounds warm the JIT up
    }
  const median = (x: number[]) => x.sort((p, q) => p - q)[Math.floor(x.length / 2)]!;
  console.log(
    `${tasks} tasks a batch (${events.length} events), CPU µs a task (median of ${rounds - 3} rounds in turns): ${[...times].map(([k, v]) => `${k} ${median(v).toFixed(2)}`).join(', ')}`,
  );
  return [];
}

runWhenMain(import.meta.url, () => recorderWalkBench(Number(process.argv[2] ?? 1000), Number(process.argv[3] ?? 41)));
