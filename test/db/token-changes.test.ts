// The database says what changed under the token cache (migration 0067's triggers, server/db/listen.ts): every
// committed statement that changes what a token lookup reads (tokens, identities, team memberships, domain grants)
// notifies `atelier_token_changes` once with the identities concerned, or `*` past 100 of them; a token inserted or an
// expired one pruned says nothing. The listening connection, killed, says `down` and then `up` once it listens again.
// Real Postgres, and the embedded PGlite default.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { sql as raw } from 'drizzle-orm';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { TOKEN_CHANGES_CHANNEL } from '../../server/auth/token-watch';
import { type Database, openDatabase, queryRows } from '../../server/db/client';
import type { Unlisten } from '../../server/db/listen';
import { seedEmbeddedDatabase } from '../harness/pglite-template';
import { type PostgresServer, startPostgres } from '../harness/postgres';

/** What a listener heard, in order: payloads, and `(down)`/`(up)` as its connection closed and listened again. */
function listener() {
  const heard: string[] = [];
  return {
    heard,
    handlers: { notify: (p: string) => heard.push(p), up: () => heard.push('(up)'), down: () => heard.push('(down)') },
    /** What was heard from the `from`th entry up to the `marker` notification (sent after the statement checked). */
    until: async (marker: string, from = 0) => {
      await vi.waitFor(() => expect(heard.slice(from)).toContain(marker), { timeout: 10_000, interval: 10 });
      return heard.slice(from, heard.indexOf(marker, from));
    },
  };
}

describe('on Postgres', () => {
  let pg: PostgresServer;
  let database: Database;
  let sql: postgres.Sql;
  let dataDir: string;
  let unlisten: Unlisten;
  const l = listener();
  const ids = { ann: '', bob: '', team: '' };

  beforeAll(async () => {
    pg = await startPostgres({ migrated: true });
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'atelier-token-changes-'));
    database = await openDatabase({ url: pg.url, dataDir });
    sql = postgres(pg.url, { max: 1, onnotice: () => undefined });
    unlisten = await database.listen(TOKEN_CHANGES_CHANNEL, l.handlers);
    const [ann, bob] = await sql<
      { id: string }[]
    >`insert into identities (kind, name, role) values ('user', 'ann', 'member'), ('user', 'bob', 'member') returning id`;
    const [team] = await sql<{ id: string }[]>`insert into teams (name) values ('ml') returning id`;
    Object.assign(ids, { ann: ann!.id, bob: bob!.id, team: team!.id });
  }, 120_000);
  afterAll(async () => {
    await unlisten?.();
    await sql?.end();
    await database?.close();
    await pg?.stop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  /** Runs `statement`, then a marker notification; returns what was heard between them. */
  let n = 0;
  const heardAfter = async (statement: () => Promise<unknown>) => {
    const from = l.heard.length;
    await statement();
    const marker = `marker-${n++}`;
    await sql`select pg_notify(${TOKEN_CHANGES_CHANNEL}, ${marker})`;
    // In whatever order Postgres listed them.
    return (await l.until(marker, from)).map((payload) => payload.split(',').sort().join(','));
  };

  it('listens from the start', () => {
    expect(l.heard[0]).toBe('(up)');
  });

  it('names the identity of a token revoked, expired or deleted by SQL; says nothing of a token inserted or an expired one pruned', async () => {
    expect(await heardAfter(() => sql`insert into tokens (identity_id, name, hash) values (${ids.ann}, 'a', 'h-a'), (${ids.bob}, 'b', 'h-b')`)).toEqual([]);
    expect(await heardAfter(() => sql`update tokens set revoked_at = now() where hash = 'h-a'`)).toEqual([ids.ann]);
    expect(await heardAfter(() => sql`update tokens set expires_at = now() - interval '1 s' where hash = 'h-b'`)).toEqual([ids.bob]);
    // An update that changes nothing the lookup reads (the same value again) is no change.
    expect(await heardAfter(() => sql`update tokens set name = name`)).toEqual([]);
    expect(await heardAfter(() => sql`delete from tokens where expires_at < now() or revoked_at is not null`)).toEqual([]);
    await sql`insert into tokens (identity_id, name, hash) values (${ids.ann}, 'a2', 'h-a2')`;
    expect(await heardAfter(() => sql`delete from tokens where hash = 'h-a2'`)).toEqual([ids.ann]);
  });

  it('names the members whose membership or team grants changed, and an identity changed', async () => {
    expect(
      await heardAfter(
        () => sql`insert into team_members (team_id, identity_id, role) values (${ids.team}, ${ids.ann}, 'member'), (${ids.team}, ${ids.bob}, 'viewer')`,
      ),
    ).toEqual([[ids.ann, ids.bob].sort().join(',')]);
    expect(await heardAfter(() => sql`update team_members set role = 'member' where identity_id = ${ids.bob}`)).toEqual([ids.bob]);
    const members = [ids.ann, ids.bob].sort().join(',');
    expect(await heardAfter(() => sql`insert into domain_grants (team_id, domain) values (${ids.team}, 'production')`)).toEqual([members]);
    expect(await heardAfter(() => sql`delete from domain_grants where team_id = ${ids.team}`)).toEqual([members]);
    expect(await heardAfter(() => sql`delete from team_members where identity_id = ${ids.ann}`)).toEqual([ids.ann]);
    expect(await heardAfter(() => sql`update identities set role = 'viewer' where id = ${ids.bob}`)).toEqual([ids.bob]);
  });

  it('sends one notification for a statement changing many rows: `*` past 100 identities', async () => {
    const many = await sql<
      { id: string }[]
    >`insert into identities (kind, name, role) select 'service', 'svc-' || i, 'viewer' from generate_series(1, 150) i returning id`;
    await sql`insert into tokens (identity_id, name, hash) select id, 't', 'h-' || id from identities where name like 'svc-%'`;
    expect(await heardAfter(() => sql`update tokens set revoked_at = now() where name = 't'`)).toEqual(['*']);
    const few = many.slice(0, 3).map((r) => r.id);
    expect(await heardAfter(() => sql`update identities set role = 'member' where id = any(${few}::uuid[])`)).toEqual([[...few].sort().join(',')]);
    // Rolled back: nothing.
    expect(
      await heardAfter(() =>
        sql.begin(async (tx) => [await tx`update identities set role = 'admin' where id = ${few[0]!}`, await tx`select 1/0`]).catch(() => undefined),
      ),
    ).toEqual([]);
  });

  it('says down when its connection is killed, and up once it listens again; then hears as before', async () => {
    const from = l.heard.length;
    await sql`select pg_terminate_backend(pid, 5000) from pg_stat_activity where application_name = ${`atelier listen ${TOKEN_CHANGES_CHANNEL}`}`;
    await vi.waitFor(() => expect(l.heard.slice(from)).toEqual(['(down)', '(up)']), { timeout: 20_000, interval: 20 });
    expect(await heardAfter(() => sql`update identities set role = 'member' where id = ${ids.bob}`)).toEqual([ids.bob]);
  });
});

describe('on the embedded database (PGlite)', () => {
  let database: Database;
  let dataDir: string;

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'atelier-token-changes-pglite-'));
    await seedEmbeddedDatabase(dataDir);
    database = await openDatabase({ dataDir });
  }, 120_000);
  afterAll(async () => {
    await database?.close();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('hears its own statements', async () => {
    const l = listener();
    const unlisten = await database.listen(TOKEN_CHANGES_CHANNEL, l.handlers);
    const [ann] = await queryRows<{ id: string }>(database.db, raw`insert into identities (kind, name, role) values ('user', 'ann', 'member') returning id`);
    await database.db.execute(raw`insert into tokens (identity_id, name, hash) values (${ann!.id}, 'a', 'h-a')`);
    await database.db.execute(raw`update tokens set revoked_at = now() where hash = 'h-a'`);
    await database.db.execute(raw`select pg_notify(${TOKEN_CHANGES_CHANNEL}, 'marker')`);
    expect(await l.until('marker')).toEqual(['(up)', ann!.id]);
    await unlisten();
  });
});
