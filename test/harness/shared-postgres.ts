// Test apps' databases on real Postgres: one PostgreSQL 15 cluster per test worker process, started on first use,
// with one database migrated once and copied (CREATE DATABASE … TEMPLATE) for each app. A copy takes ~30 ms of the
// server's CPU; an embedded PGlite opened per app cost ~1 s of the worker's CPU, and every query on it ~1 ms more.
import postgres from 'postgres';
import { openDatabase } from '../../server/db/client';
import { type PostgresServer, startPostgres } from './postgres';

let shared: Promise<{ server: PostgresServer; admin: postgres.Sql }> | undefined;
let count = 0;

export interface AppDatabase {
  url: string;
  drop(): Promise<void>;
}

/** A fresh, migrated database of its own for one test app. */
export async function appDatabase(): Promise<AppDatabase> {
  shared ??= (async () => {
    const server = await startPostgres();
    const migrated = await openDatabase({ url: server.url, dataDir: '' });
    await migrated.close();
    if (process.env.ATELIER_TEST_PG_PIDFILE) {
      const { readFileSync, appendFileSync } = await import('node:fs');
      const { dirname, join } = await import('node:path');
      appendFileSync(process.env.ATELIER_TEST_PG_PIDFILE, readFileSync(join(dirname(server.logFile), 'data', 'postmaster.pid'), 'utf8').split('\n')[0] + '\n');
    }
    const admin = postgres(server.url.replace(/\/atelier$/, '/postgres'), { max: 1, onnotice: () => undefined });
    return { server, admin };
  })();
  const { server, admin } = await shared;
  const name = `app_${++count}`;
  await admin.unsafe(`create database ${name} template atelier`);
  return {
    url: server.url.replace(/\/atelier$/, `/${name}`),
    drop: async () => {
      await admin.unsafe(`drop database if exists ${name} with (force)`);
    },
  };
}
