// A replica whose code is older than its database (left behind in a rolling upgrade and restarted, or a rolled-back
// deploy), on real Postgres: it refuses to start, saying the database was migrated by a newer version and what to
// do, and changes nothing; a replica of the database's own version starts as before.
import os from 'node:os';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { openDatabase, queryRows } from '../../server/db/client';
import { DatabaseNewerThanCodeError, latestKnownMigration } from '../../server/db/schema-version';
import { repoRoot } from '../harness/cli';
import { type PostgresServer, startPostgres } from '../harness/postgres';

let pg: PostgresServer;
beforeAll(async () => {
  pg = await startPostgres();
}, 120_000);
afterAll(async () => {
  await pg?.stop();
});

const open = () => openDatabase({ url: pg.url, dataDir: os.tmpdir() });
const migrations = async (database: Awaited<ReturnType<typeof open>>) =>
  queryRows<{ hash: string; created_at: string }>(database.db, sql`select hash, created_at from drizzle.__drizzle_migrations order by id`);

it('refuses to start older code on a database a newer version migrated, and changes nothing', async () => {
  const current = await open();
  const known = latestKnownMigration(path.join(repoRoot, 'server', 'db', 'migrations'));
  // What a newer version's start leaves: one more migration, made after this code's latest.
  await current.db.execute(sql`insert into drizzle.__drizzle_migrations (hash, created_at) values ('from-a-newer-version', ${known.when + 60_000})`);
  const before = await migrations(current);

  const refused = await open().then(
    (d) => d.close().then(() => undefined),
    (error: unknown) => error,
  );
  expect(refused).toBeInstanceOf(DatabaseNewerThanCodeError);
  expect((refused as Error).message).toMatch(/migrated by a newer Atelier.*this version knows up to 0\d+_\w+.*run the version the other replicas run/);
  expect(await migrations(current)).toEqual(before);

  // The newer version's own start (here: the row gone again, as if this code had written it) is not refused.
  await current.db.execute(sql`delete from drizzle.__drizzle_migrations where hash = 'from-a-newer-version'`);
  const again = await open();
  await again.close();
  await current.close();
}, 60_000);
