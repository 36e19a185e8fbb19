// Each replica remembers live tokens' sessions a moment (server/auth/token-cache.ts), so a request of a token seen
// just before costs no lookup. The database tells every replica what changed (migration 0067's triggers, heard by
// server/auth/token-watch.ts), whoever changed it. Two replicas on one real Postgres and NATS, with the memory's TTL and
// the subscriptions' re-check both far longer than the test: a revoked token is refused at once on the replica that
// revoked it and, the notification heard, on the other; so is one revoked by an operator's SQL, and a membership removed
// by SQL applies on both; while the connection that hears changes is down every request looks its token up, so a
// revocation meanwhile is refused too; an expired one is refused on both; a live subscription of a revoked token ends on
// the other replica without waiting for its re-check; and N connections of one token cost one lookup, then one per
// re-check.
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { tokenCacheOf } from '../../server/auth/token-cache';
import { TOKEN_CHANGES_CHANNEL } from '../../server/auth/token-watch';
import { ensureIdentity, issueToken, sessionForToken } from '../../server/auth/tokens';
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
/** An operator's own connection. */
let operator: postgres.Sql;

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
  operator = postgres(pg.url, { max: 1, onnotice: () => undefined });
}, 120_000);
afterAll(async () => {
  await operator?.end();
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
/** Resolves once `t` has heard, from the database, that `identityId`'s tokens changed (any identity's: `'*'`). */
const heard = (t: TestApp, identityId: string) =>
  new Promise<void>((resolve) => {
    const stop = cacheOf(t).onChange((change, local) => {
      if (local || (identityId === '*' ? !change.all : !change.identities.includes(identityId))) return;
      stop();
      resolve();
    });
  });
/** Whether `t` looks `token` up for a request (rather than answering from memory), and what the request got. */
const lookedUp = async (t: TestApp, token: string) => {
  const before = cacheOf(t).loads;
  const code = await codeOf(t, token);
  return { code, lookedUp: cacheOf(t).loads > before };
};
/** `t`'s pool of database connections (postgres-js under drizzle). */
const poolOf = (t: TestApp) => (t.app.database.db as unknown as { $client: postgres.Sql }).$client;
/**
 * Opens every connection `t`'s pool may have, and the operator's. The driver opens a pool connection whenever a
 * statement finds none idle and the pool is below its size (10; a replica had about 6 open here), so while the database
 * is closed to new connections a moment with more statements at once than open connections (a request beside the
 * replica's own loops, under load) failed with 55000 "not currently accepting connections". With all open it queues.
 */
async function openEveryConnection(t: TestApp) {
  const pool = poolOf(t);
  await Promise.all([...Array.from({ length: pool.options.max }, () => pool`select 1`), operator`select 1`]);
}
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

  it('refuses a token revoked by SQL on both replicas, well inside the TTL', async () => {
    const sam = await serviceAccount('sam');
    expect([await codeOf(a, sam.token), await codeOf(b, sam.token)]).toEqual(['OK', 'OK']);
    expect([await lookedUp(a, sam.token), await lookedUp(b, sam.token)]).toEqual([
      { code: 'OK', lookedUp: false },
      { code: 'OK', lookedUp: false },
    ]);
    const told = [heard(a, sam.identity.id), heard(b, sam.identity.id)];
    await operator`update tokens set revoked_at = now() where identity_id = ${sam.identity.id}`;
    await Promise.all(told);
    expect([await codeOf(a, sam.token), await codeOf(b, sam.token)]).toEqual(['UNAUTHENTICATED', 'UNAUTHENTICATED']);
  });

  it('drops the grants of a membership removed by SQL on both replicas', async () => {
    const nia = await serviceAccount('nia');
    const added = [heard(a, nia.identity.id), heard(b, nia.identity.id)];
    const [team] = await operator<{ id: string }[]>`insert into teams (name) values ('nia-team') returning id`;
    await operator`insert into team_members (team_id, identity_id, role) values (${team!.id}, ${nia.identity.id}, 'member')`;
    await operator`insert into domain_grants (team_id, domain) values (${team!.id}, 'production')`;
    await Promise.all(added);
    const domainsOn = async (t: TestApp) => (await sessionForToken(t.app.services.db, nia.token))?.grants.domains;
    expect([await domainsOn(a), await domainsOn(b)]).toEqual([['production'], ['production']]);
    const told = [heard(a, nia.identity.id), heard(b, nia.identity.id)];
    await operator`delete from team_members where identity_id = ${nia.identity.id}`;
    await Promise.all(told);
    expect([await domainsOn(a), await domainsOn(b)]).toEqual([[], []]);
  });

  it('looks every token up while the connection that hears changes is down, and forgets everything once it hears again', async () => {
    const [tom, una] = [await serviceAccount('tom'), await serviceAccount('una')];
    for (const t of [a, b]) for (const account of [tom, una]) expect(await codeOf(t, account.token)).toBe('OK');
    // No new connection to the database until the revocation below committed: the replicas cannot hear it. Only the
    // listening connections are to be refused: every other connection of the replicas is open before.
    await Promise.all([openEveryConnection(a), openEveryConnection(b)]);
    const cluster = postgres(pg.url.replace(/\/atelier$/, '/postgres'), { max: 1, onnotice: () => undefined });
    await cluster`alter database atelier with allow_connections false`;
    const listening = Promise.all([heard(a, '*'), heard(b, '*')]);
    try {
      await operator`select pg_terminate_backend(pid, 5000) from pg_stat_activity where application_name = ${`atelier listen ${TOKEN_CHANGES_CHANNEL}`}`;
      // Once a replica has seen its connection close, it answers nothing from memory.
      for (const t of [a, b])
        await vi.waitFor(async () => expect(await lookedUp(t, tom.token)).toEqual({ code: 'OK', lookedUp: true }), { timeout: 20_000, interval: 50 });
      // More statements at once than a pool has connections (a replica's loops beside its requests, under load): none
      // asks for a connection the database refuses now (55000), which only the listening connections are to meet.
      for (const t of [a, b]) {
        const pool = poolOf(t);
        const burst = Array.from({ length: pool.options.max + 2 }, () =>
          pool`select pg_sleep(0.05)`.then(
            () => 'OK',
            (e) => String(e.code),
          ),
        );
        expect(await Promise.all(burst)).toEqual(burst.map(() => 'OK'));
      }
      await operator`update tokens set revoked_at = now() where identity_id = ${tom.identity.id}`;
      expect([await codeOf(a, tom.token), await codeOf(b, tom.token)]).toEqual(['UNAUTHENTICATED', 'UNAUTHENTICATED']);
    } finally {
      await cluster`alter database atelier with allow_connections true`;
      await cluster.end();
    }
    await listening;
    // Listening again: remembered again, and told again.
    for (const t of [a, b]) {
      expect(await codeOf(t, una.token)).toBe('OK');
      expect(await lookedUp(t, una.token)).toEqual({ code: 'OK', lookedUp: false });
    }
    const told = [heard(a, una.identity.id), heard(b, una.identity.id)];
    await operator`update tokens set revoked_at = now() where identity_id = ${una.identity.id}`;
    await Promise.all(told);
    expect([await codeOf(a, una.token), await codeOf(b, una.token)]).toEqual(['UNAUTHENTICATED', 'UNAUTHENTICATED']);
    expect([await codeOf(a, tom.token), await codeOf(b, tom.token)]).toEqual(['UNAUTHENTICATED', 'UNAUTHENTICATED']);
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
