// A replica started without ATELIER_ADMIN_TOKEN revoked the admin token the other replicas were given (tokens.chosen:
// a chosen token lives only while ATELIER_ADMIN_TOKEN names it), locking automation out of every replica. Now a replica
// records the token it was given with its object store claim, and one started without the variable leaves a token that
// a live replica holds alone, saying in its log what to do; once no live replica holds it, one started without it
// revokes it as before. Replicas with and without it starting at the same instant take turns (an advisory lock), so the
// token is never revoked between the one given it storing it and recording that it holds it. Two real replicas on one
// Postgres, sharing a data directory (and so an object store).
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { type App, buildApp } from '../../server/app';
import { loadConfig } from '../../server/config';
import { queryRows } from '../../server/db/client';
import { apiClient } from '../harness/client';
import { type PostgresServer, startPostgres } from '../harness/postgres';

let pg: PostgresServer;
let dataDir: string;
const apps: App[] = [];
const CHOSEN = 'our-admin-token-for-automation-2026';

beforeAll(async () => {
  pg = await startPostgres();
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'atelier-admin-replicas-'));
}, 120_000);
afterAll(async () => {
  for (const app of apps.reverse()) await app.stop().catch(() => {});
  await pg?.stop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

/** Starts a replica on the shared Postgres and data directory; returns it, its URL and what it logged. */
async function replica(env: Record<string, string> = {}) {
  const { app, logs } = await built(env);
  const url = await app.start();
  return { app, url, logs };
}

/** Builds a replica (its admin token seeded) without starting it. */
async function built(env: Record<string, string> = {}) {
  const logs: string[] = [];
  const config = loadConfig({
    PORT: '0',
    DATABASE_URL: pg.url,
    ATELIER_DATA_DIR: dataDir,
    ATELIER_LOG_LEVEL: 'silent',
    ATELIER_SHUTDOWN_GRACE_SECONDS: '2',
    ...env,
  });
  const app = await buildApp(config, { log: (m) => logs.push(m) });
  apps.push(app);
  return { app, logs };
}
const code = async (url: string, token: string) => (await apiClient(url, token).raw(`{ viewer { name } }`)).errors?.[0]?.extensions?.code ?? 'OK';
const revocations = async (app: App) =>
  queryRows<{ details: { revoked: number } }>(
    app.services.db,
    sql`select details from audit_events where action = 'identity.token.revoke' and subject = 'identity:admin' order by id`,
  );

it('leaves the admin token a live replica was given alone when a replica starts without ATELIER_ADMIN_TOKEN, and says what to do', async () => {
  const given = await replica({ ATELIER_ADMIN_TOKEN: CHOSEN });
  const without = await replica();
  expect(await code(given.url, CHOSEN)).toBe('OK');
  expect(await code(without.url, CHOSEN)).toBe('OK');
  expect(await revocations(without.app)).toEqual([]);
  expect(without.logs.join('\n')).toMatch(
    /warning: ATELIER_ADMIN_TOKEN is not set on this replica, but live replica .+ was given it, so the admin token it set stays live: set ATELIER_ADMIN_TOKEN on every replica or on none/,
  );
  // Its own admin token, minted, works as well.
  expect(await code(without.url, without.app.adminToken)).toBe('OK');

  // Once the replica that held it has stopped, one started without the variable takes the token out of service.
  await given.app.stop();
  await without.app.stop();
  const last = await replica();
  expect(await code(last.url, CHOSEN)).toBe('UNAUTHENTICATED');
  expect(await revocations(last.app)).toEqual([{ details: { revoked: 1 } }]);
  expect(last.logs.join('\n')).toMatch(/warning: ATELIER_ADMIN_TOKEN is no longer set, so the admin token it set was revoked/);
}, 180_000);

it('keeps the admin token of a replica given it when one without it starts at the same instant', async () => {
  const token = 'the-admin-token-of-a-replica-starting-2026';
  // Given the token, its row stored, but its claim (which records that it holds it) not yet made: the start's window.
  const given = await built({ ATELIER_ADMIN_TOKEN: token });
  let settled = false;
  const without = replica().finally(() => (settled = true));
  // The replica without it waits for the other's claim (before, it had revoked the token by now).
  const waiting = async () =>
    (await queryRows<{ n: number }>(given.app.services.db, sql`select count(*)::int as n from pg_locks where locktype = 'advisory' and not granted`))[0]!.n > 0;
  await vi.waitFor(async () => expect(settled || (await waiting())).toBe(true), { timeout: 30_000, interval: 20 });
  const url = await given.app.start();
  const other = await without;
  expect(await code(url, token)).toBe('OK');
  expect(await code(other.url, token)).toBe('OK');
  expect(other.logs.join('\n')).toMatch(/warning: ATELIER_ADMIN_TOKEN is not set on this replica, but live replica .+ was given it/);
}, 180_000);
