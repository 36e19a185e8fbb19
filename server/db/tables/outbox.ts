// The transactional outbox: bus messages written in the same transaction as the state they announce,
// published by the relay (server/events/outbox-relay.ts) after commit, so a crash between the two loses nothing.
import { bigserial, json, pgTable, text } from 'drizzle-orm/pg-core';
import { createdAt } from './columns';

// A row lives from the commit that wrote it until the relay has published it, then it is deleted.
export const outbox = pgTable('outbox', {
  id: bigserial('id', { mode: 'number' }).primaryKey(),
  /** `task`: a task attempt for a pool; `cancel`: a cancel broadcast; `event`: an event the control plane reports itself (a nested run ended). */
  kind: text('kind', { enum: ['task', 'cancel', 'event'] }).notNull(),
  /** Executor pool for tasks; unused for cancels. */
  pool: text('pool'),
  msgId: text('msg_id').notNull(),
  /**
   * `json`, not `jsonb`: read by nothing but the relay, which takes it whole, so it is kept as written (only checked to be
   * JSON). Made jsonb, a 10,000-task run's ~4 MB of task messages was parsed into binary form in startRun's statement.
   */
  payload: json('payload').notNull(),
  createdAt: createdAt(),
});

export type OutboxRow = typeof outbox.$inferSelect;
