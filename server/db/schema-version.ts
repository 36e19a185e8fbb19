// Whether this code knows every migration its database has had. drizzle's migrator applies only migrations newer than
// the database's latest and says nothing when the database is ahead, so a replica left on the old version in a
// rolling upgrade (restarted by its supervisor), or a deploy rolled back, would run on a schema it does not know and
// write rows the newer code reads wrongly. Such a replica refuses to start instead, saying what to do.
import { readFileSync } from 'node:fs';
import path from 'node:path';

/** The database has migrations this code does not: started on it, older code could corrupt it. */
export class DatabaseNewerThanCodeError extends Error {
  readonly code = 'DATABASE_NEWER_THAN_CODE';
}

/** The latest migration of the committed journal: its tag and the time drizzle records as its `created_at`. */
export function latestKnownMigration(migrationsFolder: string): { tag: string; when: number } {
  const journal = JSON.parse(readFileSync(path.join(migrationsFolder, 'meta', '_journal.json'), 'utf8')) as { entries: { tag: string; when: number }[] };
  const last = journal.entries.at(-1);
  if (!last) throw new Error(`${migrationsFolder} holds no migrations`);
  return last;
}

/** Throws DatabaseNewerThanCodeError when the database's latest applied migration is newer than this code's. */
export function refuseNewerDatabase(latestApplied: string | number | null | undefined, migrationsFolder: string): void {
  if (latestApplied === null || latestApplied === undefined) return;
  const known = latestKnownMigration(migrationsFolder);
  const applied = Number(latestApplied);
  if (applied <= known.when) return;
  throw new DatabaseNewerThanCodeError(
    `The database was migrated by a newer Atelier (its latest migration is from ${new Date(applied).toISOString()}; this version knows up to ` +
      `${known.tag}, from ${new Date(known.when).toISOString()}). Running this older version on it could corrupt it, so it does not start: ` +
      'run the version the other replicas run (or newer); to go back to this version, restore the backup taken before the upgrade (see "Upgrades" in the README).',
  );
}
