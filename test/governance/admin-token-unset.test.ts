// A chosen admin token outlived its unsetting: once ATELIER_ADMIN_TOKEN was set and then unset, the token it set, saved
// in the data directory, was kept as the admin's and treated as minted (it worked on, and passed a lockout). Now a
// token records its origin: started without ATELIER_ADMIN_TOKEN, the control plane revokes every admin token a person
// chose (audited, said in the log), and mints, saves and prints a new one. Rows stored before the origin was recorded
// say minted: a saved token not of the minted shape is taken as chosen all the same.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type App, buildApp } from '../../server/app';
import { adminTokenFile } from '../../server/auth/admin-token';
import { loadConfig } from '../../server/config';
import { queryRows } from '../../server/db/client';
import { apiClient } from '../harness/client';
import { seedEmbeddedDatabase } from '../harness/pglite-template';

let dataDir: string;
let running: App | undefined;
let logs: string[] = [];
const CHOSEN = 'our-admin-token-for-automation-2026';
const VIEWER = `{ viewer { name role } }`;

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'atelier-admin-unset-'));
  await seedEmbeddedDatabase(dataDir);
});
afterAll(async () => {
  await running?.stop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

/** Starts the control plane on the one data directory; returns its URL. */
async function start(env: Record<string, string> = {}): Promise<string> {
  await running?.stop();
  logs = [];
  const config = loadConfig({ PORT: '0', ATELIER_DATA_DIR: dataDir, ATELIER_LOG_LEVEL: 'silent', ATELIER_SHUTDOWN_GRACE_SECONDS: '2', ...env });
  running = await buildApp(config, { log: (m) => logs.push(m) });
  return running.start();
}
const code = async (url: string, token: string) => (await apiClient(url, token).raw(VIEWER)).errors?.[0]?.extensions?.code ?? 'OK';
const revocations = async () =>
  queryRows<{ rule: string; details: { revoked: number } }>(
    running!.services.db,
    sql`select rule, details from audit_events where action = 'identity.token.revoke' and subject = 'identity:admin' order by id`,
  );

it('revokes the chosen admin token once ATELIER_ADMIN_TOKEN is unset, and mints, saves and prints a new one', async () => {
  let url = await start({ ATELIER_ADMIN_TOKEN: CHOSEN });
  expect(await code(url, CHOSEN)).toBe('OK');
  expect((await readFile(adminTokenFile(dataDir), 'utf8')).trim()).toBe(CHOSEN);

  url = await start();
  const minted = running!.adminToken;
  expect(minted).not.toBe(CHOSEN);
  expect(minted).toMatch(/^atl_[A-Za-z0-9_-]{32}$/);
  expect(await code(url, CHOSEN)).toBe('UNAUTHENTICATED');
  expect((await apiClient(url, minted).gql(VIEWER)).viewer).toEqual({ name: 'admin', role: 'admin' });
  expect((await readFile(adminTokenFile(dataDir), 'utf8')).trim()).toBe(minted);
  expect(logs.join('\n')).toMatch(/warning: ATELIER_ADMIN_TOKEN is no longer set, so the admin token it set was revoked; use the admin token saved in /);
  expect(logs.join('\n')).toMatch(
    /warning: the admin token saved in .* was set by ATELIER_ADMIN_TOKEN, which is no longer set; a new one was minted and saved there/,
  );
  expect(await revocations()).toEqual([
    { rule: 'an admin token a person chose lives only while ATELIER_ADMIN_TOKEN names it; it is no longer set', details: { revoked: 1 } },
  ]);

  // Started again unset: the minted one is kept, nothing more revoked; set again, the revoked chosen one is refused.
  url = await start();
  expect(running!.adminToken).toBe(minted);
  expect(await code(url, minted)).toBe('OK');
  expect(await revocations()).toHaveLength(1);
  await running!.stop();
  running = undefined;
  await expect(start({ ATELIER_ADMIN_TOKEN: CHOSEN })).rejects.toThrow(/^ATELIER_ADMIN_TOKEN names a token that was revoked at /);
}, 120_000);

it('revokes a chosen admin token stored before origins were recorded (its row says minted) once unset', async () => {
  const LEGACY = 'our-older-admin-token-for-automation';
  await start({ ATELIER_ADMIN_TOKEN: LEGACY });
  // As a database migrated from before 0060 holds it: every token minted.
  await running!.services.db.execute(sql`update tokens set chosen = false`);
  const url = await start();
  expect(running!.adminToken).not.toBe(LEGACY);
  expect(await code(url, LEGACY)).toBe('UNAUTHENTICATED');
  expect(await code(url, running!.adminToken)).toBe('OK');
}, 120_000);
