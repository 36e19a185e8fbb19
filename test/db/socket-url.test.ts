// DATABASE_URL naming Postgres' Unix socket as libpq and psql take it (server/db/postgres-url.ts), on a real server:
// the control plane's database opens through the socket (migrations and all), and a directory with no server in it
// is refused with the message that says what to check.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { openDatabase, queryRows } from '../../server/db/client';
import { freePort } from '../harness/ports';
import { type PostgresServer, startPostgres } from '../harness/postgres';

let server: PostgresServer | undefined;
let dataDir: string;

beforeAll(async () => {
  [server, dataDir] = await Promise.all([startPostgres(), mkdtemp(path.join(os.tmpdir(), 'atelier-socket-url-'))]);
}, 60_000);

afterAll(async () => {
  await server?.stop();
  await rm(dataDir, { recursive: true, force: true });
}, 30_000);

for (const form of ['query', 'encoded host'] as const) {
  it(`opens the database through the server's socket (${form})`, async () => {
    const { socketDir, port } = server!;
    const url =
      form === 'query'
        ? `postgresql://postgres@/atelier?host=${encodeURIComponent(socketDir)}&port=${port}`
        : `postgresql://postgres@${encodeURIComponent(socketDir)}:${port}/atelier`;
    const database = await openDatabase({ url, dataDir });
    try {
      // A session over a Unix socket has no server address; over TCP it would be 127.0.0.1.
      const [row] = await queryRows<{ unix: boolean; migrated: boolean }>(
        database.db,
        sql`select inet_server_addr() is null as unix, to_regclass('public.runs') is not null as migrated`,
      );
      expect(row).toEqual({ unix: true, migrated: true });
    } finally {
      await database.close();
    }
  }, 60_000);
}

it('refuses a socket directory with no server in it, saying what to check', async () => {
  const url = `postgresql://postgres@/atelier?host=${encodeURIComponent(path.join(dataDir, 'nowhere'))}&port=${server!.port}`;
  await expect(openDatabase({ url, dataDir })).rejects.toThrow(/Could not prepare the database at DATABASE_URL: .*ENOENT.*Check that Postgres is running/);
}, 60_000);

it('tries each host of a multi-host URL in turn, as the driver does (a first host that refuses is passed over)', async () => {
  const closed = await freePort();
  const url = `postgresql://postgres@127.0.0.1:${closed},127.0.0.1:${server!.port}/atelier`;
  const database = await openDatabase({ url, dataDir });
  try {
    const [row] = await queryRows<{ port: number }>(database.db, sql`select inet_server_port() as port`);
    expect(row?.port).toBe(server!.port);
  } finally {
    await database.close();
  }
}, 60_000);
