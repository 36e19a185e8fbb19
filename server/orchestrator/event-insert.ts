// The recorder's insert of a small batch's events, sent with the batch's lock and tasks' read rather than after
// their answer: one round trip less per batch that something waits for (every chain edge, every run's end). Which
// reports are kept depends on their tasks as read; for the usual batch (every report of an attempt that is still
// current) it is known beforehand, so that part is stored at once, by a statement that itself stores only the rows of
// current attempts. Once the read has answered, the rows the recorder decides on must be those it stored; the rest
// (late words of an ended attempt, stale reports) are inserted then, as before. Log events are not in the early insert
// (the caps decide their lines): those the caps counted now go behind the rest, with the counts. Rows as event-rows.ts
// makes them.
import { sql } from 'drizzle-orm';
import type { ExecutorEvent } from '../../plugins/protocol';
import { arrayLiteral } from '../db/arrays';
import type { Tx } from '../db/client';
import { queryRows } from '../db/client';
import { sqlOnce } from '../db/prepared';
import { isUuid } from '../db/uuid';
import { secondResults } from './attempts';
import { type TxContext, writeBehind } from './context';
import { eventRows, ignoredResultNote } from './event-rows';
import { type CappedLogs, oneStatement } from './log-cap';

/** The most events a batch may have for its insert to go with its read. */
export const EARLY_MAX_EVENTS = 64;
type Row = ReturnType<typeof eventRows>['rows'][number];
/** A stored row's key, as the insert returns it. */
export type StoredKey = { task_id: string; attempt: number; seq: string | number };
const pairOf = (e: { taskId: string; attempt: number }) => `${e.taskId}:${e.attempt}`;
const rowPair = (r: { task_id: string; attempt: number }) => `${r.task_id}:${r.attempt}`;

/** What the early insert stored, and the attempts (`taskId:attempt`) it stored rows of. */
export interface EarlyInsert {
  stored: StoredKey[];
  /**
   * Attempts current when it ran, every row of which it stored or found stored already: those it stored a row of. (A
   * current attempt whose rows were all stored before, a redelivered batch, is left to insertRest, which stores nothing.)
   */
  current: Set<string>;
  /** The reports it was given, by attempt: what the recorder keeps of a current attempt must be exactly these. */
  kept: Map<string, ExecutorEvent[]>;
}

/**
 * What recordPart keeps of `events` if every report's attempt is current (reportVerdict records every such report; of
 * two executions' results, the second becomes a note), stored now for the attempts that are current when the
 * statement runs. Sent when awaited: issue it after the lock and the read, so it runs after them.
 */
export function insertIfCurrent(tx: Tx, events: ExecutorEvent[]): PromiseLike<EarlyInsert> {
  // A large batch (throughput, not one edge's wait) is inserted once decided, as before: one round trip among its many
  // statements' worth of work, and no rows made twice.
  if (events.length > EARLY_MAX_EVENTS) return Promise.resolve({ stored: [], current: new Set(), kept: new Map() });
  const reports = events.filter((e) => e.kind !== 'heartbeat' && isUuid(e.taskId) && isUuid(e.runId) && Number.isInteger(e.attempt));
  const seconds = secondResults(reports, () => Number.POSITIVE_INFINITY, new Map());
  // Two executions' results of one attempt (rare): which one is second depends on which is stale, known after the read.
  if (seconds.size) return Promise.resolve({ stored: [], current: new Set(), kept: new Map() });
  const kept = [
    ...reports.filter((e) => !seconds.has(e)),
    ...[...seconds].map(([e, first]) => ignoredResultNote(e as Extract<ExecutorEvent, { kind: 'result' }>, first)),
  ];
  const byPair = groupByAttempt(kept, () => true);
  const { rows } = eventRows(kept);
  if (!rows.length) return Promise.resolve({ stored: [], current: new Set(), kept: byPair });
  const ids = arrayLiteral([...new Set(rows.map((r) => r.task_id))]);
  const values = { rows: JSON.stringify(rows), ids };
  let sent: Promise<EarlyInsert> | undefined;
  // Sent on the first `then`, as a query builder is (server/db/prepared.ts), so it follows what was issued before it.
  const send = () => (sent ??= currentInsert(tx, values).then((stored) => ({ stored, current: new Set(stored.map(rowPair)), kept: byPair })));
  // biome-ignore lint/suspicious/noThenProperty: a thenable sent when awaited, like drizzle's QueryPromise
  return { then: (onFulfilled, onRejected) => send().then(onFulfilled, onRejected) };
}

/**
 * Stores the rows recordPart decided on (`rows` of `kept`), given what the early insert did: checks that what it kept of
 * each attempt the early insert found current is what that insert stored (else throws: the batch is recorded again,
 * from a fresh read), and inserts the other attempts' rows. Returns the keys of every row stored by either.
 */
export async function insertRest(tx: Tx, early: EarlyInsert, kept: ExecutorEvent[], rows: Row[]): Promise<StoredKey[]> {
  // A large batch's early insert stored nothing (EARLY_MAX_EVENTS): nothing to check, every row to insert, no key built.
  const decided = early.current.size ? groupByAttempt(kept, (pair) => early.current.has(pair)) : undefined;
  for (const pair of early.current) {
    const a = decided?.get(pair) ?? [];
    const b = early.kept.get(pair) ?? [];
    // A report is the same object in both; a note is made anew for each (rare: a second execution's result).
    if (a.length !== b.length || a.some((e, i) => e !== b[i] && JSON.stringify(e) !== JSON.stringify(b[i])))
      throw new Error(`the events of attempt ${pair} stored with the batch's read are not the ones it keeps: recording it again`);
  }
  const rest = early.current.size ? rows.filter((r) => !early.current.has(rowPair(r))) : rows;
  if (!rest.length) return early.stored;
  const more = await queryRows<StoredKey>(
    tx,
    sql`insert into task_events (task_id, run_id, attempt, seq, kind, at, payload)
      select task_id, run_id, attempt, seq, kind, at, payload from json_populate_recordset(null::task_events, ${JSON.stringify(rest)}::json)
      on conflict do nothing returning task_id, attempt, seq`,
  );
  return [...early.stored, ...more];
}

/**
 * Stores the events recordPart keeps, and returns those that are new. Log events the caps counted now are new
 * (log-cap.ts): stored behind the statements that follow, with the counts' update, nothing waiting for their answer.
 * Every other kept event by one insert (insertRest); only what it stored is new, so a redelivered batch changes nothing.
 */
export async function storeKept(tc: TxContext, early: EarlyInsert, capped: CappedLogs, kept: ExecutorEvent[]): Promise<ExecutorEvent[]> {
  const logs = capped.fresh.size ? kept.filter((e) => capped.fresh.has(e)) : [];
  const logWrites = [...capped.writes, ...(logs.length ? [insertLogs(eventRows(logs).rows)] : [])];
  if (logWrites.length) writeBehind(tc, oneStatement(logWrites));
  const others = logs.length ? kept.filter((e) => !capped.fresh.has(e)) : kept;
  const { rows, carrier } = eventRows(others);
  const inserted = await insertRest(tc.tx, early, others, rows);
  // Every row stored (the usual first delivery): every kept event is new, itself or with the row that carries it.
  if (inserted.length === rows.length) return kept;
  const isNew = new Set(inserted.map((r) => `${r.task_id}:${r.attempt}:${Number(r.seq)}`));
  return kept.filter((e) => {
    if (capped.fresh.has(e)) return true;
    const stored = carrier.get(e) ?? e;
    return isNew.has(`${stored.taskId}:${stored.attempt}:${stored.seq}`);
  });
}

/** Stores log rows known to be new: nothing to return. */
const insertLogs = (rows: Row[]) =>
  sql`insert into task_events (task_id, run_id, attempt, seq, kind, at, payload)
    select task_id, run_id, attempt, seq, kind, at, payload from json_populate_recordset(null::task_events, ${JSON.stringify(rows)}::json)
    on conflict do nothing`;

/** `events` by attempt (`taskId:attempt`), in their order, for the attempts `wanted`. */
function groupByAttempt(events: ExecutorEvent[], wanted: (pair: string) => boolean): Map<string, ExecutorEvent[]> {
  const groups = new Map<string, ExecutorEvent[]>();
  for (const e of events) {
    const pair = pairOf(e);
    if (!wanted(pair)) continue;
    const group = groups.get(pair);
    if (group) group.push(e);
    else groups.set(pair, [e]);
  }
  return groups;
}

/**
 * Stores the rows of the attempts that are current (queued or running on that attempt) and returns the keys it stored.
 * `ids`: the rows' task ids, so the planner finds the tasks by key. A keyed row (protocol 6) is stored only under the
 * key this database drew for its attempt (report-checks.ts); the key itself is stored nowhere.
 */
const currentInsert = sqlOnce<{ rows: string; ids: string }>()<StoredKey>(
  () => sql`
    insert into task_events (task_id, run_id, attempt, seq, kind, at, payload)
    select v.task_id, v.run_id, v.attempt, v.seq, v.kind, v.at, v.payload
    from json_array_elements(${sql.placeholder('rows')}::json) j cross join lateral json_populate_record(null::task_events, j) v
    where exists (
      select 1 from tasks t
      where t.id = v.task_id and t.attempt = v.attempt and t.status in ('QUEUED', 'RUNNING') and t.id = any(${sql.placeholder('ids')}::uuid[]))
      and (j ->> 'attempt_key' is null or exists (
        select 1 from task_executions x where x.task_id = v.task_id and x.attempt = v.attempt and x.key = (j ->> 'attempt_key')::uuid))
    on conflict do nothing returning task_id, attempt, seq`,
);
