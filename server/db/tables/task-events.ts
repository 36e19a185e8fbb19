// Everything an attempt reported (start, progress, logs, metrics, result), recorded exactly once per
// (task, attempt, seq) however often the bus delivers it.
import { sql } from 'drizzle-orm';
import { bigint, bigserial, index, integer, jsonb, pgTable, text, unique, uniqueIndex, uuid } from 'drizzle-orm/pg-core';
import { at } from './columns';

export const taskEvents = pgTable(
  'task_events',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    taskId: uuid('task_id').notNull(),
    runId: uuid('run_id').notNull(),
    attempt: integer('attempt').notNull(),
    seq: bigint('seq', { mode: 'number' }).notNull(),
    kind: text('kind', { enum: ['started', 'heartbeat', 'progress', 'log', 'metric', 'result'] }).notNull(),
    payload: jsonb('payload').$type<Record<string, unknown>>().notNull(),
    at: at('at').notNull(),
  },
  (t) => [
    // Also serves every lookup by task (its first column): a second index on (task_id, id) cost each event one more
    // index entry, on the recorder's hottest insert.
    unique('task_events_attempt_seq_key').on(t.taskId, t.attempt, t.seq),
    // One result per attempt, even when a redelivered attempt runs again and reports a second one.
    uniqueIndex('task_events_one_result_key').on(t.taskId, t.attempt).where(sql`kind = 'result'`),
    // One success per task, whatever its attempts: a task that succeeded is never recorded succeeding again.
    uniqueIndex('task_events_one_success_key').on(t.taskId).where(sql`kind = 'result' and (payload -> 'outcome' ->> 'state') = 'SUCCEEDED'`),
    // Successes whose module asked for model registrations: what the recovery pass looks through (server/registry/from-tasks.ts).
    index('task_events_registrations_idx').on(t.taskId, t.attempt).where(sql`kind = 'result' and (payload -> 'outcome' -> 'registrations') is not null`),
  ],
);

export type TaskEvent = typeof taskEvents.$inferSelect;
