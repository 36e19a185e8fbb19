// A recorded batch's signs of life: its tasks' heartbeats and latest progress in one update, and their cache
// reservations renewed, all sent behind (record-events.ts recordPart): nothing in the recording waits for their answers.
import { sql } from 'drizzle-orm';
import type { ExecutorEvent } from '../../plugins/protocol';
import { idAmong, jsonRows } from '../db/arrays';
import { sentBehind, type TxContext, writeBehind } from './context';
import type { RecordedTask } from './recorded-tasks';

type Progress = Extract<ExecutorEvent, { kind: 'progress' }>;

/**
 * One update for the batch's signs of life: the heartbeat of every current attempt that reported (a result ends
 * it instead) and the latest new progress of each task, only while it is queued or running.
 */
export function recordAlive(tc: TxContext, events: ExecutorEvent[], progress: Progress[], known: ReadonlyMap<string, RecordedTask>): void {
  // An attempt whose result is in the batch has ended: its heartbeat is read by nothing any more (a host folds a short
  // attempt's started and result into one bundle, so this skips a statement per chain edge).
  const { ctx, tx } = tc;
  const alive = aliveTasks(events, known);
  if (!alive.size && !progress.length) return;
  const rows = new Map<string, { id: string; alive: boolean; attempt: number | null; fraction: number | null; message: string | null }>();
  for (const id of alive) rows.set(id, { id, alive: true, attempt: null, fraction: null, message: null });
  for (const p of progress) rows.set(p.taskId, { id: p.taskId, alive: alive.has(p.taskId), attempt: p.attempt, fraction: p.fraction, message: p.message });
  const now = ctx.now().toISOString();
  // Nothing waits for its answer: sent behind, the statements after it (a start's update, the feed's append, the COMMIT)
  // follow it in the same round trip, and Postgres runs them in the order sent. Prepared: its text is one of two (one
  // task or several, idAmong), so a progress recorded on its own is not parsed and planned anew each time.
  writeBehind(
    tc,
    sql`
    update tasks as t set
      heartbeat_at = case when v.alive then ${now}::timestamptz else t.heartbeat_at end,
      progress = case when v.attempt = t.attempt then v.fraction else t.progress end,
      progress_message = case when v.attempt = t.attempt then v.message else t.progress_message end
    from ${jsonRows([...rows.values()])} as v(id uuid, alive boolean, attempt int, fraction real, message text)
    where t.id = v.id and ${idAmong('t', [...rows.keys()])} and t.status in ('QUEUED', 'RUNNING')`,
    undefined,
    true,
  );
  // Only tasks that hold a cache reservation have one to renew; nothing waits for it either.
  const reserving = [...alive].filter((id) => known.get(id)?.cacheKey);
  if (reserving.length && ctx.cache) sentBehind(tc, ctx.cache.renew(tx, reserving, ctx.now()));
}

/**
 * The tasks whose current attempt reported in `events` and has not ended in them. Only a current attempt's heartbeat
 * counts, so only a result of the attempt the task is on ends one: the tasks those results name are the ended attempts
 * (no `taskId:attempt` key an event).
 */
export function aliveTasks(events: readonly ExecutorEvent[], known: ReadonlyMap<string, RecordedTask>): Set<string> {
  const ended = new Set<string>();
  const reporting = new Set<string>();
  for (const e of events) if (known.get(e.taskId)?.attempt === e.attempt) (e.kind === 'result' ? ended : reporting).add(e.taskId);
  const alive = new Set<string>();
  for (const id of reporting) if (!ended.has(id)) alive.add(id);
  return alive;
}
