import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
