// The admin identity and its token at start-up: ATELIER_ADMIN_TOKEN, else the one saved in the data dir, else a
// new one; saved (owner-only) so `npm start` can print it and the CLI on the same machine can read it. Each stored
// token records its origin (tokens.chosen): one a person chose lives only while ATELIER_ADMIN_TOKEN names it, and is
// throttled like a guess from a locked-out address (server/auth/token-failures.ts); one the control plane minted is not.
import { chmod, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { and, eq, isNull, or, sql } from 'drizzle-orm';
import { audit } from '../audit/audit';
import { ADMIN_TOKEN_FILE, OBJECT_STORE_REPLICA_STALE_MS } from '../config/defaults';
import { ConfigError } from '../config/parse';
import { type Db, type HeldLock, holdSessionLock, type Tx } from '../db/client';
import { type Identity, identities } from '../db/tables/identities';
import { objectStoreReplicas } from '../db/tables/object-stores';
import { tokens } from '../db/tables/tokens';
import { ensureIdentity, hashToken, issueToken, mintToken } from './tokens';

/** Where the admin token is kept under the data dir. */
export const adminTokenFile = (dataDir: string) => path.join(dataDir, ADMIN_TOKEN_FILE);

/**
 * What mintToken makes. A stored admin token not of this shape was chosen by a person, whatever its row says: rows
 * stored before their origin was recorded (migration 0060) all say minted.
 */
const MINTED = /^atl_[A-Za-z0-9_-]{32}$/;

// Any fixed number. A replica given ATELIER_ADMIN_TOKEN holds it shared from before it stores its token until its claim
// records that it holds it (server/artifacts/replicas.ts); one started without the variable decides what to revoke
// holding it alone. So the two, started at the same instant, take turns: either the token is recorded as held before
// the revocation is decided (and stays), or it is revoked before the other looks at it (which then refuses to start, as
// for any revoked token), never revoked under a replica that goes on serving with it.
const ADMIN_TOKEN_LOCK = 0x61646d6e;

export interface SeededAdmin {
  token: string;
  /** On Postgres, with ATELIER_ADMIN_TOKEN: the lock above, to release once the claim recorded the token (or on stop). */
  hold: HeldLock | null;
}

/**
 * Makes sure the admin identity exists and its token is live; returns the token. ATELIER_ADMIN_TOKEN naming a token
 * that no longer works as the admin's (revoked, expired, another identity's) refuses the start with a ConfigError:
 * the admin would otherwise be handed a token every request refuses. Unset, every live admin token a person chose is
 * revoked (audited, said in the log): the operator took it out of the configuration, so it must stop working; except one
 * that a live replica of the same database was given (`replicas`: on Postgres), left alone with a warning saying what to
 * do: a replica started without the variable beside others started with it must not lock them out. The saved
 * one revoked (that way, or a leak dealt with through `revokeToken`) is replaced by a new one, said in the log: the
 * file is only a convenience for this machine.
 */
export async function seedAdmin(
  db: Db,
  options: { dataDir: string; token?: string; log?: (message: string) => void; replicas?: boolean; replicaStaleMs?: number },
): Promise<SeededAdmin> {
  const admin = await ensureIdentity(db, { name: 'admin', kind: 'user', role: 'admin' });
  const file = adminTokenFile(options.dataDir);
  const hold = options.token && options.replicas ? await holdSessionLock(db, ADMIN_TOKEN_LOCK, { shared: true }) : null;
  try {
    const token = options.token ? await keepChosen(db, admin, options.token, file) : await savedOrMinted(db, admin, file, options);
    await writeFile(file, `${token}\n`, { mode: 0o600 });
    await chmod(file, 0o600); // the mode above applies only to a new file
    return { token, hold };
  } catch (error) {
    await hold?.release();
    throw error;
  }
}

/** ATELIER_ADMIN_TOKEN: stored as chosen the first time, refused when it no longer works as the admin's. */
async function keepChosen(db: Db, admin: Identity, token: string, file: string): Promise<string> {
  const [held] = await heldToken(db, token);
  if (!held) {
    await db.transaction((tx) => issueAdminToken(tx, admin, token, true));
    return token;
  }
  const unusable = held.identityId !== admin.id ? `is ${held.owner}’s, not the admin’s` : whyDead(held);
  if (unusable)
    throw new ConfigError(
      `ATELIER_ADMIN_TOKEN names a token that ${unusable}, so every request with it would be refused: set a new one (openssl rand -base64 32), or unset it and use the token saved in ${file} (one is minted there if it is gone or no longer works).`,
    );
  if (!held.chosen && !MINTED.test(token))
    await db
      .update(tokens)
      .set({ chosen: true })
      .where(eq(tokens.hash, hashToken(token)));
  return token;
}

/**
 * ATELIER_ADMIN_TOKEN unset: the chosen admin tokens revoked, but for those live replicas were given (they record it
 * with their object store, server/artifacts/replicas.ts); the saved token if it is live and minted, else a new one.
 */
async function savedOrMinted(
  db: Db,
  admin: Identity,
  file: string,
  options: { log?: (message: string) => void; replicas?: boolean; replicaStaleMs?: number },
): Promise<string> {
  const { log } = options;
  const staleS = (options.replicaStaleMs ?? OBJECT_STORE_REPLICA_STALE_MS) / 1000;
  // A replica is live as the object store's claim counts it: seen within its stale time.
  const heldByLive = sql`exists (select 1 from ${objectStoreReplicas} r where r.admin_token_hash = ${tokens.hash}
    and r.last_seen_at > now() - make_interval(secs => ${staleS}))`;
  const saved = (await readFile(file, 'utf8').catch(() => '')).trim();
  const savedChosen = saved !== '' && !MINTED.test(saved);
  const savedHash = saved ? hashToken(saved) : '';
  return db.transaction(async (tx) => {
    // Alone: no replica given the variable is between storing its token and recording that it holds it.
    if (options.replicas) await tx.execute(sql`select pg_advisory_xact_lock(${ADMIN_TOKEN_LOCK})`);
    const [held] = saved ? await heldToken(tx, saved) : [];
    const revoked = await tx
      .update(tokens)
      .set({ revokedAt: new Date() })
      .where(
        and(
          eq(tokens.identityId, admin.id),
          isNull(tokens.revokedAt),
          // The saved token not of the minted shape was chosen, even in a row stored before origins were recorded.
          savedChosen ? or(eq(tokens.chosen, true), eq(tokens.hash, savedHash)) : eq(tokens.chosen, true),
          options.replicas ? sql`not ${heldByLive}` : undefined,
        ),
      )
      .returning({ id: tokens.id });
    const keptFor = options.replicas ? await liveHolders(tx, admin, staleS) : [];
    if (keptFor.length)
      log?.(
        `warning: ATELIER_ADMIN_TOKEN is not set on this replica, but live replica ${keptFor.join(', ')} was given it, so the admin token it set stays live: set ATELIER_ADMIN_TOKEN on every replica or on none (to take it out of service, unset it everywhere; the last replica restarted without it revokes it)`,
      );
    if (revoked.length) {
      await audit(tx, {
        identity: null,
        action: 'identity.token.revoke',
        decision: 'allow',
        subject: 'identity:admin',
        rule: 'an admin token a person chose lives only while ATELIER_ADMIN_TOKEN names it; it is no longer set',
        details: { revoked: revoked.length },
      });
      log?.(
        `warning: ATELIER_ADMIN_TOKEN is no longer set, so the admin token it set was revoked${revoked.length > 1 ? ` (${revoked.length} such tokens)` : ''}; use the admin token saved in ${file}`,
      );
    }
    // A saved token unknown here (a database started afresh) is taken again only if the control plane could have minted it.
    const why = !saved
      ? null
      : held && held.identityId !== admin.id
        ? `is ${held.owner}’s, not the admin’s`
        : (held && whyDead(held)) || (savedChosen || held?.chosen ? 'was set by ATELIER_ADMIN_TOKEN, which is no longer set' : null);
    if (saved && !why) {
      if (!held) await issueAdminToken(tx, admin, saved, false);
      return saved;
    }
    if (why) log?.(`warning: the admin token saved in ${file} ${why}; a new one was minted and saved there`);
    return issueAdminToken(tx, admin, mintToken(), false);
  });
}

/** A new admin token is a grant like any other: audited once, when it is first stored (not at each start). */
async function issueAdminToken(tx: Tx, admin: Identity, token: string, chosen: boolean): Promise<string> {
  await issueToken(tx, admin.id, 'admin', { token, chosen });
  await audit(tx, {
    identity: null,
    action: 'identity.token.issue',
    decision: 'allow',
    subject: 'identity:admin',
    rule: chosen
      ? 'the control plane stores the admin token ATELIER_ADMIN_TOKEN sets, at start'
      : 'the control plane mints the admin token at start (ATELIER_ADMIN_TOKEN unset), or keeps the data directory’s',
    details: { role: 'admin', origin: chosen ? 'chosen' : 'minted' },
  });
  return token;
}

const heldToken = (db: Db | Tx, token: string) =>
  db
    .select({
      identityId: tokens.identityId,
      owner: identities.name,
      revokedAt: tokens.revokedAt,
      expiresAt: tokens.expiresAt,
      chosen: tokens.chosen,
    })
    .from(tokens)
    .innerJoin(identities, eq(identities.id, tokens.identityId))
    .where(eq(tokens.hash, hashToken(token)));

/** Why a stored token no longer authenticates, or null while it does. */
function whyDead(held: { revokedAt: Date | null; expiresAt: Date | null }): string | null {
  if (held.revokedAt) return `was revoked at ${held.revokedAt.toISOString()}`;
  if (held.expiresAt && held.expiresAt <= new Date()) return `expired at ${held.expiresAt.toISOString()}`;
  return null;
}

/** The replicas (their names) live now that were given an admin token a person chose which is still live. */
async function liveHolders(tx: Tx, admin: Identity, staleS: number): Promise<string[]> {
  const rows = await tx
    .selectDistinct({ name: objectStoreReplicas.name })
    .from(objectStoreReplicas)
    .innerJoin(tokens, eq(tokens.hash, objectStoreReplicas.adminTokenHash))
    .where(and(eq(tokens.identityId, admin.id), isNull(tokens.revokedAt), sql`${objectStoreReplicas.lastSeenAt} > now() - make_interval(secs => ${staleS})`));
  return rows.map((r) => r.name);
}
