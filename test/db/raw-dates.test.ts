// A Date passed to a raw `sql` template works on both databases: on Postgres drizzle's pass-through serializer handed
// the Date to postgres-js, which refused it, so every raw query comparing with a Date (the registrations' recovery
// pass, server/registry/from-tasks.ts) failed there while passing on PGlite.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { expect, it } from 'vitest';
import { openDatabase, queryRows } from '../../server/db/client';
import { seedEmbeddedDatabase } from '../harness/pglite-template';
import { appDatabase } from '../harness/shared-postgres';

const when = new Date('2026-01-02T03:04:05.678Z');

async function compare(url: string | undefined, dataDir: string) {
  const database = await openDatabase({ url, dataDir });
  try {
    const [row] = await queryRows<{ same: boolean; before: boolean; text: string }>(
      database.db,
      sql`select ${when} = '2026-01-02T03:04:05.678Z'::timestamptz as same, ${when} < now() as before, ${'plain text'}::text as text`,
    );
    expect(row).toEqual({ same: true, before: true, text: 'plain text' });
  } finally {
    await database.close();
  }
}

it('takes a Date in a raw query on Postgres', async () => {
  const database = await appDatabase();
  try {
    await compare(database.url, '');
  } finally {
    await database.drop();
  }
});

it('takes a Date in a raw query on the embedded database', async () => {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'atelier-raw-dates-'));
  try {
    await seedEmbeddedDatabase(dataDir);
    await compare(undefined, dataDir);
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
});
