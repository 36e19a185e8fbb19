// How many bytes and lines of log lines the control plane has stored for each task attempt, and how many it dropped past
// its caps (ATELIER_MAX_LOG_BYTES, ATELIER_MAX_LOG_LINES): a host enforces the byte cap too, but one that ignores it
// (buggy, or hostile with valid credentials) must not be able to fill the database. A narrow row per attempt that
// logged, as task_executions.
import { sql } from 'drizzle-orm';
import { bigint, customType, integer, pgTable, primaryKey, uuid } from 'drizzle-orm/pg-core';

/** A set of sequence numbers as Postgres keeps it: a few ranges (`{[0,120),[130,4000)}`), whatever their count. */
const seqSet = customType<{ data: string; driverData: string }>({ dataType: () => 'int8multirange' });

export const taskLogBytes = pgTable(
  'task_log_bytes',
  {
    taskId: uuid('task_id').notNull(),
    attempt: integer('attempt').notNull(),
    /** Bytes of log lines stored (each line's UTF-8 bytes and one for its end, as a host counts them). */
    stored: bigint('stored', { mode: 'number' }).notNull(),
    /** Log lines stored. */
    lines: bigint('lines', { mode: 'number' }).notNull().default(0),
    /** Bytes of log lines dropped past a cap. */
    dropped: bigint('dropped', { mode: 'number' }).notNull().default(0),
    /** Log lines dropped past a cap. */
    droppedLines: bigint('dropped_lines', { mode: 'number' }).notNull().default(0),
    /** The sequence number of the stored line that says how many bytes were dropped, once some were. */
    noticeSeq: bigint('notice_seq', { mode: 'number' }),
    /**
     * The sequence numbers of the attempt's events already counted here (those of every batch that carried its log
     * lines, of any kind, so that a host's numbering leaves few gaps): a batch delivered again counts nothing twice.
     */
    counted: seqSet('counted').notNull().default(sql`'{}'`),
  },
  (t) => [primaryKey({ columns: [t.taskId, t.attempt] })],
);

export type TaskLogBytes = typeof taskLogBytes.$inferSelect;
