// The database's incarnation: an id drawn anew whenever the database is no longer the physical one it was drawn for
// (restored from a dump into a new database, recovered to a point in time, a replica promoted, the embedded database's
// data directory copied). Every message id the control plane hands the bus carries it (busMessageId), so an id a
// restored database issues again (the same outbox row, the same task attempt), which the bus saw from the history the
// restore went back over, is a new id to the bus's dedupe and not dropped as a repeat; within one incarnation the same
// row keeps its id, and the bus still drops a row republished after a crash.
import { realpath, stat } from 'node:fs/promises';
import { sql } from 'drizzle-orm';
import { type Db, embeddedDirectory, queryRows } from '../db/client';
import { installation } from '../db/tables/installation';

/**
 * What tells one physical database from another, stable across restarts: the cluster's system identifier (a new one
 * per initdb), the database's oid (a new one per createdb), the installation table's oid (a new one per pg_restore,
 * which makes every table again) and the WAL timeline (a new one per point-in-time recovery or promotion). A copy of
 * the data directory (the embedded database's backup) has all four of its original: on the embedded database the
 * directory's place is added (directoryPlace).
 */
async function databaseFingerprint(db: Db): Promise<string> {
  const directory = embeddedDirectory(db);
  const fingerprint = await serverFingerprint(db);
  return directory ? `${fingerprint}:${await directoryPlace(directory)}` : fingerprint;
}

/**
 * What tells the embedded database's files from a copy of them, stable across restarts: the directory's real path
 * (a copy elsewhere: the lock tells them apart by it too, data-dir-lock.ts) and, where the file system records one
 * (ext4, xfs, btrfs; 0 elsewhere, left out), its birth time, which every copy (`cp -a`, `tar`, a backup put back at
 * the same path or on another machine) makes anew and a restart, a rename or a snapshot of the whole disk keeps. A
 * directory moved elsewhere draws a new incarnation too: the ids it issues again are new to the bus, as a restore's.
 */
async function directoryPlace(directory: string): Promise<string> {
  const real = await realpath(directory);
  const { birthtimeNs } = await stat(real, { bigint: true });
  return birthtimeNs ? `${real}@${birthtimeNs}` : real;
}

async function serverFingerprint(db: Db): Promise<string> {
  const parts = sql`(select oid from pg_database where datname = current_database()), 'installation'::regclass::oid,
    substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)`;
  try {
    const [row] = await queryRows<{ f: string }>(db, sql`select concat_ws(':', (select system_identifier from pg_control_system()), ${parts}) as f`);
    return row!.f;
  } catch {
    // A server that keeps pg_control_system from this role: the rest still changes with a restore into a new database.
    const [row] = await queryRows<{ f: string }>(db, sql`select concat_ws(':', ${parts}) as f`);
    return row!.f;
  }
}

/**
 * The incarnation, drawn anew first if the database is not the one it was drawn for. Replicas starting together draw
 * one: the update re-reads the row it waited on, which then matches.
 */
export async function databaseIncarnation(db: Db): Promise<string> {
  const fingerprint = await databaseFingerprint(db);
  await db.insert(installation).values({ one: true, incarnationOf: fingerprint }).onConflictDoNothing();
  await db.execute(
    sql`update installation set incarnation = gen_random_uuid(), incarnation_of = ${fingerprint} where incarnation_of is distinct from ${fingerprint}`,
  );
  const [row] = await db.select({ incarnation: installation.incarnation }).from(installation);
  return row!.incarnation;
}

/** The id the bus dedupes `msgId` (an outbox row's, a task attempt's) by: the incarnation's first 12 hex digits before it. */
export const busMessageId = (incarnation: string, msgId: string): string => `${incarnation.replaceAll('-', '').slice(0, 12)}/${msgId}`;
