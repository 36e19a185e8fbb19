// The control plane's own caps on an attempt's log. Hosts cap the bytes they publish (ATELIER_MAX_LOG_BYTES,
// plugins/host/reporter.ts), but a host that ignores it (a bug, or a hostile one with valid credentials) could otherwise
// fill the database with log lines: the recorder keeps an attempt's first bytes and lines up to the caps (bytes,
// ATELIER_MAX_LOG_BYTES; lines, ATELIER_MAX_LOG_LINES, which bounds the rows a host of one tiny line per event makes) and
// drops the rest, counting them in task_log_bytes, and says so as a host does: a line when it cuts the log (sent live
// too), and one with how many bytes it dropped, rewritten as that grows. Log events of another shape than a host's are
// not stored. Each event is counted once, by its sequence number (task_log_bytes.counted): a batch delivered again after
// it committed (a crash before its ack) counts nothing again and stores nothing it dropped before. Done in the
// recording's transaction, so a batch that fails counts nothing.
import { type SQL, sql } from 'drizzle-orm';
import { type ExecutorEvent, SEQ_BLOCK } from '../../plugins/protocol';
import { jsonRows } from '../db/arrays';
import { queryRows } from '../db/client';
import { isUuid } from '../db/uuid';
import { seqBlock } from './attempts';
import type { TxContext } from './context';
import { droppedBefore, type Log, lineBytes, seqSet, trimmedOf, wellFormed } from './log-lines';

/** The hosts' default cap (plugins/host/index.ts), the control plane's too when ATELIER_MAX_LOG_BYTES is unset. */
export const DEFAULT_MAX_LOG_BYTES = 10 * 1024 * 1024;
/** The control plane's cap on an attempt's log lines when ATELIER_MAX_LOG_LINES is unset: 10 MiB of ~50-byte lines. */
export const DEFAULT_MAX_LOG_LINES = 200_000;
/** Room past the cap for the lines an honest host adds of its own (its truncation notices, its warnings), which it does not count. */
export const LOG_CAP_SLACK_BYTES = 64 * 1024;
/** As LOG_CAP_SLACK_BYTES, in lines. */
export const LOG_CAP_SLACK_LINES = 1000;

export interface LogCaps {
  maxBytes: number;
  maxLines: number;
}

const pairOf = (e: { taskId: string; attempt: number }) => `${e.taskId}:${e.attempt}`;
type Counts = { task_id: string; attempt: number; stored: string | number; lines: string | number; dropped: string | number; dropped_lines: string | number };
type Row = Counts & { notice_seq: string | number | null; known: (string | number)[] | null };

/**
 * `given` with the log lines past each attempt's caps (`maxBytes` plus LOG_CAP_SLACK_BYTES, `maxLines` plus
 * LOG_CAP_SLACK_LINES) dropped: a log event cut short, or left out once nothing of it fits; log events already counted
 * (a batch delivered again) left out too, since what of them was kept is stored already; and, once an attempt's log is
 * cut, a line saying so. Counts what it keeps and drops in task_log_bytes. One statement when the batch has log events
 * (reading the counts, their rows locked), sent at once: the recorder sends it with the runs' lock and the tasks' read,
 * in one round trip. The counts' update, and the line with the count of what was dropped once some was, it returns for
 * the recorder to send with the log rows, as one statement behind the others. Leaves `given` as it is.
 */
export async function capLogs(tc: TxContext, given: ExecutorEvent[], caps: LogCaps): Promise<CappedLogs> {
  const events = given.some((e) => e.kind === 'log' && !wellFormed(e)) ? given.filter((e) => e.kind !== 'log' || wellFormed(e)) : given;
  const counted = (e: ExecutorEvent) => isUuid(e.taskId) && Number.isInteger(e.attempt) && Number.isSafeInteger(e.seq) && e.seq >= 0;
  const logs = events.filter((e): e is Log => e.kind === 'log' && counted(e));
  if (!logs.length) return { events, fresh: new Set(), writes: [] };
  const byAttempt = new Map<string, { task_id: string; attempt: number; logs: Log[]; seqs: number[] }>();
  for (const e of logs) {
    const entry = byAttempt.get(pairOf(e)) ?? { task_id: e.taskId, attempt: e.attempt, logs: [], seqs: [] };
    entry.logs.push(e);
    byAttempt.set(pairOf(e), entry);
  }
  // Every event of those attempts is marked counted, whatever its kind: a host numbers all of them in one sequence, so
  // the set stays a few ranges.
  for (const e of events) if (counted(e)) byAttempt.get(pairOf(e))?.seqs.push(e.seq);
  // In key order, so two batches of the same attempts lock their rows in the same order. Only tasks that exist: a host
  // naming made-up ones gets no row (the recorder drops their events anyway). The counts are read under the rows' lock,
  // as the latest commit left them: a batch delivered twice at once is counted by whichever takes the lock first.
  const rows = await queryRows<Row>(
    tc.tx,
    sql`with v as (select * from ${jsonRows([...byAttempt.values()].map(({ task_id, attempt, logs }) => ({ task_id, attempt, seqs: logs.map((e) => e.seq) })))}
        as v(task_id uuid, attempt int, seqs int8[]))
      insert into task_log_bytes as b (task_id, attempt, stored)
      select v.task_id, v.attempt, 0 from v
      where exists (select 1 from tasks t where t.id = v.task_id)
      order by v.task_id, v.attempt
      on conflict (task_id, attempt) do update set stored = b.stored
      returning task_id, attempt, stored, lines, dropped, dropped_lines, notice_seq,
        (select array_agg(s) from v, unnest(v.seqs) s where v.task_id = b.task_id and v.attempt = b.attempt and s <@ b.counted) as known`,
  );

  const cut = new Map<Log, Log | null>();
  // The log events counted now: new to the database.
  const counting = new Set<ExecutorEvent>();
  const charges: (Counts & { notice_seq: number | null; counted: string })[] = [];
  const notices: Log[] = [];
  const said: Log[] = [];
  for (const row of rows) {
    const entry = byAttempt.get(pairOf({ taskId: row.task_id, attempt: row.attempt }))!;
    const known = new Set((row.known ?? []).map(Number));
    for (const e of entry.logs) if (known.has(e.seq)) cut.set(e, null);
    const fresh = entry.logs.filter((e) => !known.has(e.seq)).sort((a, b) => a.seq - b.seq);
    for (const e of fresh) counting.add(e);
    if (!fresh.length) continue;
    // Once an attempt's log has been cut, nothing more of it is kept: its first bytes and lines, as a host keeps them.
    const wasCut = droppedBefore(row);
    // Read under the lock as committed: from now on this process lets go of the attempt's lines as they arrive.
    if (wasCut) tc.ctx.cutLogs.add(pairOf({ taskId: row.task_id, attempt: row.attempt }));
    let bytesLeft = wasCut ? 0 : caps.maxBytes + LOG_CAP_SLACK_BYTES - Number(row.stored);
    let linesLeft = wasCut ? 0 : caps.maxLines + LOG_CAP_SLACK_LINES - Number(row.lines);
    const kept = { bytes: 0, lines: 0 };
    const dropped = { bytes: 0, lines: 0 };
    let firstDropped: Log | undefined;
    for (const e of fresh) {
      const keep: string[] = [];
      for (const line of e.lines) {
        const bytes = lineBytes(line);
        if (bytesLeft >= bytes && linesLeft >= 1) {
          keep.push(line);
          bytesLeft -= bytes;
          linesLeft -= 1;
          kept.bytes += bytes;
          kept.lines += 1;
        } else {
          bytesLeft = linesLeft = 0;
          dropped.bytes += bytes;
          dropped.lines += 1;
        }
      }
      // Lines let go on arrival (log-trim.ts) were past the caps: dropped, and nothing after them kept.
      const gone = trimmedOf(e);
      if (gone) {
        bytesLeft = linesLeft = 0;
        dropped.bytes += gone.bytes;
        dropped.lines += gone.lines;
      }
      if (keep.length === e.lines.length && !gone) continue;
      firstDropped ??= e;
      cut.set(e, keep.length ? { ...e, lines: keep } : null);
    }
    let noticeSeq: number | null = row.notice_seq === null ? null : Number(row.notice_seq);
    if (firstDropped) {
      // Numbers at the end of the execution's block, which a host's counter never reaches: the count after all of its
      // events, the word that the log was cut just before it.
      const blockEnd = (seqBlock(firstDropped.seq) + 1) * SEQ_BLOCK;
      const total = { bytes: Number(row.dropped) + dropped.bytes, lines: Number(row.dropped_lines) + dropped.lines };
      notices.push({ ...firstDropped, seq: noticeSeq ?? blockEnd - 1, stream: 'stderr', lines: [truncationNotice(total, caps)] });
      // Said once, when the cut is made, as an event of the batch: stored with it, and sent to live viewers, whom the
      // count's rewritten row does not reach.
      if (noticeSeq === null) said.push({ ...firstDropped, seq: blockEnd - 2, stream: 'stderr', lines: [cutNotice(caps)] });
      noticeSeq ??= blockEnd - 1;
    }
    charges.push({
      task_id: row.task_id,
      attempt: row.attempt,
      stored: kept.bytes,
      lines: kept.lines,
      dropped: dropped.bytes,
      dropped_lines: dropped.lines,
      notice_seq: noticeSeq,
      counted: seqSet(entry.seqs),
    });
  }
  // Nothing below reads the counts: the caller sends them behind the statements that follow (with the log rows, in one
  // statement), under the rows' lock taken above.
  const writes: SQL[] = [];
  if (charges.length)
    writes.push(
      sql`update task_log_bytes as b set stored = b.stored + v.stored, lines = b.lines + v.lines, dropped = b.dropped + v.dropped,
        dropped_lines = b.dropped_lines + v.dropped_lines, notice_seq = v.notice_seq, counted = b.counted + v.counted::int8multirange
      from ${jsonRows(charges)} as v(task_id uuid, attempt int, stored bigint, lines bigint, dropped bigint, dropped_lines bigint, notice_seq bigint, counted text)
      where b.task_id = v.task_id and b.attempt = v.attempt`,
    );
  // One line per attempt, rewritten as its count grows: a flood costs one row, not one per batch.
  if (notices.length)
    writes.push(
      sql`insert into task_events (task_id, run_id, attempt, seq, kind, at, payload)
      select v.task_id, v.run_id, v.attempt, v.seq, 'log', v.at, v.payload
      from ${jsonRows(notices.map((e) => ({ task_id: e.taskId, run_id: e.runId, attempt: e.attempt, seq: e.seq, at: e.at, payload: { host: e.host, stream: e.stream, lines: e.lines } })))}
        as v(task_id uuid, run_id uuid, attempt int, seq bigint, at timestamptz, payload jsonb)
      on conflict (task_id, attempt, seq) do update set payload = excluded.payload`,
    );
  const fresh = new Set<ExecutorEvent>(said);
  const capped = events.flatMap((e) => {
    const c = e.kind === 'log' ? cut.get(e) : undefined;
    const kept = c === undefined ? e : c;
    if (kept && counting.has(e)) fresh.add(kept);
    return kept ? [kept] : [];
  });
  return { events: [...capped, ...said], fresh, writes };
}

/** `writes` (data-modifying statements, none reading what another writes) sent as one statement. */
export function oneStatement(writes: SQL[]): SQL {
  const last = writes.length - 1;
  if (!last) return writes[0]!;
  return sql.join([
    sql`with `,
    sql.join(
      writes.slice(0, last).map((w, i) => sql`${sql.raw(`w${i}`)} as (${w})`),
      sql`, `,
    ),
    sql` `,
    writes[last]!,
  ]);
}

/** What capLogs leaves of a batch, and of that the log events it counted now (new: those counted before are left out). */
export interface CappedLogs {
  events: ExecutorEvent[];
  /** Every one new to the database (no row of it stored), as the counts read under their lock say. */
  fresh: Set<ExecutorEvent>;
  /** The counts' update and the line with the count of what was dropped, for the caller to send (oneStatement). */
  writes: SQL[];
}

const capsSaid = ({ maxBytes, maxLines }: LogCaps) =>
  `the control plane keeps an attempt's first ${maxBytes} bytes of log lines (ATELIER_MAX_LOG_BYTES) and its first ${maxLines} lines (ATELIER_MAX_LOG_LINES)`;

const cutNotice = (caps: LogCaps) => `[atelier] log output truncated: ${capsSaid(caps)}; the bytes dropped are counted at the end of this attempt's log`;

/** The line saying what was dropped, in the words a host uses (plugins/host/reporter.ts), so the UI and CLI show it alike. */
const truncationNotice = (dropped: { bytes: number; lines: number }, caps: LogCaps) =>
  `[atelier] log output truncated: ${dropped.bytes} bytes dropped (${dropped.lines} lines; ${capsSaid(caps)}); write bulk output to a file and log it as an artifact (see the README's ATELIER_MAX_LOG_BYTES)`;
