// Opens the database: embedded PGlite under the data directory by default, real Postgres with DATABASE_URL.
// Applies the committed drizzle-kit migrations either way.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type SQL, sql } from 'drizzle-orm';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import type { ReservedSql } from 'postgres';
import { TRANSIENT_ABORTS } from '../errors';
import { lockDataDir } from './data-dir-lock';
import { keepDiskReserve } from './disk-reserve';
import { type ListenHandlers, listenOnPostgres, type Unlisten } from './listen';
import { guardNestedStatements } from './pglite-guard';
import { driverTarget } from './postgres-url';
import { createReachability } from './reachability';
import * as schema from './schema';
import { DatabaseNewerThanCodeError, refuseNewerDatabase } from './schema-version';
import { assertWritable } from './writable';

export type Db = PgDatabase<PgQueryResultHKT, typeof schema>;
export type Tx = Parameters<Parameters<Db['transaction']>[0]>[0];

export interface Database {
  db: Db;
  kind: 'pglite' | 'postgres';
  /**
   * LISTENs on `channel` (server/db/listen.ts): each notification's payload to `handlers.notify`, and when the listening
   * connection stops (`down`) and starts (`up`) hearing them. Resolves once the first try to listen has ended.
   */
  listen(channel: string, handlers: ListenHandlers): Promise<Unlisten>;
  close(): Promise<void>;
}

/**
 * Per database, the same client without the relational schema, which `retryingTransaction` opens its transactions on:
 * drizzle makes a relational query builder for every table (~70) each time it opens a transaction (~18 µs and as
 * many objects, on every startRun, recording and edge), and no transaction here uses them: `tx.query` is empty there
 * (the query builders, `tx.select()` and the rest, are the same).
 */
const transactionsOf = new WeakMap<Db, Db>();
/** Per embedded database, the directory of its files (`pgdata`): where a copy of it is told from it (incarnation.ts). */
const directoriesOf = new WeakMap<Db, string>();
/** The embedded database's files' directory; undefined on Postgres. */
export const embeddedDirectory = (db: Db): string | undefined => directoriesOf.get(db);
/** Per Postgres database, a connection of its own, outside the pool's turns (withTryAdvisoryLock's session locks). */
const sessionsOf = new WeakMap<Db, () => Promise<ReservedSql>>();

const migrationsFolder = path.join(path.dirname(fileURLToPath(import.meta.url)), 'migrations');
// Any fixed number: replicas starting together take turns applying migrations.
const MIGRATION_LOCK = 0x61746c72;

/**
 * Seconds before a connection that failed is opened again, after `retries` failures in a row (the pool's count). The
 * driver's own grows to 20 s, so that after a Postgres restart a request queued on a connection still waiting out its
 * delay stalled that long while the database was back (test/db/postgres-down.test.ts); here at most 1 s, jittered.
 */
export const reconnectDelayS = (retries: number): number => Math.min(0.05 * 2 ** retries, 1) * (0.5 + Math.random() / 2);

export async function openDatabase(options: {
  url?: string;
  dataDir: string;
  maxConnections?: number;
  /** How long Postgres may leave a probe unanswered before it is out of reach (reachability.ts). */
  unreachableAfterMs?: number;
  log?: (message: string) => void;
}): Promise<Database> {
  if (options.url) {
    const { default: postgres } = await import('postgres');
    const { drizzle } = await import('drizzle-orm/postgres-js');
    const { migrate } = await import('drizzle-orm/postgres-js/migrator');
    const target = driverTarget(options.url);
    const reachability = createReachability(postgres, target.url, target.options, { deadlineMs: options.unreachableAfterMs, log: options.log });
    const client = postgres(target.url, {
      ...target.options,
      max: options.maxConnections ?? 10,
      onnotice: () => {},
      backoff: reconnectDelayS,
      // postgres-js takes a socket factory (connection.js: `options.socket`), which its types leave out.
      ...({ socket: reachability.socket } as object),
    });
    const db = drizzle(client, { schema }) as unknown as Db;
    transactionsOf.set(db, drizzle(client) as unknown as Db);
    sessionsOf.set(db, () => client.reserve());
    serializeDates(client.options.serializers);
    try {
      // A session-level lock on one reserved connection: replicas starting together take turns migrating.
      const lock = await client.reserve();
      try {
        await lock`select pg_advisory_lock(${MIGRATION_LOCK})`;
        await migrate(db as never, { migrationsFolder });
        refuseNewerDatabase(await latestApplied(db), migrationsFolder);
      } finally {
        // A lock whose backend died is gone with it; a query on that dead reserved connection would wait forever
        // (porsager/postgres#1199), so the unlock gets a few seconds.
        await Promise.race([lock`select pg_advisory_unlock(${MIGRATION_LOCK})`.catch(() => {}), new Promise((r) => setTimeout(r, 5_000).unref())]);
        lock.release();
      }
    } catch (error) {
      await Promise.all([client.end({ timeout: 1 }), reachability.stop()]);
      if (error instanceof DatabaseNewerThanCodeError) throw error;
      throw new Error(`Could not prepare the database at DATABASE_URL: ${(error as Error).message}. Check that Postgres is running and the URL is right.`);
    }
    reachability.start();
    return {
      db,
      kind: 'postgres',
      // Its own connection, through the same socket factory: a partition the probe sees closes it too.
      listen: (channel, handlers) =>
        listenOnPostgres(
          (more) => postgres(target.url, { ...target.options, onnotice: () => {}, backoff: reconnectDelayS, socket: reachability.socket, ...more } as object),
          channel,
          handlers,
          reconnectDelayS,
        ),
      close: async () => {
        await reachability.stop();
        await client.end({ timeout: 5 });
      },
    };
  }

  const { PGlite } = await import('@electric-sql/pglite');
  const { drizzle } = await import('drizzle-orm/pglite');
  const { migrate } = await import('drizzle-orm/pglite/migrator');
  const dir = path.join(options.dataDir, 'pgdata');
  assertWritable('The embedded database in', dir, ['PG_VERSION', 'global', 'global/pg_control', 'base', 'pg_wal']);
  // Durability as it is, on purpose. PGlite's `relaxedDurability` only skips awaiting `syncToFs`, which the Node
  // file system (NodeFS) leaves empty: it would buy nothing here. On Node PGlite never fsyncs (emscripten's NODEFS has
  // no fsync), but every commit's WAL is written to the file before COMMIT returns, so a crash of this process loses
  // no committed transaction (a power loss may, as before). `synchronous_commit = off` would break that: single-user
  // PGlite has no WAL writer, so commits would wait in memory until a later write; nothing lost on a crash is a
  // contract (see the shared DESIGN.md), so it is not used either.
  const lock = await lockDataDir(dir);
  let client: Awaited<ReturnType<typeof PGlite.create>>;
  try {
    client = guardNestedStatements(await PGlite.create(dir));
  } catch (error) {
    await lock.release();
    throw new Error(
      `Could not open the embedded database in ${dir} (${(error as Error).message}). If it was damaged (two processes wrote it at once, or the disk filled up), move it aside (mv ${dir} ${dir}.damaged) and start again: Atelier makes a new, empty one; or set DATABASE_URL to use Postgres.`,
    );
  }
  const db = drizzle(client, { schema }) as unknown as Db;
  transactionsOf.set(db, drizzle(client) as unknown as Db);
  directoriesOf.set(db, dir);
  try {
    await migrate(db as never, { migrationsFolder });
    refuseNewerDatabase(await latestApplied(db), migrationsFolder);
  } catch (error) {
    await client.close().catch(() => {});
    await lock.release();
    throw error;
  }
  // Once migrated (they write): from here the database turns read-only while its disk is nearly full.
  const reserve = await keepDiskReserve(client, dir, { log: options.log ?? ((message) => console.warn(message)) });
  return {
    db,
    kind: 'pglite',
    // One process, one connection that never drops: heard from the start, never down.
    listen: async (channel, handlers) => {
      const unlisten = await client.listen(channel, (payload: string) => handlers.notify(payload));
      handlers.up();
      return unlisten;
    },
    close: async () => {
      reserve.stop();
      await client.close();
      await lock.release();
    },
  };
}

/**
 * Runs `fn` while this process holds a session-level advisory lock, if free; returns false when another holder has it.
 * Real Postgres only (PGlite has one process, so nothing to guard). The lock lives on a connection reserved for it,
 * idle outside any transaction: it was once a transaction-level lock, and that transaction, idle for as long as `fn`
 * ran, kept its snapshot's xmin and so held back vacuum of every table (the object collector's pass takes hours on a
 * large store). When the lock's connection closes under `fn` (Postgres restarted), `fn` goes on, now without the lock:
 * its loss is thrown only once `fn` has ended, so that a caller's next pass (which may take the lock again) never runs
 * beside it.
 */
export async function withTryAdvisoryLock(db: Db, key: number, fn: () => Promise<void>, { reserveTimeoutMs = RESERVE_TIMEOUT_MS } = {}): Promise<boolean> {
  const reserve = sessionsOf.get(db);
  if (!reserve) throw new Error('withTryAdvisoryLock needs Postgres (DATABASE_URL): the embedded database has one process and nothing to guard');
  const session = await inTime(reserve(), reserveTimeoutMs, (late) => late.release());
  try {
    // The same for the lock's query on a reserved connection that died meanwhile (porsager/postgres#1199).
    const [row] = await inTime(session<{ ok: boolean }[]>`select pg_try_advisory_lock(${key}) as ok`, reserveTimeoutMs);
    if (!row?.ok) return false;
    let unlocked = false;
    try {
      await fn();
    } finally {
      // A lock whose backend died is gone with it; a query on that dead reserved connection may wait forever
      // (porsager/postgres#1199), so the unlock gets a few seconds. Unlocked even when `fn` failed: the connection
      // goes back to the pool.
      unlocked = await Promise.race([
        session<{ ok: boolean }[]>`select pg_advisory_unlock(${key}) as ok`.then(
          ([r]) => r?.ok === true,
          () => false,
        ),
        new Promise<false>((resolve) => setTimeout(() => resolve(false), 5_000).unref()),
      ]);
    }
    if (!unlocked) throw Object.assign(new Error('the advisory lock was lost while its work ran (its connection closed)'), { code: 'CONNECTION_CLOSED' });
    return true;
  } finally {
    session.release();
  }
}

/** A session-level lock held on a connection of its own until `release` (idempotent). */
export interface HeldLock {
  release(): Promise<void>;
}

/**
 * Takes a session-level advisory lock (`shared`: beside other shared holders, excluding an exclusive one), waiting for
 * it, and holds it until released: for a decision that spans several transactions (server/auth/admin-token.ts). Real
 * Postgres only: null on the embedded database (one process, nothing to guard). A lock whose connection closes is gone.
 */
export async function holdSessionLock(db: Db, key: number, { shared = false } = {}): Promise<HeldLock | null> {
  const reserve = sessionsOf.get(db);
  if (!reserve) return null;
  const session = await inTime(reserve(), RESERVE_TIMEOUT_MS, (late) => late.release());
  try {
    await (shared ? session`select pg_advisory_lock_shared(${key})` : session`select pg_advisory_lock(${key})`);
  } catch (error) {
    session.release();
    throw error;
  }
  let released: Promise<void> | undefined;
  return {
    release: () =>
      (released ??= (async () => {
        // The same few seconds as withTryAdvisoryLock's unlock, for a connection that died meanwhile (porsager/postgres#1199).
        const unlock = shared ? session`select pg_advisory_unlock_shared(${key})` : session`select pg_advisory_unlock(${key})`;
        await Promise.race([unlock.catch(() => {}), new Promise((r) => setTimeout(r, 5_000).unref())]);
        session.release();
      })()),
  };
}

/**
 * How long a reserved connection (and the lock's query on it) may take. A pool busy for longer (long statements on all
 * its connections) would hold the pass, and stopping the app, which waits for it: past this the pass fails as a lost
 * connection and is tried again; a reserve granted later is released at once. (postgres-js once never settled a
 * reserve whose awaited connection the server ended, porsager/postgres#1195; the driver's patch keeps such a reserve
 * queued until a connection is granted to it: test/db/advisory-lock.test.ts.)
 */
const RESERVE_TIMEOUT_MS = 10_000;

async function inTime<T>(pending: Promise<T>, ms: number, late?: (value: T) => void): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  let timedOut = false;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      timedOut = true;
      reject(
        Object.assign(
          new Error(
            `Postgres gave no connection within ${ms / 1000} s (all of the pool's connections stayed busy, or Postgres is restarting); tried again next pass`,
          ),
          {
            code: 'CONNECTION_CLOSED',
          },
        ),
      );
    }, ms);
    timer.unref();
  });
  try {
    return await Promise.race([pending, expired]);
  } finally {
    clearTimeout(timer);
    if (timedOut && late) pending.then(late, () => undefined);
  }
}

const codeOf = (error: unknown): unknown => (error as { code?: unknown })?.code ?? (error as { cause?: { code?: unknown } })?.cause?.code;
const routineOf = (error: unknown): unknown => (error as { routine?: unknown })?.routine ?? (error as { cause?: { routine?: unknown } })?.cause?.routine;

/**
 * Postgres refused a named statement (server/db/prepared.ts) whose result's columns changed since it was described: a
 * migration beside this process (another replica's) altered its table. The driver has forgotten the statement, so the
 * transaction run again describes it anew; outside a transaction the driver itself sends it again.
 */
const replanned = (error: unknown) => codeOf(error) === '0A000' && routineOf(error) === 'RevalidateCachedQuery';

/**
 * `db.transaction(fn)`, run again when Postgres aborted it as a deadlock's victim or a serialization failure: such an
 * abort undoes everything the transaction did and says nothing about its work, so Postgres' documentation asks the
 * application to retry it; and when it met a named statement whose result changed (`replanned`). `fn` must only write
 * through `tx` (what it changes elsewhere is made again). At most 5 tries, a few jittered milliseconds apart; any other
 * error, or the fifth abort, is thrown.
 */
export async function retryingTransaction<T>(db: Db, fn: (tx: Tx) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await transactionLettingGo(transactionsOf.get(db) ?? db, fn);
    } catch (error) {
      if (attempt >= 5 || !(TRANSIENT_ABORTS.has(codeOf(error) as string) || replanned(error))) throw error;
      await new Promise((resolve) => setTimeout(resolve, attempt * 5 + Math.random() * 10));
    }
  }
}

/**
 * `db.transaction(fn)`, where what the driver keeps of the transaction once it has ended reaches neither `fn` nor its
 * result. postgres-js keeps a connection's last transaction until the connection begins another (the handler of its
 * closing statement, from the connection's `onclose`): its function, its result, and through the function's closure
 * the orchestrator's step (`transact`: a 10,000-task startRun's messages and events, 11 MB). The driver is handed a
 * function that reaches `fn` only until the transaction has ended, and that answers nothing (the result is passed
 * beside it).
 */
async function transactionLettingGo<T>(db: Db, fn: (tx: Tx) => Promise<T>): Promise<T> {
  const held: { fn?: (tx: Tx) => Promise<T>; result?: T } = { fn };
  try {
    await db.transaction(async (tx) => {
      held.result = await held.fn!(tx);
    });
    return held.result as T;
  } finally {
    held.fn = held.result = undefined;
  }
}

/**
 * Sends the transaction's COMMIT behind the statements already sent, without waiting for their answers (postgres-js as
 * patched in server/db/patches; on PGlite nothing: it commits when the transaction's function returns). After it the
 * function must only await what it has sent: a statement that fails turns that COMMIT into a ROLLBACK and fails the
 * transaction with its error; one that failed already, or `mayCommit()` answering false in the next turn of the event
 * loop (when the COMMIT is sent), sends a ROLLBACK instead.
 */
export function commitBehind(tx: Tx, mayCommit?: () => boolean): void {
  // The driver keeps the first stack of each statement text for as long as the process runs (its errors' origin), the
  // closures on it included: the COMMIT's names the function that asks `mayCommit`, so it is asked through one that
  // lets go of it once it has answered.
  let ask = mayCommit;
  let answer = true;
  const once =
    mayCommit &&
    (() => {
      if (ask) [answer, ask] = [ask(), undefined];
      return answer;
    });
  (tx as unknown as { session?: { client?: { commitBehind?: (mayCommit?: () => boolean) => void } } }).session?.client?.commitBehind?.(once);
}

/** Runs raw SQL and returns its rows, whichever driver is underneath (postgres-js gives an array, PGlite `{ rows }`). */
/** When the database's latest migration was made (drizzle's `created_at`, the journal's `when`). */
async function latestApplied(db: Db): Promise<string | undefined> {
  const [row] = await queryRows<{ created_at: string }>(db, sql`select created_at from drizzle.__drizzle_migrations order by created_at desc limit 1`);
  return row?.created_at;
}

/**
 * A Date passed to a raw `sql` template (`e.at < ${date}`) reaches postgres-js as it is: the driver infers timestamptz
 * for it, and drizzle replaces that type's serializer with a pass-through (its columns turn dates into text before),
 * so the query failed on Postgres ("The \"string\" argument must be of type string … Received an instance of Date")
 * while PGlite took it. Dates become ISO text for every query; text passes through as drizzle wants.
 */
function serializeDates(serializers: Record<string, (value: unknown) => unknown>): void {
  const pass = serializers[TIMESTAMPTZ];
  serializers[TIMESTAMPTZ] = (value) => (value instanceof Date ? value.toISOString() : pass ? pass(value) : value);
}
const TIMESTAMPTZ = '1184';

export async function queryRows<T>(db: Db | Tx, query: SQL): Promise<T[]> {
  const result = (await db.execute(query)) as unknown as T[] | { rows: T[] };
  return Array.isArray(result) ? result : result.rows;
}
