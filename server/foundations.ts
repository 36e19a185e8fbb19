// What a control plane stands on, opened in order before anything that uses them: its private data directory, the bus
// (first, so a NATS_URL that cannot be reached is said before the database is opened or, embedded, migrated), the
// database (credentials scrubbed from stored source URLs, the admin seeded), and the object store. Whatever fails to
// open closes what was opened before it, so a refused start leaves no connection, lock or process behind.
import { chmod, mkdir } from 'node:fs/promises';
import { createMemoryBus } from '../plugins/bus/memory';
import type { Bus } from '../plugins/bus/types';
import { openObjectStore } from './artifacts/open';
import type { ObjectStore } from './artifacts/store';
import { seedAdmin } from './auth/admin-token';
import type { Config } from './config';
import { type Database, type HeldLock, openDatabase } from './db/client';
import { writingTo } from './db/writable';
import { scrubStoredSources } from './modules/source';

export interface Foundations {
  bus: Bus;
  database: Database;
  store: ObjectStore;
  adminToken: string;
  /** Held until this replica's claim records the admin token it was given (server/auth/admin-token.ts). */
  adminTokenHold: HeldLock | null;
}

export async function openFoundations(config: Config, log: (message: string) => void): Promise<Foundations> {
  // Private to the server: the admin token, the embedded database and the object store live here.
  await writingTo('The data directory (ATELIER_DATA_DIR)', config.dataDir, async () => {
    await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
    await chmod(config.dataDir, 0o700);
  });
  const bus = config.natsUrl ? await (await import('./bus/jetstream')).createJetStreamBus({ url: config.natsUrl }) : createMemoryBus();
  const opened: { close(): Promise<void> }[] = [bus];
  const opening = <T>(next: Promise<T>) =>
    next.catch(async (error: unknown) => {
      for (const o of opened.reverse()) await o.close().catch(() => {});
      throw error;
    });
  const database = await opening(openDatabase({ url: config.databaseUrl, dataDir: config.dataDir, unreachableAfterMs: config.databaseUnreachableMs, log }));
  opened.push(database);
  const scrubbed = await opening(scrubStoredSources(database.db));
  if (scrubbed) log(`removed credentials from the stored source URLs of ${scrubbed} module version(s)`);
  // Before the store is opened: an ATELIER_ADMIN_TOKEN that no longer works refuses the start (a ConfigError).
  const { token: adminToken, hold: adminTokenHold } = await opening(
    seedAdmin(database.db, { dataDir: config.dataDir, token: config.adminToken, log, replicas: database.kind === 'postgres' }),
  );
  if (adminTokenHold) opened.push({ close: () => adminTokenHold.release() });
  // Replicas must share one store (local only for a single replica): the claim the app starts refuses a different one.
  const store = await opening(openObjectStore(config.objectStore, config.dataDir));
  return { bus, database, store, adminToken, adminTokenHold };
}
