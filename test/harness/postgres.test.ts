// The test Postgres harness: a cluster serving an empty `atelier` database, or one with every migration applied.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../server/db/client';
import { repoRoot } from './cli';
import { type PostgresServer, startPostgres } from './postgres';

describe('postgres harness', () => {
  let server: PostgresServer | undefined;

  beforeAll(async () => {
    server = await startPostgres();
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
  }, 30_000);

  it('serves the atelier database on its URL', async () => {
    const sql = postgres(server!.url, { max: 1, onnotice: () => undefined });
    try {
      const [row] = await sql`select 1 as one, current_database() as db`;
      expect(row).toEqual({ one: 1, db: 'atelier' });
    } finally {
      await sql.end();
    }
  });
});

describe('postgres harness, migrated', () => {
  it('serves an atelier database with every migration applied, which a control plane opens as it is', async () => {
    const journal = JSON.parse(readFileSync(path.join(repoRoot, 'server', 'db', 'migrations', 'meta', '_journal.json'), 'utf8')) as {
      entries: { when: number }[];
    };
    const server = await startPostgres({ migrated: true });
    const sql = postgres(server.url, { max: 1, onnotice: () => undefined });
    try {
      const applied = await sql`select created_at from drizzle.__drizzle_migrations order by created_at`;
      expect(applied.map((row) => Number(row.created_at))).toEqual(journal.entries.map((entry) => entry.when));
      const db = await openDatabase({ url: server.url, dataDir: '' });
      await db.close();
      expect((await sql`select count(*)::int as n from drizzle.__drizzle_migrations`)[0]!.n).toBe(journal.entries.length);
    } finally {
      await sql.end();
      await server.stop();
    }
  }, 120_000);
});
