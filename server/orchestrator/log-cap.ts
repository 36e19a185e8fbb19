// The control plane's own cap on an attempt's log. Hosts cap what they publish (ATELIER_MAX_LOG_BYTES, plugins/host/
// reporter.ts), but a host that ignores it (a bug, or a hostile one with valid credentials) could otherwise fill the
// database with log lines: the recorder keeps an attempt's first bytes up to the cap and drops the rest, counting them
// in task_log_bytes, and says so as a host does: a line when it cuts the log (sent live too), and one with how many
// bytes it dropped, rewritten as that grows. Log events of another shape than a host's are not stored. Done in the recording's
// transaction, so a batch that fails charges nothing; a batch recorded again after it committed (a crash before its ack)
// is charged again, so the count of dropped bytes may then run a little high.
import { sql } from 'drizzle-orm';
import { type ExecutorEvent, SEQ_BLOCK } from '../../plugins/protocol';
import { jsonRows } from '../db/arrays';
import { queryRows, type Tx } from '../db/client';
import { isUuid } from '../db/uuid';
import { seqBlock } from './attempts';

type Log = Extract<ExecutorEvent, { kind: 'log' }>;

/** The hosts' default cap (plugins/host/index.ts), the control plane's too when ATELIER_MAX_LOG_BYTES is unset. */
export const DEFAULT_MAX_LOG_BYTES = 10 * 1024 * 1024;
/** Room past the cap for the lines an honest host adds of its own (its truncation notices, its warnings), which it does not count. */
export const LOG_CAP_SLACK_BYTES = 64 * 1024;

/** A line's bytes as a host counts them: its UTF-8 bytes and one for its end. */
const lineBytes = (line: string) => Buffer.byteLength(line) + 1;
const pairOf = (e: { taskId: string; attempt: number }) => `${e.taskId}:${e.attempt}`;

/**
 * A log event as a host makes it: some lines, all text, on stdout or stderr. Any other (no lines: a row each for
 * nothing; lines or a stream of another shape, whose size the count would miss) is not stored.
 */
const wellFormed = (e: Log) =>
  Array.isArray(e.lines) && e.lines.length > 0 && e.lines.every((line) => typeof line === 'string') && (e.stream === 'stdout' || e.stream === 'stderr');

/**
 * `given` with the log lines past each attempt's cap (`maxBytes` plus LOG_CAP_SLACK_BYTES) dropped: a log event cut
 * short, or left out once nothing of it fits; and, once an attempt's log is cut, a line saying so. Charges what it
 * keeps to task_log_bytes (one statement when the batch has log events; one more, and the count's upsert, when some
 * attempt goes past its cap). Leaves `given` as it is.
 */
export async function capLogs(tx: Tx, given: ExecutorEvent[], maxBytes: number): Promise<ExecutorEvent[]> {
  const events = given.some((e) => e.kind === 'log' && !wellFormed(e)) ? given.filter((e) => e.kind !== 'log' || wellFormed(e)) : given;
  const logs = events.filter((e): e is Log => e.kind === 'log' && isUuid(e.taskId) && Number.isInteger(e.attempt));
  if (!logs.length) return events;
  const cap = maxBytes + LOG_CAP_SLACK_BYTES;
  const byAttempt = new Map<string, { task_id: string; attempt: number; bytes: number; logs: Log[] }>();
  for (const e of logs) {
    const bytes = e.lines.reduce((n, line) => n + lineBytes(line), 0);
    const entry = byAttempt.get(pairOf(e)) ?? { task_id: e.taskId, attempt: e.attempt, bytes: 0, logs: [] };
    entry.bytes += bytes;
    entry.logs.push(e);
    byAttempt.set(pairOf(e), entry);
  }
  // In key order, so two batches of the same attempts lock their rows in the same order. Only tasks that exist: a
  // host naming made-up ones gets no row (the recorder drops their events anyway).
  const charges = [...byAttempt.values()].map(({ task_id, attempt, bytes }) => ({ task_id, attempt, bytes }));
  const totals = await queryRows<{ task_id: string; attempt: number; stored: string | number; dropped: string | number; notice_seq: string | number | null }>(
    tx,
    sql`insert into task_log_bytes as b (task_id, attempt, stored)
      select v.task_id, v.attempt, v.bytes from ${jsonRows(charges)} as v(task_id uuid, attempt int, bytes bigint)
      where exists (select 1 from tasks t where t.id = v.task_id)
      order by v.task_id, v.attempt
      on conflict (task_id, attempt) do update set stored = b.stored + excluded.stored
      returning task_id, attempt, stored, dropped, notice_seq`,
  );
  const over = totals.filter((r) => Number(r.stored) > cap || Number(r.dropped) > 0);
  if (!over.length) return events;

  const cut = new Map<Log, Log | null>();
  const corrections: { task_id: string; attempt: number; stored: number; dropped: number; notice_seq: number }[] = [];
  const notices: Log[] = [];
  const said: Log[] = [];
  for (const row of over) {
    const entry = byAttempt.get(pairOf({ taskId: row.task_id, attempt: row.attempt }))!;
    const before = Number(row.stored) - entry.bytes;
    // Once an attempt's log has been cut, nothing more of it is kept: its first bytes, as a host keeps them.
    let room = Number(row.dropped) > 0 ? 0 : cap - before;
    let dropped = 0;
    let firstDropped: Log | undefined;
    for (const e of [...entry.logs].sort((a, b) => a.seq - b.seq)) {
      const kept: string[] = [];
      for (const line of e.lines) {
        const bytes = lineBytes(line);
        if (room >= bytes) {
          kept.push(line);
          room -= bytes;
        } else {
          room = 0;
          dropped += bytes;
        }
      }
      if (kept.length === e.lines.length) continue;
      firstDropped ??= e;
      cut.set(e, kept.length ? { ...e, lines: kept } : null);
    }
    if (!firstDropped) continue; // nothing of this batch dropped (an attempt cut before that sent only empty events)
    const stored = before + entry.bytes - dropped;
    const total = Number(row.dropped) + dropped;
    // Numbers at the end of the execution's block, which a host's counter never reaches: the count after all of its
    // events, the word that the log was cut just before it.
    const blockEnd = (seqBlock(firstDropped.seq) + 1) * SEQ_BLOCK;
    const noticeSeq = row.notice_seq !== null ? Number(row.notice_seq) : blockEnd - 1;
    corrections.push({ task_id: row.task_id, attempt: row.attempt, stored, dropped: total, notice_seq: noticeSeq });
    notices.push({ ...firstDropped, seq: noticeSeq, stream: 'stderr', lines: [truncationNotice(total, maxBytes)] });
    // Said once, when the cut is made, as an event of the batch: stored with it, and sent to live viewers, whom the
    // count's rewritten row does not reach.
    if (row.notice_seq === null) said.push({ ...firstDropped, seq: blockEnd - 2, stream: 'stderr', lines: [cutNotice(maxBytes)] });
  }
  if (!corrections.length) return events;
  await tx.execute(sql`
    update task_log_bytes as b set stored = v.stored, dropped = v.dropped, notice_seq = v.notice_seq
    from ${jsonRows(corrections)} as v(task_id uuid, attempt int, stored bigint, dropped bigint, notice_seq bigint)
    where b.task_id = v.task_id and b.attempt = v.attempt`);
  // One line per attempt, rewritten as its count grows: a flood costs one row, not one per batch.
  const rows = notices.map((e) => ({
    task_id: e.taskId,
    run_id: e.runId,
    attempt: e.attempt,
    seq: e.seq,
    at: e.at,
    payload: { host: e.host, stream: e.stream, lines: e.lines },
  }));
  await tx.execute(sql`
    insert into task_events (task_id, run_id, attempt, seq, kind, at, payload)
    select v.task_id, v.run_id, v.attempt, v.seq, 'log', v.at, v.payload from ${jsonRows(rows)} as v(task_id uuid, run_id uuid, attempt int, seq bigint, at timestamptz, payload jsonb)
    on conflict (task_id, attempt, seq) do update set payload = excluded.payload`);
  const capped = events.flatMap((e) => {
    const c = e.kind === 'log' ? cut.get(e) : undefined;
    return c === undefined ? [e] : c ? [c] : [];
  });
  return [...capped, ...said];
}

const cutNotice = (maxBytes: number) =>
  `[atelier] log output truncated: the control plane keeps an attempt's first ${maxBytes} bytes of log lines (ATELIER_MAX_LOG_BYTES); the bytes dropped are counted at the end of this attempt's log`;

/** The line saying what was dropped, in the words a host uses (plugins/host/reporter.ts), so the UI and CLI show it alike. */
const truncationNotice = (dropped: number, maxBytes: number) =>
  `[atelier] log output truncated: ${dropped} bytes dropped (the control plane keeps an attempt's first ${maxBytes} bytes of log lines, ATELIER_MAX_LOG_BYTES); write bulk output to a file and log it as an artifact (see the README's ATELIER_MAX_LOG_BYTES)`;
