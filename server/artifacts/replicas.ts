// Replicas share Postgres, so they must share one object store: an archive published through one replica is
// downloaded through any other. At start a replica records its store's id (kept inside the store, see
// `ObjectStore.identity`) in the database and refuses to start when a live replica recorded another one; while it
// runs it renews its record, and a clean stop removes it. Records not renewed for a while (a killed replica) stop
// counting, so moving every replica to a new store needs no manual cleanup.
import { randomUUID } from 'node:crypto';
import { and, eq, gt, lt, ne, sql } from 'drizzle-orm';
import { hashToken } from '../auth/tokens';
import { ConfigError } from '../config';
import { OBJECT_STORE_REPLICA_STALE_MS } from '../config/defaults';
import type { Db, HeldLock } from '../db/client';
import { objectStoreReplicas } from '../db/schema';
import type { Service } from '../lifecycle';
import type { ObjectStore } from './store';

// Any fixed number: replicas starting together take turns, so two new stores cannot both be recorded.
const CLAIM_LOCK = 0x6f626a73;
const FORGET_AFTER = sql`interval '1 day'`;

export interface ClaimOptions {
  db: Db;
  store: ObjectStore;
  /** Where this replica runs, named in the other replicas' refusals. */
  name: string;
  /**
   * The admin token ATELIER_ADMIN_TOKEN gave this replica, if any, recorded by its hash: a replica started without it
   * leaves that token alone while this one is live (server/auth/admin-token.ts).
   */
  adminToken?: string;
  /** Released once the claim (recording `adminToken`) committed, or failed (server/auth/admin-token.ts). */
  adminTokenHold?: HeldLock | null;
  staleMs?: number;
}

/** Checks and records this replica's object store; throws ConfigError when live replicas use another one. */
export async function claimObjectStore(options: ClaimOptions): Promise<{ replica: string; storeId: string }> {
  const staleMs = options.staleMs ?? OBJECT_STORE_REPLICA_STALE_MS;
  const replica = randomUUID();
  const live = sql`now() - make_interval(secs => ${staleMs / 1000})`;
  return options.db.transaction(async (tx) => {
    await tx.execute(sql`select pg_advisory_xact_lock(${CLAIM_LOCK})`);
    const storeId = await options.store.identity();
    const others = await tx
      .select()
      .from(objectStoreReplicas)
      .where(and(gt(objectStoreReplicas.lastSeenAt, live), ne(objectStoreReplicas.storeId, storeId)))
      .limit(1);
    const other = others[0];
    if (other) {
      throw new ConfigError(
        `this replica's object store (${options.store.describe()}, store id ${storeId}) is not the one live replica ${other.name} uses ` +
          `(${other.backend}, store id ${other.storeId}). Replicas share the database, so they must share one object store, or archives ` +
          'published through one are missing on the other: set ATELIER_OBJECT_STORE=s3 (with ATELIER_S3_BUCKET) or ATELIER_OBJECT_STORE=nats ' +
          `on every replica, or give them the same ATELIER_DATA_DIR. (A replica not seen for ${Math.round(staleMs / 1000)} s no longer counts.)`,
      );
    }
    await tx.delete(objectStoreReplicas).where(lt(objectStoreReplicas.lastSeenAt, sql`now() - ${FORGET_AFTER}`));
    await tx.insert(objectStoreReplicas).values({
      replica,
      name: options.name,
      backend: options.store.backend,
      storeId,
      adminTokenHash: options.adminToken ? hashToken(options.adminToken) : null,
    });
    return { replica, storeId };
  });
}

/** The claim as a service: first to start, it renews the record while the replica runs and removes it on stop. */
export function objectStoreClaim(options: ClaimOptions & { log: (message: string) => void }): Service {
  const staleMs = options.staleMs ?? OBJECT_STORE_REPLICA_STALE_MS;
  let replica: string | undefined;
  let timer: NodeJS.Timeout | undefined;
  return {
    name: 'object store',
    async start() {
      try {
        ({ replica } = await claimObjectStore(options));
      } finally {
        await options.adminTokenHold?.release();
      }
      timer = setInterval(() => {
        options.db
          .update(objectStoreReplicas)
          .set({ lastSeenAt: sql`now()` })
          .where(eq(objectStoreReplicas.replica, replica!))
          .catch((e: Error) => options.log(`object store: renewing this replica's record: ${e.message} (will retry)`));
      }, staleMs / 3);
      timer.unref();
    },
    async stop() {
      clearInterval(timer);
      if (replica) await options.db.delete(objectStoreReplicas).where(eq(objectStoreReplicas.replica, replica));
    },
  };
}
