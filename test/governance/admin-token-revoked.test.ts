// A control plane restarted with an ATELIER_ADMIN_TOKEN that no longer works as the admin's (revoked after a leak,
// another identity's) used to start and print it as the admin token, every request with it refused: the admin locked
// out with no hint. It now refuses to start, saying what to set, and changes nothing; the token saved in the data
// directory, revoked, is replaced by a new one, said in the log.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type App, buildApp } from '../../server/app';
import { adminTokenFile } from '../../server/auth/admin-token';
import { ConfigError, loadConfig } from '../../server/config';
import { apiClient } from '../harness/client';
import { seedEmbeddedDatabase } from '../harness/pglite-template';

let dataDir: string;
let running: App | undefined;
const logs: string[] = [];
const FIRST = 'atl_the-first-admin-token-of-this-test';

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'atelier-admin-token-'));
  await seedEmbeddedDatabase(dataDir);
});
afterAll(async () => {
  await running?.stop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

/** Starts the control plane on the one data directory; returns its URL. */
async function start(env: Record<string, string> = {}): Promise<string> {
  const config = loadConfig({ PORT: '0', ATELIER_DATA_DIR: dataDir, ATELIER_LOG_LEVEL: 'silent', ATELIER_SHUTDOWN_GRACE_SECONDS: '2', ...env });
  running = await buildApp(config, { log: (m) => logs.push(m) });
  return running.start();
}
async function stop() {
  await running?.stop();
  running = undefined;
}
const VIEWER = `{ viewer { name role } }`;
const startError = (env: Record<string, string>) =>
  start(env).then(
    () => null,
    (error: unknown) => error,
  );

it('refuses to start with a revoked ATELIER_ADMIN_TOKEN or another identity’s, and replaces a revoked saved one', async () => {
  let url = await start({ ATELIER_ADMIN_TOKEN: FIRST });
  const admin = apiClient(url, FIRST);
  const { createUser } = await admin.gql(`mutation { createUser(name: "ops", role: admin) { token } }`);
  const ops = createUser.token as string;
  const { createServiceAccount } = await admin.gql(`mutation { createServiceAccount(name: "ci") { token } }`);
  expect((await apiClient(url, ops).gql(`mutation ($k: String!) { revokeToken(token: $k) }`, { k: FIRST })).revokeToken).toBe(true);
  await stop();

  const revoked = await startError({ ATELIER_ADMIN_TOKEN: FIRST });
  expect(revoked).toBeInstanceOf(ConfigError);
  expect((revoked as Error).message).toMatch(
    /^ATELIER_ADMIN_TOKEN names a token that was revoked at \d{4}-.*every request with it would be refused: set a new one \(openssl rand -base64 32\), or unset it/,
  );
  const service = await startError({ ATELIER_ADMIN_TOKEN: createServiceAccount.token });
  expect((service as Error).message).toMatch(/^ATELIER_ADMIN_TOKEN names a token that is ci’s, not the admin’s/);

  // Refused, it changed nothing (and let go of the embedded database): the old token is still refused, ops still works.
  url = await start({ ATELIER_ADMIN_TOKEN: 'atl_the-second-admin-token-of-this-test' });
  expect((await apiClient(url, FIRST).raw(VIEWER)).errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  expect((await apiClient(url, ops).gql(VIEWER)).viewer.name).toBe('ops');
  expect((await apiClient(url, 'atl_the-second-admin-token-of-this-test').gql(VIEWER)).viewer).toEqual({ name: 'admin', role: 'admin' });
  await apiClient(url, ops).gql(`mutation { revokeToken(token: "atl_the-second-admin-token-of-this-test") }`);
  await stop();

  // Unset: the saved token (the second, revoked) gives way to a new one, saved and said in the log.
  url = await start();
  const minted = running!.adminToken;
  expect(minted).not.toBe('atl_the-second-admin-token-of-this-test');
  expect((await readFile(adminTokenFile(dataDir), 'utf8')).trim()).toBe(minted);
  expect(logs.join('\n')).toMatch(/warning: the admin token saved in .* was revoked at .*; a new one was minted and saved there/);
  expect((await apiClient(url, minted).gql(VIEWER)).viewer).toEqual({ name: 'admin', role: 'admin' });
}, 120_000);
