// Upgrading a database that holds metrics across migration 0045 (rollups stored packed): the rollups a database
// at 0044 held, one row per bucket in `metric_rollups`, come out of the migration as exactly the pages today's store
// writes for the same points. The old rows are the current pages unpacked (one row per bucket, each cell as the
// array it was), written into a database migrated up to 0044 with drizzle's own migrator; the rest of the
// migrations then run on it as `npm start` would run them on an existing data directory.
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { sql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/pglite';
import { migrate } from 'drizzle-orm/pglite/migrator';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { queryRows } from '../../server/db/client';
import { repoRoot } from '../harness/cli';
import { openTestDatabase } from '../harness/pglite-template';
import { seedRun } from '../tracking/seed';

const migrations = path.join(repoRoot, 'server', 'db', 'migrations');
let current: Awaited<ReturnType<typeof openTestDatabase>> | undefined;
let scratch: string | undefined;

beforeAll(async () => {
  current = await openTestDatabase('migration-0045');
  scratch = await mkdtemp(path.join(os.tmpdir(), 'atelier-migration-0045-'));
}, 60_000);

afterAll(async () => {
  await current?.close();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

/** The migrations folder as it stood before `tag` (its journal cut there). */
async function migrationsBefore(tag: string): Promise<string> {
  const dir = path.join(scratch!, 'migrations');
  await cp(migrations, dir, { recursive: true });
  const journalFile = path.join(dir, 'meta', '_journal.json');
  const journal = JSON.parse(await readFile(journalFile, 'utf8')) as { entries: { tag: string }[] };
  const at = journal.entries.findIndex((e) => e.tag === tag);
  expect(at, `migration ${tag} is in the journal`).toBeGreaterThan(0);
  journal.entries = journal.entries.slice(0, at);
  await writeFile(journalFile, JSON.stringify(journal));
  return dir;
}

/** Every page, in key order. */
const pagesInOrder = sql`select * from metric_rollup_pages order by task_id, name, attempt, axis, shift, page`;

/** The pages unpacked into 0044's rows: one per bucket, its cells as the arrays they were (lo and hi null when no number). */
const unpacked = sql`
  select p.task_id, p.name, p.attempt, p.axis, p.shift, p.buckets[i] as bucket, p.ns[i] as n,
    case when p.lo_value[i] is null then null else array[p.lo_value[i], p.lo_seq[i], p.lo_step[i]] end as lo,
    case when p.hi_value[i] is null then null else array[p.hi_value[i], p.hi_seq[i], p.hi_step[i]] end as hi,
    array[p.first_key[i], p.first_seq[i], p.first_step[i], p.first_value[i]] as first,
    array[p.last_key[i], p.last_seq[i], p.last_step[i], p.last_value[i]] as last
  from metric_rollup_pages p, generate_subscripts(p.buckets, 1) as i`;

it('moves the rollups of a database at 0044 into the pages the store writes today', async () => {
  const db = current!.database.db;
  // A series that fills several pages of the finest levels, with a NaN inside; another with ±Infinity, steps below zero
  // and a bucket holding only NaN (no lo or hi).
  const long = Array.from({ length: 5_000 }, (_, i): [string, number, number] => ['loss', Math.sin(i / 50) + (i === 1234 ? Number.NaN : 0), i]);
  const odd: [string, number, number][] = [
    ['acc', Number.POSITIVE_INFINITY, -40],
    ['acc', 0.5, -3],
    ['acc', Number.NaN, 7],
    ['acc', Number.NEGATIVE_INFINITY, 700],
  ];
  await seedRun(db, { tasks: [long, odd], experiment: 'upgrade' });
  const expected = await queryRows<Record<string, unknown>>(db, pagesInOrder);
  expect(expected.length).toBeGreaterThan(10);
  const oldRows = await queryRows<Record<string, unknown>>(db, unpacked);

  // A database at 0044, holding those rows as 0044 stored them.
  const client = await PGlite.create(path.join(scratch!, 'pgdata'));
  try {
    const old = drizzle(client);
    await migrate(old, { migrationsFolder: await migrationsBefore('0045_packed-rollups') });
    await old.execute(sql`
      insert into metric_rollups (task_id, name, attempt, axis, shift, bucket, n, lo, hi, first, last)
      select * from json_populate_recordset(null::metric_rollups, ${JSON.stringify(oldRows, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v))}::json)`);
    const [count] = await queryRows<{ n: number }>(old as never, sql`select count(*)::int as n from metric_rollups`);
    expect(count?.n).toBe(oldRows.length);

    // Upgraded as `npm start` upgrades an existing data directory.
    await migrate(old, { migrationsFolder: migrations });
    expect(await queryRows<Record<string, unknown>>(old as never, pagesInOrder)).toEqual(expected);
    const [table] = await queryRows<{ gone: boolean }>(old as never, sql`select to_regclass('metric_rollups') is null as gone`);
    expect(table?.gone).toBe(true);
  } finally {
    await client.close();
  }
}, 120_000);
