// Each replica remembers live tokens' sessions a moment (server/auth/token-cache.ts), so a request of a token seen
// just before costs no lookup. Two replicas on one real Postgres and NATS, with the memory's TTL and the subscriptions'
// re-check both far longer than the test: a revoked token is refused at once on the replica that revoked it and, its
// message heard, on the other; an expired one on both; a live subscription of a revoked token ends on the other replica
// without waiting for its re-check; and N connections of one token cost one lookup, then one per re-check.
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { tokenCacheOf } from '../../server/auth/token-cache';
import { ensureIdentity, issueToken } from '../../server/auth/tokens';
import { queryRows } from '../../server/db/client';
import { startTestApp, type TestApp } from '../harness/app';
import { apiClient } from '../harness/client';
import { type NatsServer, startNats } from '../harness/nats';
import { hasServerLibrary, type PostgresServer, startPostgres } from '../harness/postgres';

const TOKEN = 'token-cache-replicas-admin-token-0123456789';
const countable = hasServerLibrary('pg_stat_statements');

let pg: PostgresServer;
let nats: NatsServer;
let a: TestApp;
let b: TestApp;

beforeAll(async () => {
  [pg, nats] = await Promise.all([
    startPostgres(countable ? { settings: { shared_preload_libraries: 'pg_stat_statements', 'pg_stat_statements.track': 'top' } } : {}),
    startNats(),
  ]);
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'atelier-token-cache-'));
  const env = {
    DATABASE_URL: pg.url,
    NATS_URL: nats.url,
    ATELIER_DATA_DIR: dataDir,
    ATELIER_ADMIN_TOKEN: TOKEN,
    // Neither the memory's expiry nor the subscriptions' re-check can explain what this test sees: only the change said.
    ATELIER_TOKEN_CACHE_TTL_MS: '60000',
    ATELIER_TOKEN_RECHECK_MS: '3600000',
  };
  [a, b] = await Promise.all([startTestApp(env), startTestApp(env)]);
  if (countable) await a.app.database.db.execute(sql`create extension if not exists pg_stat_statements`);
}, 120_000);
afterAll(async () => {
  await b?.stop();
  await a?.stop();
  await nats?.stop();
  await pg?.stop();
});

const VIEWER = '{ viewer { name } }';
const codeOf = async (t: TestApp, token: string) => {
  const result = await apiClient(t.url, token).raw(VIEWER);
  return result.errors?.[0]?.extensions?.code ?? 'OK';
};
const cacheOf = (t: TestApp) => tokenCacheOf(t.app.services.db);
/** Resolves once `t` has heard, from another replica, that `identityId`'s tokens changed. */
const heard = (t: TestApp, identityId: string) =>
  new Promise<void>((resolve) => {
    const stop = cacheOf(t).onChange((change, local) => {
      if (local || !change.identities.includes(identityId)) return;
      stop();
      resolve();
    });
  });
const serviceAccount = async (name: string) =>
  (await a.api.gql(`mutation ($n: String!) { createServiceAccount(name: $n) { token identity { id } } }`, { n: name })).createServiceAccount as {
    token: string;
    identity: { id: string };
  };

describe('the token cache on two replicas (Postgres + NATS)', () => {
  it('refuses a revoked token on the next request on the replica that revoked it, and on the other once told', async () => {
    const rita = await serviceAccount('rita');
    expect([await codeOf(a, rita.token), await codeOf(b, rita.token)]).toEqual(['OK', 'OK']);
    // Remembered: the next requests on either replica look nothing up.
    const loads = [cacheOf(a).loads, cacheOf(b).loads];
    expect([await codeOf(a, rita.token), await codeOf(b, rita.token)]).toEqual(['OK', 'OK']);
    expect([cacheOf(a).loads, cacheOf(b).loads]).toEqual(loads);

    const told = heard(b, rita.identity.id);
    await a.api.gql(`mutation { revokeServiceTokens(name: "rita") }`);
    expect(await codeOf(a, rita.token)).toBe('UNAUTHENTICATED');
    await told;
    expect(await codeOf(b, rita.token)).toBe('UNAUTHENTICATED');
  });

  it('refuses an expired token on both replicas, though it was remembered', async () => {
    const owner = await ensureIdentity(a.app.services.db, { name: 'short-lived', kind: 'service', role: 'viewer' });
    const expiresAt = new Date(Date.now() + 1_500);
    const token = await issueToken(a.app.services.db, owner.id, 'short', { expiresAt });
    expect([await codeOf(a, token), await codeOf(b, token)]).toEqual(['OK', 'OK']);
    await vi.waitFor(() => expect(Date.now()).toBeGreaterThan(expiresAt.getTime()), { timeout: 10_000, interval: 50 });
    expect([await codeOf(a, token), await codeOf(b, token)]).toEqual(['UNAUTHENTICATED', 'UNAUTHENTICATED']);
  });

  it('ends a live subscription on the other replica when its token is revoked, without waiting for its re-check', async () => {
    const { startExternalRun } = await a.api.gql(`mutation { startExternalRun(name: "revoked-watch") { id } }`);
    const sid = await serviceAccount('sid');
    const watching = apiClient(b.url, sid.token).subscribe(`subscription ($id: ID!) { runEvents(runId: $id) { __typename } }`, { id: startExternalRun.id });
    watching.catch(() => undefined);
    await vi.waitFor(() => expect(b.app.services.subscriptions.countFor(sid.token)).toBe(1), { timeout: 20_000, interval: 20 });
    await a.api.gql(`mutation { revokeServiceTokens(name: "sid") }`);
    await expect(watching).rejects.toThrow(/token was revoked or has expired/);
    await a.api.gql(`mutation ($id: ID!) { endExternalRun(runId: $id) { id } }`, { id: startExternalRun.id });
  });

  it.skipIf(!countable)('looks a token up once for N connections, and once per re-check for all of them', async () => {
    const lookups = async () =>
      (
        await queryRows<{ n: number }>(
          a.app.services.db,
          sql`select coalesce(sum(calls), 0)::int as n from pg_stat_statements where query like '%"tokens"."expires_at" > $%'`,
        )
      )[0]!.n;
    const { startExternalRun } = await a.api.gql(`mutation { startExternalRun(name: "many-connections") { id } }`);
    const nell = await serviceAccount('nell');
    const N = 8;
    const before = await lookups();
    const client = apiClient(b.url, nell.token);
    const watching = Array.from({ length: N }, () =>
      client.subscribe(`subscription ($id: ID!) { runEvents(runId: $id) { __typename } }`, { id: startExternalRun.id }),
    );
    for (const w of watching) w.catch(() => undefined);
    await vi.waitFor(() => expect(b.app.services.subscriptions.countFor(nell.token)).toBe(N), { timeout: 20_000, interval: 20 });
    // N connections, each authenticated at connect and again in its subscription's context: one lookup in all.
    expect((await lookups()) - before).toBe(1);
    // Three re-checks, as each period's timer runs them: one lookup each, whatever the number of connections.
    for (let i = 0; i < 3; i++) await b.app.services.subscriptions.checkNow((key) => key.endsWith(nell.token));
    expect((await lookups()) - before).toBe(4);
    expect(b.app.services.subscriptions.countFor(nell.token)).toBe(N);
    await a.api.gql(`mutation ($id: ID!) { endExternalRun(runId: $id) { id } }`, { id: startExternalRun.id });
  });
});
