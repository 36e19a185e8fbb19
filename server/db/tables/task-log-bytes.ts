// How many bytes of log lines the control plane has stored for each task attempt, and how many it dropped past its cap
// (ATELIER_MAX_LOG_BYTES): a host enforces the cap too, but one that ignores it (buggy, or hostile with valid
// credentials) must not be able to fill the database. A narrow row per attempt that logged, as task_executions.
import { bigint, integer, pgTable, primaryKey, uuid } from 'drizzle-orm/pg-core';

export const taskLogBytes = pgTable(
  'task_log_bytes',
  {
    taskId: uuid('task_id').notNull(),
    attempt: integer('attempt').notNull(),
    /** Bytes of log lines stored (each line's UTF-8 bytes and one for its end, as a host counts them). */
    stored: bigint('stored', { mode: 'number' }).notNull(),
    /** Bytes of log lines dropped past the cap. */
    dropped: bigint('dropped', { mode: 'number' }).notNull().default(0),
    /** The sequence number of the stored line that says how many bytes were dropped, once some were. */
    noticeSeq: bigint('notice_seq', { mode: 'number' }),
  },
  (t) => [primaryKey({ columns: [t.taskId, t.attempt] })],
);

export type TaskLogBytes = typeof taskLogBytes.$inferSelect;
