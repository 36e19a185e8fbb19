// The recorder's walks over a batch (record-events.ts recordPart): each event classified once, where ~20 filters and maps
// each went over the whole batch (a throughput batch is ~2,000 events), and the `taskId:attempt` keys that only reports
// of ended attempts need built only for those. Pure: what the recording decides stays in record-events.ts and attempts.ts.
import type { ExecutorEvent } from '../../plugins/protocol';
import { isUuid } from '../db/uuid';
import { seqBlock } from './attempts';
import type { RecordedTask } from './recorded-tasks';

type Result = Extract<ExecutorEvent, { kind: 'result' }>;
type Progress = Extract<ExecutorEvent, { kind: 'progress' }>;

/** What recordPart needs of a batch before its transaction: its tasks' ids that can name a row, its runs, and whether it ends an attempt or logs. */
export interface BatchScan {
  taskIds: string[];
  runIds: Set<string>;
  ending: boolean;
  logs: boolean;
}

export function scanBatch(given: readonly ExecutorEvent[]): BatchScan {
  const ids = new Set<string>();
  const runIds = new Set<string>();
  let ending = false;
  let logs = false;
  for (const e of given) {
    ids.add(e.taskId);
    runIds.add(e.runId);
    if (e.kind === 'result') ending = true;
    else if (e.kind === 'log') logs = true;
  }
  return { taskIds: [...ids].filter((id) => isUuid(id)), runIds, ending, logs };
}

/** What one walk over a batch's events says, given its tasks as read (stale reports already left out). */
export interface ReportWalk {
  /** Every event but heartbeats, of a task that exists, in the batch's order. */
  reports: ExecutorEvent[];
  /** Of those, the reports of an attempt that is not current: only they need the ended attempts' read (resultBlocksOf). */
  notCurrent: ExecutorEvent[];
  /**
   * Whether every event of a task that exists (heartbeats too) is of its current attempt (queued or running on it), as
   * every event of a throughput batch is: then every report is recorded (reportVerdict), none is an ended attempt's late
   * word, and none is a zombie's; of two executions' results the second is still refused (secondCurrentResults).
   */
  allCurrent: boolean;
}

export function walkReports(events: readonly ExecutorEvent[], known: ReadonlyMap<string, RecordedTask>): ReportWalk {
  const reports: ExecutorEvent[] = [];
  const notCurrent: ExecutorEvent[] = [];
  let allCurrent = true;
  for (const e of events) {
    const task = known.get(e.taskId);
    if (!task) continue;
    const current = task.attempt === e.attempt && (task.status === 'QUEUED' || task.status === 'RUNNING');
    if (!current) allCurrent = false;
    // A heartbeat is no report (one of an attempt that is not current still makes a zombie to stop).
    if (e.kind === 'heartbeat') continue;
    reports.push(e);
    if (!current) notCurrent.push(e);
  }
  return { reports, notCurrent, allCurrent };
}

/**
 * secondResults (attempts.ts) for reports that are all of their task's current attempt, with nothing of it recorded to
 * have ended it: each task's reports are one attempt's, so the task's id is the attempt's key (no `taskId:attempt`
 * string a result). The first result of each task decides; another execution's result after it is second.
 */
export function secondCurrentResults(reports: readonly ExecutorEvent[]): Map<ExecutorEvent, number> {
  const seconds = new Map<ExecutorEvent, number>();
  let firsts: Map<string, number> | undefined;
  for (const e of reports) {
    if (e.kind !== 'result') continue;
    firsts ??= new Map();
    const block = seqBlock(e.seq);
    const first = firsts.get(e.taskId);
    if (first === undefined) firsts.set(e.taskId, block);
    else if (first !== block) seconds.set(e, first);
  }
  return seconds;
}

/** What is new of a batch (storeKept's answer), sorted in one walk. */
export interface FreshWalk {
  /** Logs, progress and metrics: what recordNotes stores the points and live events of. */
  notes: ExecutorEvent[];
  /** Starts and results, by run, in the batch's order: what applyTransitions applies. */
  moves: Map<string, ExecutorEvent[]>;
  hasResult: boolean;
  /** Each task's latest new progress (the highest sequence number; of equal ones the first) that no new success of its attempt takes. */
  alive: Progress[];
  /** By task, the latest new progress of an attempt that succeeds in this batch: its success's update writes it (one update, not two). */
  withSuccess: Map<string, Progress>;
}

export function walkFresh(fresh: readonly ExecutorEvent[]): FreshWalk {
  const notes: ExecutorEvent[] = [];
  const moves = new Map<string, ExecutorEvent[]>();
  const latest = new Map<string, Progress>();
  const successes: Result[] = [];
  let hasResult = false;
  for (const e of fresh) {
    if (e.kind === 'started' || e.kind === 'result') {
      const run = moves.get(e.runId);
      if (run) run.push(e);
      else moves.set(e.runId, [e]);
      if (e.kind === 'result') {
        hasResult = true;
        if (e.outcome.state === 'SUCCEEDED') successes.push(e);
      }
      continue;
    }
    notes.push(e);
    if (e.kind !== 'progress') continue;
    const prev = latest.get(e.taskId);
    if (!prev || prev.seq < e.seq) latest.set(e.taskId, e);
  }
  const withSuccess = new Map<string, Progress>();
  for (const s of successes) {
    const p = latest.get(s.taskId);
    if (p && p.attempt === s.attempt) withSuccess.set(s.taskId, p);
  }
  const alive: Progress[] = [];
  if (latest.size) for (const p of latest.values()) if (!withSuccess.has(p.taskId)) alive.push(p);
  return { notes, moves, hasResult, alive, withSuccess };
}
