// How many executions of each task attempt the control plane has let run (protocol 4): a claim that asks is given the
// next number, and that execution numbers its events from its own block, so two executions of one attempt never share
// one. A narrow row per attempt, written by the claim's statement: numbering in the tasks row itself cost every task a
// wide row version and its index entries (the claim statement went from 0.01 to 0.19 ms per task in S1).
// The row's random `key`, made with it at the attempt's first claim, is what the attempt's events must carry: a
// database restored from a backup made before that claim draws another, so reports of an execution let run in the
// history the restore undid are refused, though the restored database hands the same attempt number out again.
import { integer, pgTable, primaryKey, uuid } from 'drizzle-orm/pg-core';

export const taskExecutions = pgTable(
  'task_executions',
  {
    taskId: uuid('task_id').notNull(),
    attempt: integer('attempt').notNull(),
    /** Numbers handed out so far: the executions are numbered 0 … count − 1 (a claim then held used its number up). */
    count: integer('count').notNull(),
    /** Handed to every execution let run (ClaimAnswer.key) and carried on its events; never drawn twice. */
    key: uuid('key').notNull().defaultRandom(),
  },
  (t) => [primaryKey({ columns: [t.taskId, t.attempt] })],
);

export type TaskExecutions = typeof taskExecutions.$inferSelect;
