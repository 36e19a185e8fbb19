// What the recorder reads, beyond the tasks' rows, to judge reports of attempts: for attempts that have ended, the
// execution whose result ended them; and whether a keyed report (protocol 6) carries the key this database drew for
// its attempt. A report whose key it did not draw comes from an execution let run in a history a restore undid (its
// attempt number handed out again since): it is recorded nowhere, moves nothing, and keeps no task alive; its host is told to stop it.
import { sql } from 'drizzle-orm';
import type { ExecutorEvent } from '../../plugins/protocol';
import { jsonRows } from '../db/arrays';
import { queryRows, type Tx } from '../db/client';
import { isUuid } from '../db/uuid';
import { seqBlock } from './attempts';
import type { RecordedTask } from './recorded-tasks';

/** Keys drawn for no attempt: a malformed key is compared as this, so it matches none and casts as a uuid. */
export const NO_KEY = '00000000-0000-0000-0000-000000000000';

/** The key an event's row carries for the early insert's check (event-insert.ts): null for an unkeyed report. */
export const rowKey = (e: ExecutorEvent): string | null => (e.attemptKey === undefined ? null : isUuid(e.attemptKey) ? e.attemptKey : NO_KEY);

/**
 * The reports among `events` (heartbeats included) that carry a key this database did not draw for their attempt:
 * the current attempt's key is on its task's row as read (`attemptKey`, null before its first claim); an earlier
 * attempt's is read here, for the few reports that name one. Unkeyed reports (hosts below 6) are never stale.
 */
export async function staleReports(tx: Tx, events: ExecutorEvent[], known: Map<string, RecordedTask>): Promise<Set<ExecutorEvent>> {
  const stale = new Set<ExecutorEvent>();
  // One walk. A report under its current attempt's key as drawn (the usual one) is judged at once: the drawn key is a
  // uuid, so the report's is too, and no pattern is run on it.
  const keyed: ExecutorEvent[] = [];
  const older: ExecutorEvent[] = [];
  for (const e of events) {
    if (e.attemptKey === undefined) continue;
    const task = known.get(e.taskId);
    if (!task || (e.attempt === task.attempt && task.attemptKey && e.attemptKey === task.attemptKey)) continue;
    keyed.push(e);
    if (e.attempt < task.attempt) older.push(e);
  }
  if (!keyed.length) return stale;
  const drawn = new Map<string, string>();
  if (older.length) {
    const pairs = [...new Map(older.map((e) => [`${e.taskId}:${e.attempt}`, { task_id: e.taskId, attempt: e.attempt }])).values()];
    const rows = await queryRows<{ task_id: string; attempt: number; key: string }>(
      tx,
      sql`select x.task_id, x.attempt, x.key from task_executions x
          join ${jsonRows(pairs)} as v(task_id uuid, attempt int) on x.task_id = v.task_id and x.attempt = v.attempt`,
    );
    for (const r of rows) drawn.set(`${r.task_id}:${r.attempt}`, r.key);
  }
  for (const e of keyed) {
    const task = known.get(e.taskId)!;
    const key = e.attempt === task.attempt ? task.attemptKey : drawn.get(`${e.taskId}:${e.attempt}`);
    // A later attempt than the task's is refused anyway (reportVerdict); its key is not judged here.
    if (e.attempt <= task.attempt && (key ?? null) !== rowKey(e)) stale.add(e);
  }
  return stale;
}

/**
 * The executions behind stale reports, once each: their hosts are told to stop them (cancel.ts#stopStaleExecutions).
 * A stale result needs no stop: its execution has ended.
 */
export function staleExecutions(stale: Set<ExecutorEvent>): { taskId: string; attempt: number; attemptKey: string }[] {
  const executions = new Map<string, { taskId: string; attempt: number; attemptKey: string }>();
  for (const e of stale)
    if (e.kind !== 'result' && e.attemptKey !== undefined)
      executions.set(`${e.taskId}:${e.attempt}:${e.attemptKey}`, { taskId: e.taskId, attempt: e.attempt, attemptKey: e.attemptKey });
  return [...executions.values()];
}

/**
 * For attempts that have ended, the sequence block of the execution whose result ended them (if one did), and the
 * start that result's row carries (`taskId:attempt:seq`).
 */
export async function resultBlocksOf(tx: Tx, reports: ExecutorEvent[]): Promise<{ blocks: Map<string, number>; startCarried: Set<string> }> {
  const blocks = new Map<string, number>();
  const startCarried = new Set<string>();
  const pairs = [...new Map(reports.map((e) => [`${e.taskId}:${e.attempt}`, { task_id: e.taskId, attempt: e.attempt }])).values()];
  if (!pairs.length) return { blocks, startCarried };
  const rows = await queryRows<{ task_id: string; attempt: number; seq: string | number; started: string | number | null }>(
    tx,
    sql`select e.task_id, e.attempt, e.seq, e.payload -> 'started' ->> 'seq' as started from task_events e
        join ${jsonRows(pairs)} as v(task_id uuid, attempt int) on e.task_id = v.task_id and e.attempt = v.attempt
        where e.kind = 'result'`,
  );
  for (const r of rows) {
    blocks.set(`${r.task_id}:${r.attempt}`, seqBlock(Number(r.seq)));
    if (r.started !== null) startCarried.add(`${r.task_id}:${r.attempt}:${Number(r.started)}`);
  }
  return { blocks, startCarried };
}
