// The task cache: one entry per cache key with the result it stands for, and the reservations that make identical
// tasks in flight at once run once (the owner runs, the others wait for its entry).
import { sql } from 'drizzle-orm';
import { bigint, index, integer, jsonb, pgTable, text, uuid } from 'drizzle-orm/pg-core';
import type { KeyComponents } from '../../vocabulary';
import { at, createdAt } from './columns';
import { identities } from './identities';
import { moduleVersions } from './modules';

export const cacheEntries = pgTable(
  'cache_entries',
  {
    /** sha256 hex of the canonical key components (see server/cache/key.ts). */
    key: text('key').primaryKey(),
    /** The key's components, kept so a miss can be explained against its nearest entry. */
    components: jsonb('components').$type<KeyComponents>().notNull(),
    scope: text('scope').notNull(),
    /** `namespace/name` of the module: what explain, invalidation and stats group by. */
    module: text('module').notNull(),
    moduleVersionId: uuid('module_version_id')
      .notNull()
      .references(() => moduleVersions.id),
    outputs: jsonb('outputs').$type<Record<string, unknown>>().notNull(),
    /** Object-store digests the outputs reference: all of them must still exist for the entry to be a hit. */
    objectDigests: text('object_digests').array().notNull().default(sql`'{}'::text[]`),
    sizeBytes: bigint('size_bytes', { mode: 'number' }).notNull(),
    sourceTaskId: uuid('source_task_id').notNull(),
    sourceRunId: uuid('source_run_id').notNull(),
    /** The source's execution time: what each hit saves. */
    durationMs: bigint('duration_ms', { mode: 'number' }).notNull(),
    hits: integer('hits').notNull().default(0),
    createdAt: createdAt(),
    lastUsedAt: at('last_used_at').notNull().defaultNow(),
    /** From the module's `cache.ttlSeconds`; null keeps the entry until it is evicted or invalidated. */
    expiresAt: at('expires_at'),
  },
  (t) => [index('cache_entries_module_idx').on(t.module, t.scope, t.createdAt.desc().nullsFirst()), index('cache_entries_lru_idx').on(t.lastUsedAt)],
);

export const cacheReservations = pgTable(
  'cache_reservations',
  {
    key: text('key').primaryKey(),
    /** The task computing the key's result; identical tasks wait for it. */
    taskId: uuid('task_id').notNull(),
    runId: uuid('run_id').notNull(),
    /** What the owner's entry will be written with when it succeeds. */
    components: jsonb('components').$type<KeyComponents>().notNull(),
    module: text('module').notNull(),
    moduleVersionId: uuid('module_version_id').notNull(),
    ttlSeconds: integer('ttl_seconds'),
    heartbeatAt: at('heartbeat_at').notNull(),
    /** A reservation not renewed by then belongs to a crashed owner and may be taken over. */
    expiresAt: at('expires_at').notNull(),
  },
  (t) => [index('cache_reservations_task_idx').on(t.taskId)],
);

export type CacheEntry = typeof cacheEntries.$inferSelect;
export type NewCacheEntry = typeof cacheEntries.$inferInsert;

/**
 * Private cache namespaces of experimentation runs: the first use claims one for the human behind the caller
 * (server/cache/namespaces.ts); only that human (through any of their identities) may use it again.
 */
export const cacheNamespaces = pgTable('cache_namespaces', {
  name: text('name').primaryKey(),
  ownerId: uuid('owner_id')
    .notNull()
    .references(() => identities.id),
  claimedBy: uuid('claimed_by')
    .notNull()
    .references(() => identities.id),
  createdAt: createdAt(),
});
