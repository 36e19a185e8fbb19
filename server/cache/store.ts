// Cache entries and reservations in Postgres: looking keys up (one indexed query for a whole batch of tasks),
// reserving a key so identical tasks in flight run once, turning a succeeded owner's reservation into an entry,
// and evicting (expired entries, then least recently used ones beyond the size budget) and invalidating.
import { and, eq, inArray, type SQL, sql } from 'drizzle-orm';
import { canonicalJson } from '../artifacts/digest';
import type { ObjectStore } from '../artifacts/store';
import { type Db, queryRows, type Tx } from '../db/client';
import { type CacheEntry, cacheEntries, cacheReservations, type NewCacheEntry } from '../db/tables/cache';
import type { KeyComponents } from '../vocabulary';
import { referencedObjects } from './key';

/** What serving a hit takes from an entry. */
export type CacheHit = Pick<CacheEntry, 'key' | 'outputs' | 'objectDigests' | 'expiresAt' | 'sourceTaskId' | 'sourceRunId' | 'durationMs'>;

export interface Claim {
  key: string;
  taskId: string;
  runId: string;
  components: KeyComponents;
  module: string;
  moduleVersionId: string;
  ttlSeconds: number | null;
}

export interface TaskCache {
  /**
   * The entries of `keys` that can serve a hit now. An entry past its TTL, or whose outputs reference objects no
   * longer in the object store, is a miss and is dropped.
   */
  lookup(tx: Tx, keys: string[], at: Date): Promise<Map<string, CacheHit>>;
  /** Counts hits on entries and refreshes their place in the LRU order. */
  markUsed(tx: Tx, keys: string[], at: Date): Promise<void>;
  /** Reserves keys for their tasks; returns the keys now owned (free, expired, or already this task's). */
  reserve(tx: Tx, claims: Claim[], at: Date): Promise<Set<string>>;
  /** Who holds the reservations of `keys`. */
  holders(tx: Tx, keys: string[]): Promise<Map<string, { taskId: string; runId: string }>>;
  /** Succeeded owners: their reservations become entries (replacing an older entry of the same key). */
  record(tx: Tx, results: { taskId: string; outputs: Record<string, unknown>; durationMs: number }[], at: Date): Promise<void>;
  /** Owners that ended without a result give their keys up, so a waiting identical task can take over at once. */
  release(tx: Tx | Db, taskIds: string[]): Promise<void>;
  /** Owners that are alive (their host reported) keep their reservations. */
  renew(db: Db, taskIds: string[], at: Date): Promise<void>;
  /** Drops expired entries and, beyond the size budget, the least recently used ones; returns how many. */
  evict(db: Db, at: Date): Promise<number>;
  invalidate(db: Db, which: { module?: string; moduleVersionId?: string; key?: string }): Promise<number>;
}

export interface TaskCacheOptions {
  objects: ObjectStore;
  /** A reservation not renewed for this long is taken to belong to a crashed owner. */
  reservationTtlMs: number;
  /** Size budget of all entries together, in bytes. */
  maxBytes: number;
}

const CHUNK = 1000;

export function createTaskCache(options: TaskCacheOptions): TaskCache {
  const expiry = (at: Date) => new Date(at.getTime() + options.reservationTtlMs);
  return {
    async lookup(tx, keys, at) {
      if (!keys.length) return new Map();
      // Only what a hit needs: the components, larger than most outputs, stay in the table.
      const rows = await tx
        .select({
          key: cacheEntries.key,
          outputs: cacheEntries.outputs,
          objectDigests: cacheEntries.objectDigests,
          expiresAt: cacheEntries.expiresAt,
          sourceTaskId: cacheEntries.sourceTaskId,
          sourceRunId: cacheEntries.sourceRunId,
          durationMs: cacheEntries.durationMs,
        })
        .from(cacheEntries)
        .where(inArray(cacheEntries.key, keys));
      const found = new Map<string, CacheHit>();
      const gone: string[] = [];
      await Promise.all(
        rows.map(async (entry) => {
          const expired = entry.expiresAt !== null && entry.expiresAt <= at;
          // `touch`, not `exists`: this hit copies the entry's digests into a task's row, and an eviction of the entry
          // in the meantime must not leave the objects looking unreferenced and old to the collector.
          const present = !expired && (await Promise.all(entry.objectDigests.map((d) => options.objects.touch(d)))).every(Boolean);
          if (present) found.set(entry.key, entry);
          else gone.push(entry.key);
        }),
      );
      if (gone.length) await tx.delete(cacheEntries).where(inArray(cacheEntries.key, gone));
      return found;
    },

    async markUsed(tx, keys, at) {
      if (keys.length)
        await tx
          .update(cacheEntries)
          .set({ hits: sql`${cacheEntries.hits} + 1`, lastUsedAt: at })
          .where(inArray(cacheEntries.key, keys));
    },

    async reserve(tx, claims, at) {
      const owned = new Set<string>();
      for (let i = 0; i < claims.length; i += CHUNK) {
        const rows = await tx
          .insert(cacheReservations)
          .values(claims.slice(i, i + CHUNK).map((c) => ({ ...c, heartbeatAt: at, expiresAt: expiry(at) })))
          .onConflictDoUpdate({
            target: cacheReservations.key,
            set: excluded(['task_id', 'run_id', 'components', 'module', 'module_version_id', 'ttl_seconds', 'heartbeat_at', 'expires_at']),
            where: sql`${cacheReservations.expiresAt} < excluded.heartbeat_at or ${cacheReservations.taskId} = excluded.task_id`,
          })
          .returning({ key: cacheReservations.key });
        for (const r of rows) owned.add(r.key);
      }
      return owned;
    },

    async holders(tx, keys) {
      if (!keys.length) return new Map();
      const rows = await tx
        .select({ key: cacheReservations.key, taskId: cacheReservations.taskId, runId: cacheReservations.runId })
        .from(cacheReservations)
        .where(inArray(cacheReservations.key, keys));
      return new Map(rows.map((r) => [r.key, { taskId: r.taskId, runId: r.runId }]));
    },

    async record(tx, results, at) {
      if (!results.length) return;
      const byTask = new Map(results.map((r) => [r.taskId, r]));
      const reservations = await tx
        .delete(cacheReservations)
        .where(inArray(cacheReservations.taskId, [...byTask.keys()]))
        .returning();
      // In key order, as evict() takes them: two writers of several entries then never wait on each other in a circle.
      reservations.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
      const entries: NewCacheEntry[] = reservations.map((r) => {
        const result = byTask.get(r.taskId)!;
        return {
          key: r.key,
          components: r.components,
          scope: r.components.scope,
          module: r.module,
          moduleVersionId: r.moduleVersionId,
          outputs: result.outputs,
          objectDigests: [...referencedObjects(result.outputs)],
          sizeBytes: Buffer.byteLength(canonicalJson(result.outputs)),
          sourceTaskId: r.taskId,
          sourceRunId: r.runId,
          durationMs: Math.max(0, Math.round(result.durationMs)),
          createdAt: at,
          lastUsedAt: at,
          expiresAt: r.ttlSeconds ? new Date(at.getTime() + r.ttlSeconds * 1000) : null,
          hits: 0,
        };
      });
      for (let i = 0; i < entries.length; i += CHUNK) {
        await tx
          .insert(cacheEntries)
          .values(entries.slice(i, i + CHUNK))
          .onConflictDoUpdate({
            target: cacheEntries.key,
            set: excluded([
              'components',
              'scope',
              'module',
              'module_version_id',
              'outputs',
              'object_digests',
              'size_bytes',
              'source_task_id',
              'source_run_id',
              'duration_ms',
              'created_at',
              'last_used_at',
              'expires_at',
              'hits',
            ]),
          });
      }
    },

    async release(tx, taskIds) {
      if (taskIds.length) await tx.delete(cacheReservations).where(inArray(cacheReservations.taskId, taskIds));
    },

    async renew(db, taskIds, at) {
      if (taskIds.length)
        await db
          .update(cacheReservations)
          .set({ heartbeatAt: at, expiresAt: expiry(at) })
          .where(inArray(cacheReservations.taskId, taskIds));
    },

    async evict(db, at) {
      // Each delete locks its rows in key order first, as record() upserts them: deleted in the order of a scan, they
      // deadlocked with a recorder writing several of the same entries (one of the two aborted, and tried again).
      const expired = await queryRows<{ key: string }>(
        db,
        sql`delete from cache_entries where key in (
              select key from cache_entries where expires_at < ${at.toISOString()}::timestamptz order by key for update)
            returning key`,
      );
      // Least recently used first, until what is left fits the budget: one statement, whatever the entry count.
      const evicted = await queryRows<{ key: string }>(
        db,
        sql`delete from cache_entries where key in (
              select key from cache_entries where key in (
                select key from (
                  select key, sum(size_bytes) over (order by last_used_at desc, key) as running from cache_entries
                ) ranked where running > ${options.maxBytes})
              order by key for update)
            returning key`,
      );
      return expired.length + evicted.length;
    },

    async invalidate(db, which) {
      const conditions: SQL[] = [];
      if (which.module) conditions.push(eq(cacheEntries.module, which.module));
      if (which.moduleVersionId) conditions.push(eq(cacheEntries.moduleVersionId, which.moduleVersionId));
      if (which.key) conditions.push(eq(cacheEntries.key, which.key));
      if (!conditions.length) return 0;
      return (
        await db
          .delete(cacheEntries)
          .where(and(...conditions))
          .returning({ key: cacheEntries.key })
      ).length;
    },
  };
}

const excluded = (columns: string[]) => Object.fromEntries(columns.map((c) => [camel(c), sql.raw(`excluded.${c}`)]));
const camel = (name: string) => name.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
