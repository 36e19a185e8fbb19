// The object store's collector on real Postgres holds nothing open that holds back vacuum while a pass runs. A pass once
// kept its candidates in a temporary table, so in one transaction from the store's listing to its last delete: that
// transaction's id was the oldest running, and no table's dead rows could be vacuumed for as long as the pass took (on a
// large S3 store, hours). Here a pass is held at its first delete while Postgres is asked what its sessions pin.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { objectCollector } from '../../server/artifacts/collect';
import { createFileObjectStore, type ObjectStore } from '../../server/artifacts/store';
import { type Database, openDatabase, queryRows } from '../../server/db/client';
import { objectGcCandidates } from '../../server/db/tables/object-stores';
import { type AppDatabase, appDatabase } from '../harness/shared-postgres';

let pg: AppDatabase;
let database: Database;
let dir = '';

beforeAll(async () => {
  pg = await appDatabase();
  dir = await mkdtemp(path.join(os.tmpdir(), 'atelier-collect-vacuum-'));
  database = await openDatabase({ url: pg.url, dataDir: dir, maxConnections: 4 });
}, 120_000);

afterAll(async () => {
  await database?.close();
  await pg?.drop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

it('a pass pins no transaction id or snapshot between its statements, and leaves no candidates behind', async () => {
  const { db } = database;
  const files = createFileObjectStore(path.join(dir, 'objects'));
  const orphans = await Promise.all([0, 1, 2].map(() => files.put(randomBytes(32))));
  let reachedDelete!: () => void;
  const atDelete = new Promise<void>((resolve) => (reachedDelete = resolve));
  let letGo!: () => void;
  const released = new Promise<void>((resolve) => (letGo = resolve));
  const store: ObjectStore = {
    ...files,
    async delete(digest, untouchedBefore) {
      reachedDelete();
      await released;
      return files.delete(digest, untouchedBefore);
    },
  };
  const logged: string[] = [];
  const collector = objectCollector({
    db,
    store,
    graceMs: 0,
    everyMs: 3_600_000,
    checkEveryMs: 10,
    leaderLock: true,
    log: (m) => logged.push(m),
  });
  collector.start();
  try {
    await atDelete;
    // Every session of this database but the one asking: none has a transaction id, none a snapshot it keeps.
    const pinned = await queryRows<{ pid: number; state: string; xid: string | null; xmin: string | null; query: string }>(
      db,
      sql`select pid, state, backend_xid::text as xid, backend_xmin::text as xmin, query from pg_stat_activity
          where datname = current_database() and pid <> pg_backend_pid() and (backend_xid is not null or backend_xmin is not null)`,
    );
    expect(pinned).toEqual([]);
  } finally {
    letGo();
    await collector.stop();
  }
  expect(logged.at(-1)).toMatch(/object store collector: \d+ object\(s\) seen, 3 unreferenced .* 3 deleted/);
  for (const digest of orphans) expect(await files.exists(digest)).toBe(false);
  expect(await db.select().from(objectGcCandidates)).toEqual([]);
});
