// The stored side of the live feed: every run event is written to `run_events` in the transaction that made the
// change it reports, numbered on from `runs.event_seq` under the run row's lock, so each run's numbers follow its
// commit order with no holes. The feed on the bus is only the fast path; this is what a subscriber resumes from
// and what fills whatever the bus lost. A transaction's events of one run are stored up to EVENTS_PER_ROW to a row
// (`{ events: [...] }`, the row's `seq` the last one's number): a row per event cost a heap tuple and a key entry each,
// ~3 per task of a wide run. Rows of one event with its `seq` inside (written before) are read as they are. A metric
// event's points are stored once, as points, and the row refers to them.
import { and, asc, eq, gt, inArray, type SQL, sql } from 'drizzle-orm';
import type { Db, Tx } from '../db/client';
import { preparedRows } from '../db/prepared';
import { runEvents } from '../db/tables/run-events';
import { type Run, runs, type Task, tasks } from '../db/tables/runs';
import type { FeedEvent, FeedEventBody } from './feed';
import { storedForm, withStoredPoints } from './feed-metric-points';

/** The most events one read returns; a reader behind by more reads again. */
export const RUN_EVENTS_PAGE = 1000;

/** The most events one row holds (a reader resuming inside a row reads it whole). */
export const EVENTS_PER_ROW = 64;

/**
 * Stores `events` in `tx`, numbering each run's on from its `event_seq`, and returns them numbered (their own `seq`
 * set: the caller hands over events built for this transaction), in the order given within each run. Runs are bumped in id order so two transactions never wait on each other's runs in a
 * circle; an event of a run that does not exist is dropped. Publish what this returns only after `tx` commits.
 * `ifEnded`: run-status events (one a run, the last of its events) stored, numbered and returned only if the run's row
 * shows the end they report (its status, and `finished_at` their time) when they are stored: a run's end sent before
 * the transaction knew it would happen (settle.ts endBehind), its event decided with it in SQL.
 */
export async function appendRunEvents(tx: Db | Tx, events: FeedEventBody[], ifEnded?: ReadonlySet<FeedEventBody>): Promise<FeedEvent[]> {
  if (!events.length) return [];
  const byRun = new Map<string, { list: FeedEventBody[]; ended?: RunStatusEvent }>();
  for (const event of events) {
    let entry = byRun.get(event.runId);
    if (!entry) byRun.set(event.runId, (entry = { list: [], ended: undefined })); // one shape for every entry (ended set later or not)
    if (event.kind === 'run-status' && ifEnded?.has(event)) entry.ended = event;
    else entry.list.push(event);
  }
  // Every run's statement is sent at once, in run id order (the order Postgres runs them in): nothing waits for an
  // answer before the last is sent, so a commit sent behind them (commitBehind) follows them all.
  const sent: { list: FeedEventBody[]; ended?: RunStatusEvent; rows: Promise<{ last: string | number; yes?: boolean }[]> }[] = [];
  for (const runId of [...byRun.keys()].sort()) {
    const { list, ended } = byRun.get(runId)!;
    // Up to EVENTS_PER_ROW to a row, keyed by the number of its last event (`last`: its place in the list).
    // A metric event's points are not copied: the row says where they are stored (feed-metric-points.ts).
    const groups: { last: number; event: { events: unknown[] } }[] = [];
    for (let i = 0; i < list.length; i += EVENTS_PER_ROW) {
      const events = list.slice(i, i + EVENTS_PER_ROW).map(storedForm);
      groups.push({ last: i + events.length, event: { events } });
    }
    // A run's end decided in SQL: its event in a row of its own, numbered last, stored only if the run's row shows it.
    if (ended) groups.push({ last: list.length + 1, event: { events: [storedForm(ended)] } });
    // One statement: the run's number bumped (its row locked until commit) and the events stored under it. It answers
    // with the run's new number alone, not a row per event stored (a data-modifying WITH runs to its end unread).
    const rows = preparedRows<{ last: string | number; yes?: boolean }>(
      tx,
      ended
        ? sql`with ended as (select exists (select 1 from runs where id = ${runId} and status = ${ended.status}::text
              and finished_at = ${ended.at}::timestamptz) as yes),
            bumped as (update runs set event_seq = event_seq + ${list.length} + ended.yes::int from ended where id = ${runId}
              returning event_seq, ended.yes),
            stored as (insert into run_events (run_id, seq, event)
              select ${runId}::uuid, bumped.event_seq - ${list.length} - bumped.yes::int + g.last, g.event
              from bumped, ${rowsOf(groups)}
              where g.event is not null and (g.last <= ${list.length} or bumped.yes))
            select event_seq as last, yes from bumped`
        : sql`with bumped as (update runs set event_seq = event_seq + ${list.length} where id = ${runId} returning event_seq),
          stored as (insert into run_events (run_id, seq, event)
            select ${runId}::uuid, bumped.event_seq - ${list.length} + g.last, g.event
            from bumped, ${rowsOf(groups)} where g.event is not null)
          select event_seq as last from bumped`,
    );
    rows.catch(() => undefined); // handled: awaited below, in order
    sent.push({ list, ended, rows });
  }
  const out: FeedEvent[] = [];
  for (const { list, ended, rows: answer } of sent) {
    const rows = await answer;
    if (!rows.length) continue; // no such run
    const kept = rows[0]!.yes && ended ? [...list, ended] : list;
    let seq = Number(rows[0]!.last) - kept.length;
    // Numbered where they are, not copied: an event's body is its transaction's own (built for it, dropped once it has
    // committed), and a copy of each with its number set was ~130 bytes of garbage an event, three a task of a wide run
    // (a spread, `{ ...event, seq }`, also took V8's slow generic path). What was stored above has no number.
    for (const event of kept) {
      (event as FeedEvent).seq = ++seq;
      out.push(event as FeedEvent);
    }
  }
  return out;
}

type RunStatusEvent = Extract<FeedEventBody, { kind: 'run-status' }>;

/**
 * A run's rows to store as `g(last, event)`: each row's events its own jsonb parameter, not one jsonb array of all the
 * rows. Postgres parsed a statement's whole array (S1: ~35 rows of ~15 KB) at twice the CPU of the same rows as
 * parameters of their own, ~5 µs a task (docs/performance.md, "S1: Postgres' time a task (session 35)"). The rows are
 * padded with nulls (left out by the caller's `g.event is not null`) to a power of two, so a statement's text is one of
 * a few, not one a number of rows.
 */
function rowsOf(groups: { last: number; event: { events: unknown[] } }[]): SQL {
  const rows = groups.map((g) => sql`(${g.last}::int, ${JSON.stringify(g.event)}::jsonb)`);
  for (let padded = 2 ** Math.ceil(Math.log2(groups.length)); rows.length < padded; ) rows.push(sql`(${0}::int, ${null}::jsonb)`);
  return sql`(values ${sql.join(rows, sql`, `)}) as g(last, event)`;
}

/**
 * A run's stored events numbered above `after`, oldest first, at most RUN_EVENTS_PAGE of them (fewer only when there
 * are no more: every row holds at least one).
 */
export async function runEventsAfter(db: Db, runId: string, after: number): Promise<FeedEvent[]> {
  const rows = await db
    .select({ seq: runEvents.seq, event: runEvents.event })
    .from(runEvents)
    .where(and(eq(runEvents.runId, runId), gt(runEvents.seq, after)))
    .orderBy(asc(runEvents.seq))
    .limit(RUN_EVENTS_PAGE);
  const out: FeedEvent[] = [];
  for (const { seq, event } of rows) {
    const group = event.events;
    if (!Array.isArray(group)) out.push(event as unknown as FeedEvent);
    else {
      const first = Number(seq) - group.length + 1;
      group.forEach((e: FeedEventBody, i) => {
        if (first + i > after) out.push({ ...e, seq: first + i } as FeedEvent);
      });
    }
    if (out.length >= RUN_EVENTS_PAGE) break;
  }
  return withStoredPoints(db, out.slice(0, RUN_EVENTS_PAGE));
}

/** The number of each run's latest stored event. */
export async function runEventHeads(db: Db, runIds: string[]): Promise<Map<string, number>> {
  if (!runIds.length) return new Map();
  const rows = await db.select({ id: runs.id, seq: runs.eventSeq }).from(runs).where(inArray(runs.id, runIds));
  return new Map(rows.map((r) => [r.id, Number(r.seq)]));
}

/** What a snapshot shows of a run and of each task (the fields of its events, and nothing else read). */
export interface SnapshotState {
  run: { status: Run['status']; message: string | null; eventSeq: number; deadlineAt: Date | null };
  tasks: { id: string; node: string; status: Task['status']; attempt: number; reason: string | null; message: string | null }[];
}

/**
 * A run's state and its tasks as of one event number: the run row is share-locked first, so no event of the run
 * can be stored (that needs its row) until the tasks are read. Null when there is no such run. Only the columns its
 * events show are read (a task row whole is ~6 KB of mapped values: 1,000 subscribers' snapshots mapped ~140 MiB).
 */
export async function runSnapshot(db: Db, runId: string): Promise<SnapshotState | null> {
  return db.transaction(async (tx) => {
    const [run] = await tx
      .select({ status: runs.status, message: runs.message, eventSeq: runs.eventSeq, deadlineAt: runs.deadlineAt })
      .from(runs)
      .where(eq(runs.id, runId))
      .for('share');
    if (!run) return null;
    const { id, node, status, attempt, reason, message } = tasks;
    return { run, tasks: await tx.select({ id, node, status, attempt, reason, message }).from(tasks).where(eq(tasks.runId, runId)).orderBy(asc(tasks.node)) };
  });
}
