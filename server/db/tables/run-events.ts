// The live events of each run, numbered 1, 2, 3… per run in the order their transactions committed (the number is
// taken from `runs.event_seq` under the run row's lock, in the same transaction as the change it reports). It is
// what a subscriber resumes from (`runEvents(after:)`, SSE `Last-Event-ID`) and what fills a gap in the live feed.
import { bigint, jsonb, pgTable, primaryKey, uuid } from 'drizzle-orm/pg-core';

export const runEvents = pgTable(
  'run_events',
  {
    runId: uuid('run_id').notNull(),
    seq: bigint('seq', { mode: 'number' }).notNull(),
    /** The event as the feed carries it (server/events/feed.ts `FeedEvent`). */
    event: jsonb('event').$type<Record<string, unknown>>().notNull(),
  },
  (t) => [primaryKey({ name: 'run_events_pkey', columns: [t.runId, t.seq] })],
);

export type RunEventRow = typeof runEvents.$inferSelect;
