// The collector as replicas run it (server/artifacts/collect.ts `objectCollector`) on a real Postgres: two replicas
// sharing one database and one store check often, and only one pass runs (the advisory lock, then the last pass's
// audit entry); the pass deletes the aged orphan and keeps the referenced object, through postgres-js this time.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, utimes } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { and, eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { lastCollection, objectCollector } from '../../server/artifacts/collect';
import { createFileObjectStore } from '../../server/artifacts/store';
import { type Database, openDatabase } from '../../server/db/client';
import { auditEvents } from '../../server/db/tables/governance';
import { type PostgresServer, startPostgres } from '../harness/postgres';

let server: PostgresServer | undefined;
const databases: Database[] = [];
let dir: string | undefined;

beforeAll(async () => {
  server = await startPostgres();
  for (let i = 0; i < 2; i++) databases.push(await openDatabase({ url: server.url, dataDir: '/nonexistent', maxConnections: 3 }));
  dir = await mkdtemp(path.join(os.tmpdir(), 'atelier-collector-replicas-'));
}, 120_000);

afterAll(async () => {
  for (const database of databases) await database.close();
  await server?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
}, 30_000);

it('runs one pass among replicas, deleting the aged orphan and keeping the referenced object', async () => {
  const store = createFileObjectStore(dir!);
  const referenced = await store.put(randomBytes(32));
  const orphan = await store.put(randomBytes(32));
  const old = new Date(Date.now() - 48 * 3_600_000);
  for (const digest of [referenced, orphan]) {
    const hex = digest.slice('sha256:'.length);
    await utimes(path.join(dir!, 'sha256', hex.slice(0, 2), hex), old, old);
  }
  await databases[0]!.db.execute(
    sql`insert into audit_events (action, decision, subject, rule, details) values ('test.ref', 'allow', 'test', 'test', ${JSON.stringify({ digest: referenced })}::jsonb)`,
  );

  const logs: string[] = [];
  const collectors = databases.map((database) =>
    objectCollector({
      db: database.db,
      store,
      everyMs: 24 * 3_600_000,
      graceMs: 3_600_000,
      leaderLock: true,
      checkEveryMs: 10,
      log: (m) => logs.push(m),
    }),
  );
  for (const collector of collectors) await collector.start();
  try {
    while (!(await lastCollection(databases[0]!.db))) await new Promise((r) => setTimeout(r, 20));
    // Both replicas go on checking for a while; neither may run a second pass within the interval.
    const until = Date.now() + 300;
    while (Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  } finally {
    for (const collector of collectors) await collector.stop();
  }

  const passes = await databases[0]!.db
    .select()
    .from(auditEvents)
    .where(and(eq(auditEvents.action, 'objects.collect'), eq(auditEvents.subject, 'object-store')));
  expect(passes).toHaveLength(1);
  expect(passes[0]!.details).toMatchObject({ backend: 'local', seen: 2, unreferenced: 1, deleted: 1, bytesFreed: 32 });
  expect(logs.filter((m) => m.includes('will retry'))).toEqual([]);
  expect(await store.exists(referenced)).toBe(true);
  expect(await store.exists(orphan)).toBe(false);
}, 60_000);
