// Hot-path queries built once (server/db/prepared.ts): the SQL is built on the first call only, every call fills its
// own placeholders, runs on the session it is handed (inside a transaction it sees that transaction's writes) and maps
// rows as drizzle's builder does (dates, a left join's missing side as null, nested objects). Real Postgres and PGlite.
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { eq, sql, TransactionRollbackError } from 'drizzle-orm';
import { integer, PgDialect, pgTable, text, timestamp } from 'drizzle-orm/pg-core';
import { drizzle } from 'drizzle-orm/postgres-js';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type Database, type Db, openDatabase, queryRows, retryingTransaction } from '../../server/db/client';
import { builtOnce, preparedRows, sqlOnce } from '../../server/db/prepared';
import { countingPool } from '../harness/counting-pool';
import { type PostgresServer, startPostgres } from '../harness/postgres';

const parents = pgTable('built_once_parents', { id: integer('id').primaryKey(), name: text('name').notNull(), at: timestamp('at', { withTimezone: true }) });
const children = pgTable('built_once_children', { id: integer('id').primaryKey(), parentId: integer('parent_id').notNull(), label: text('label') });

const byName = builtOnce<{ name: string }>()((db) =>
  db
    .select({ parent: parents, child: children, upper: sql<string>`upper(${parents.name})` })
    .from(parents)
    .leftJoin(children, eq(children.parentId, parents.id))
    .where(eq(parents.name, sql.placeholder('name'))),
);
const rename = builtOnce<{ id: number; name: string }>()((db) =>
  db
    .update(parents)
    .set({ name: sql`${sql.placeholder('name')}` })
    .where(eq(parents.id, sql.placeholder('id')))
    .returning({ id: parents.id, name: parents.name }),
);

let pg: PostgresServer;
const databases: Record<string, Database> = {};

beforeAll(async () => {
  pg = await startPostgres();
  databases.postgres = await openDatabase({ url: pg.url, dataDir: await mkdtemp(path.join(os.tmpdir(), 'atelier-built-once-')) });
  databases.pglite = await openDatabase({ dataDir: await mkdtemp(path.join(os.tmpdir(), 'atelier-built-once-')) });
  for (const { db } of Object.values(databases)) {
    await db.execute(sql`create table built_once_parents (id int primary key, name text not null, at timestamptz)`);
    await db.execute(sql`create table built_once_children (id int primary key, parent_id int not null, label text)`);
    await db.execute(sql`insert into built_once_parents values (1, 'ada', '2026-01-02T03:04:05Z'), (2, 'bob', null)`);
    await db.execute(sql`insert into built_once_children values (10, 1, 'first')`);
  }
}, 120_000);
afterAll(async () => {
  for (const d of Object.values(databases)) await d.close();
  await pg?.stop();
});

describe.each(['postgres', 'pglite'])('on %s', (kind) => {
  it('maps rows as the builder does, each call with its own values', async () => {
    const { db } = databases[kind]!;
    expect(await byName(db, { name: 'ada' })).toEqual([
      { parent: { id: 1, name: 'ada', at: new Date('2026-01-02T03:04:05Z') }, child: { id: 10, parentId: 1, label: 'first' }, upper: 'ADA' },
    ]);
    expect(await byName(db, { name: 'bob' })).toEqual([{ parent: { id: 2, name: 'bob', at: null }, child: null, upper: 'BOB' }]);
    expect(await byName(db, { name: 'nobody' })).toEqual([]);
  });

  it('raw SQL built once gives its rows as queryRows does', async () => {
    const { db } = databases[kind]!;
    const names = sqlOnce<{ ids: string }>()<{ id: number; name: string }>(
      () => sql`select id, name from built_once_parents where id = any(${sql.placeholder('ids')}::int[]) order by id`,
    );
    expect(await names(db, { ids: '{1,2}' })).toEqual([
      { id: 1, name: 'ada' },
      { id: 2, name: 'bob' },
    ]);
    expect(await names(db, { ids: '{}' })).toEqual([]);
  });

  it('runs on the transaction it is handed: it sees, and makes, that transaction’s writes', async () => {
    const { db } = databases[kind]!;
    await db
      .transaction(async (tx) => {
        expect(await rename(tx, { id: 2, name: 'carl' })).toEqual([{ id: 2, name: 'carl' }]);
        expect((await byName(tx, { name: 'carl' })).map((r) => r.parent.id)).toEqual([2]);
        if (kind === 'postgres') expect(await byName(db, { name: 'carl' })).toEqual([]); // not committed (PGlite: one connection, it would wait)
        tx.rollback();
      })
      .catch(() => undefined);
    expect(await byName(db, { name: 'carl' })).toEqual([]);
  });
});

it('is sent when awaited, as a builder is: it does not overtake a statement issued before it on a transaction', async () => {
  const { db } = databases.postgres!;
  await db
    .transaction(async (tx) => {
      const inserted = queryRows(tx, sql`insert into built_once_parents values (3, 'dan', null)`);
      expect((await byName(tx, { name: 'dan' })).map((r) => r.parent.id)).toEqual([3]);
      await inserted;
      tx.rollback();
    })
    .catch((error) => expect(error).toBeInstanceOf(TransactionRollbackError));
});

it('sent prepared, neither overtakes nor is overtaken by a statement issued beside it on a transaction', async () => {
  const { db } = databases.postgres!;
  await db
    .transaction(async (tx) => {
      const inserted = queryRows(tx, sql`insert into built_once_parents values (4, 'eve', null)`);
      expect(await preparedRows(tx, sql`select id from built_once_parents where name = ${'eve'}`)).toEqual([{ id: 4 }]);
      const renamed = preparedRows(tx, sql`update built_once_parents set name = ${'fay'} where id = ${4}`);
      expect(await queryRows(tx, sql`select id from built_once_parents where name = ${'fay'}`)).toEqual([{ id: 4 }]);
      await Promise.all([inserted, renamed]);
      tx.rollback();
    })
    .catch((error) => expect(error).toBeInstanceOf(TransactionRollbackError));
});

it('builds its SQL once, whatever the session', async () => {
  const build = vi.spyOn(PgDialect.prototype, 'sqlToQuery');
  const once = builtOnce<{ name: string }>()((db) =>
    db
      .select({ id: parents.id })
      .from(parents)
      .where(eq(parents.name, sql.placeholder('name'))),
  );
  const { db } = databases.postgres!;
  expect(await once(db, { name: 'ada' })).toEqual([{ id: 1 }]);
  await db.transaction(async (tx) => expect(await once(tx, { name: 'bob' })).toEqual([{ id: 2 }]));
  expect(await once(databases.pglite!.db, { name: 'ada' })).toEqual([{ id: 1 }]);
  expect(build).toHaveBeenCalledTimes(1);
  build.mockRestore();
});

it('is kept prepared on each connection: parsed once there, not on every call', async () => {
  // One connection, so every call below and the look at its prepared statements run on the same one.
  const { sql: client } = countingPool(pg.url);
  const single = { db: drizzle(client) as unknown as Db };
  try {
    const names = sqlOnce<{ id: number }>()<{ name: string }>(() => sql`select name from built_once_parents where id = ${sql.placeholder('id')}::int`);
    for (let i = 0; i < 8; i++) {
      expect(await names(single.db, { id: 1 })).toEqual([{ name: 'ada' }]);
      // Built per call, one text whatever the value.
      expect(await preparedRows(single.db, sql`select id as built_once_parents from built_once_parents where name = ${i % 2 ? 'ada' : 'bob'}`)).toHaveLength(1);
      await single.db.transaction(async (tx) => expect(await byName(tx, { name: 'bob' })).toHaveLength(1));
    }
    const prepared = await queryRows<{ statement: string; runs: number }>(
      single.db,
      sql`select statement, (generic_plans + custom_plans)::int as runs from pg_prepared_statements where statement like '%built_once_parents%' order by statement`,
    );
    const kind = (statement: string) => (statement.startsWith('select name') ? 'sqlOnce' : statement.startsWith('select id') ? 'preparedRows' : 'builtOnce');
    expect(prepared.map((p) => [kind(p.statement), p.runs])).toEqual([
      ['builtOnce', 8],
      ['preparedRows', 8],
      ['sqlOnce', 8],
    ]);
  } finally {
    await client.end({ timeout: 1 });
  }
});

it('keeps nothing prepared with ?prepare=false on the URL (a pooler that cannot keep prepared statements)', async () => {
  const client = postgres(`${pg.url}${pg.url.includes('?') ? '&' : '?'}prepare=false`, { max: 1, onnotice: () => undefined });
  try {
    const db = drizzle(client) as unknown as Db;
    for (let i = 0; i < 3; i++) expect(await byName(db, { name: 'ada' })).toHaveLength(1);
    expect(await queryRows(db, sql`select name from pg_prepared_statements`)).toEqual([]);
  } finally {
    await client.end({ timeout: 1 });
  }
});

it('is described again, in a transaction run again, when a change to its table alters the rows it returns', async () => {
  // A migration applied by another replica while this one runs: Postgres refuses to run a named statement whose result
  // columns changed (RevalidateCachedQuery), the driver forgets it, and the transaction is run again with it described anew.
  const client = postgres(pg.url, { max: 1, onnotice: () => undefined });
  const db = drizzle(client) as unknown as Db;
  try {
    await db.execute(sql`create table built_once_altered (id int primary key)`);
    await db.execute(sql`insert into built_once_altered values (1)`);
    const all = sqlOnce<{ above: number }>()(() => sql`select * from built_once_altered where id > ${sql.placeholder('above')}::int order by id`);
    expect(await retryingTransaction(db, (tx) => all(tx, { above: 0 }))).toEqual([{ id: 1 }]);
    await db.execute(sql`alter table built_once_altered add column label text`);
    expect(await retryingTransaction(db, (tx) => all(tx, { above: 0 }))).toEqual([{ id: 1, label: null }]);
  } finally {
    await client.end({ timeout: 1 });
  }
});
