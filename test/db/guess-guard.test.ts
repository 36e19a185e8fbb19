// `atelier_expect` (migration 0073, server/db/guess-guard.ts): a guard sent ahead of writes that depend on a guess.
// When the guess holds the writes are kept; when it does not (false or null) the transaction is aborted with SQLSTATE
// AT001, nothing it wrote is kept, and `guessMissed` recognizes the error, on Postgres and on the embedded database.
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Database, openDatabase, queryRows } from '../../server/db/client';
import { expectGuess, guessMissed } from '../../server/db/guess-guard';
import { seedEmbeddedDatabase } from '../harness/pglite-template';
import { type PostgresServer, startPostgres } from '../harness/postgres';

async function experimentsNamed(database: Database, name: string): Promise<number> {
  const [row] = await queryRows<{ n: number }>(database.db, sql`select count(*)::int as n from experiments where name = ${name}`);
  return row!.n;
}

function guarding(database: () => Database): void {
  it('keeps the writes after a guess that holds', async () => {
    await database().db.transaction(async (tx) => {
      await tx.execute(sql`insert into experiments (name) values ('guess-held')`);
      const [row] = await queryRows<{ held: boolean }>(tx, expectGuess(sql`${1}::int = 1`, 'one'));
      expect(row!.held).toBe(true);
    });
    expect(await experimentsNamed(database(), 'guess-held')).toBe(1);
  });

  it.each([
    ['false', sql`${2}::int = 1`],
    ['null', sql`(select true from experiments where name = 'no such experiment')`],
  ])('aborts the transaction on a guess that is %s, keeping none of its writes', async (_, holds) => {
    const name = `guess-missed-${_}`;
    const error = await database()
      .db.transaction(async (tx) => {
        await tx.execute(sql`insert into experiments (name) values (${name})`);
        await tx.execute(expectGuess(holds, 'the experiment'));
        await tx.execute(sql`insert into experiments (name) values (${`${name}-after`})`);
      })
      .then(
        () => null,
        (caught: unknown) => caught,
      );
    expect(guessMissed(error)).toBe(true);
    expect(String((error as { cause?: Error }).cause?.message ?? (error as Error).message)).toMatch(/the guess about the experiment did not hold/);
    expect(await experimentsNamed(database(), name)).toBe(0);
    expect(await experimentsNamed(database(), `${name}-after`)).toBe(0);
  });

  it('does not take other errors for a missed guess', async () => {
    const error = await database()
      .db.execute(sql`select 1 / 0`)
      .then(
        () => null,
        (caught: unknown) => caught,
      );
    expect(error).not.toBeNull();
    expect(guessMissed(error)).toBe(false);
  });
}

describe('on Postgres', () => {
  let pg: PostgresServer;
  let database: Database;
  beforeAll(async () => {
    pg = await startPostgres({ migrated: true });
    database = await openDatabase({ url: pg.url, dataDir: await mkdtemp(path.join(os.tmpdir(), 'atelier-guess-')) });
  }, 60_000);
  afterAll(async () => {
    await database?.close();
    await pg?.stop();
  });
  guarding(() => database);
});

describe('embedded (PGlite)', () => {
  let database: Database;
  beforeAll(async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'atelier-guess-embedded-'));
    await seedEmbeddedDatabase(dataDir);
    database = await openDatabase({ dataDir });
  }, 60_000);
  afterAll(async () => {
    await database?.close();
  });
  guarding(() => database);
});
