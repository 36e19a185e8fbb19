// The object store each live control-plane replica uses (server/artifacts/replicas.ts): replicas share Postgres,
// so a replica whose store differs from the live ones' refuses to start instead of losing objects to the others.
import { bigint, index, pgTable, text, timestamp } from 'drizzle-orm/pg-core';

export const objectStoreReplicas = pgTable(
  'object_store_replicas',
  {
    /** This process's own id: a restarted replica is a new row, the old one goes stale. */
    replica: text('replica').primaryKey(),
    /** Where it runs (host name and pid), for the refusal's message. */
    name: text('name').notNull(),
    backend: text('backend').notNull(),
    /** `<backend>:<id kept inside the store>`: equal ids are one store. */
    storeId: text('store_id').notNull(),
    startedAt: timestamp('started_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
    lastSeenAt: timestamp('last_seen_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
    /**
     * The hash (tokens.hash) of the admin token ATELIER_ADMIN_TOKEN gave this replica, if it was given one: a replica
     * started without the variable leaves that token alone while a live replica holds it (server/auth/admin-token.ts).
     */
    adminTokenHash: text('admin_token_hash'),
  },
  (t) => [index('object_store_replicas_seen_idx').on(t.lastSeenAt.desc().nullsFirst())],
);

/**
 * The collector's candidates during a pass (server/artifacts/collect.ts): objects untouched for the grace period, struck
 * off as the pass finds them mentioned. A table, not a temporary one: a temporary table lives in one session, which
 * meant one transaction open for the whole pass. One collector at a time fills it (an advisory lock), emptying it first.
 */
export const objectGcCandidates = pgTable('object_gc_candidates', {
  hex: text('hex').primaryKey(),
  size: bigint('size', { mode: 'number' }).notNull(),
});
