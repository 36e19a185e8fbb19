// Test apps' databases on real Postgres, as production runs: one PostgreSQL 15 cluster per test worker process,
// started on first use and stopped when the process exits, and a database of its own for each app, copied from one
// migrated once (CREATE DATABASE … TEMPLATE, ~30 ms of the server's CPU). Advisory locks and LISTEN channels are per
// database, so apps on one cluster never see each other. On the embedded database instead (PGlite, in-process) each
// app cost ~1 s of the test worker's CPU to open and every query ~1 ms more: test/cache/cache.test.ts took 20.6 s of
// CPU on it, 12.5 s here (8.9 s in the worker, 3.6 s in Postgres).
import postgres from 'postgres';
import { openDatabase } from '../../server/db/client';
import { type PostgresServer, startPostgres } from './postgres';

let shared: Promise<{ server: PostgresServer; admin: postgres.Sql }> | undefined;
let count = 0;

export interface AppDatabase {
  url: string;
  drop(): Promise<void>;
}

/** A fresh, migrated database of its own for one test app; drop() removes it, closing what is still connected. */
export async function appDatabase(): Promise<AppDatabase> {
  shared ??= (async () => {
    // A test file that forgets to stop an app keeps its connections for the rest of the worker's files.
    const server = await startPostgres({ settings: { max_connections: '500' }, migrated: true });
    const migrated = await openDatabase({ url: server.url, dataDir: '' });
    await migrated.close();
    const admin = postgres(server.url.replace(/\/atelier$/, '/postgres'), { max: 1, onnotice: () => undefined });
    return { server, admin };
  })().catch((error) => {
    shared = undefined;
    throw error;
  });
  const { server, admin } = await shared;
  const name = `app_${++count}`;
  await admin.unsafe(`create database ${name} template atelier`);
  return {
    url: server.url.replace(/\/atelier$/, `/${name}`),
    drop: () => admin.unsafe(`drop database if exists ${name} with (force)`).then(() => undefined),
  };
}
