// Bearer tokens: minted once, shown once, stored only as a SHA-256 hash; looked up per request (or remembered a moment:
// server/auth/token-cache.ts).
import { hash, randomBytes } from 'node:crypto';
import { and, eq, gt, isNull, or, sql } from 'drizzle-orm';
import type { Db, Tx } from '../db/client';
import { builtOnce } from '../db/prepared';
import { type Identity, identities } from '../db/tables/identities';
import { tokens } from '../db/tables/tokens';
import { grantedDomains, grantsFrom } from './grants';
import { type TokenSession, tokenCacheOf } from './token-cache';

// One call, not createHash's object and its update and digest: every request with a token hashes it (token-cache.ts).
export const hashToken = (token: string) => hash('sha256', token, 'hex');
export const mintToken = () => `atl_${randomBytes(24).toString('base64url')}`;

/** Stores a token for an identity; `token` is minted when not given (`chosen`: a person chose it, see tokens.chosen). Returns the plain token. */
export async function issueToken(
  db: Db | Tx,
  identityId: string,
  name: string,
  options: { token?: string; expiresAt?: Date; scopes?: string[] | null; task?: { id: string; attempt: number }; chosen?: boolean } = {},
): Promise<string> {
  const token = options.token ?? mintToken();
  await db
    .insert(tokens)
    .values({
      identityId,
      name,
      hash: hashToken(token),
      expiresAt: options.expiresAt ?? null,
      scopes: options.scopes ?? null,
      taskId: options.task?.id ?? null,
      taskAttempt: options.task?.attempt ?? null,
      chosen: options.chosen ?? false,
    })
    .onConflictDoNothing({ target: tokens.hash });
  return token;
}

/** The identity a live (unexpired, unrevoked) token belongs to, or null. */
export async function identityForToken(db: Db, token: string): Promise<Identity | null> {
  return (await sessionForToken(db, token))?.identity ?? null;
}

/**
 * The identity a live token belongs to, with the token's scopes (null: unscoped), whether a person chose it
 * (tokens.chosen), when it expires and the grants of the teams it belongs to with a writing role (what `grantsOf`
 * reads), in one query; or null. Remembered by this replica for a short while (server/auth/token-cache.ts says how a
 * revocation or a changed grant still applies); `fresh`: read now whatever is remembered.
 */
export function sessionForToken(db: Db, token: string, options?: { fresh?: boolean }): Promise<TokenSession | null> {
  const hash = hashToken(token);
  return tokenCacheOf(db).session(hash, () => lookUp(db, hash), options);
}

async function lookUp(db: Db, hash: string): Promise<TokenSession | null> {
  const [row] = await tokenLookup(db, { hash, now: new Date().toISOString() });
  if (!row) return null;
  const task = row.taskId ? { id: row.taskId, attempt: row.taskAttempt ?? 0 } : null;
  return { identity: row.identity, scopes: row.scopes, chosen: row.chosen, grants: grantsFrom(row.identity, row.granted), task, expiresAt: row.expiresAt };
}

/** Every request's first statement: built once (server/db/prepared.ts). `now` is an ISO timestamp. */
const tokenLookup = builtOnce<{ hash: string; now: string }>()((db) =>
  db
    .select({
      identity: identities,
      scopes: tokens.scopes,
      chosen: tokens.chosen,
      expiresAt: tokens.expiresAt,
      taskId: tokens.taskId,
      taskAttempt: tokens.taskAttempt,
      granted: grantedDomains(identities.id),
    })
    .from(tokens)
    .innerJoin(identities, eq(identities.id, tokens.identityId))
    .where(
      and(
        eq(tokens.hash, sql.placeholder('hash')),
        isNull(tokens.revokedAt),
        or(isNull(tokens.expiresAt), gt(tokens.expiresAt, sql`${sql.placeholder('now')}::timestamptz`)),
      ),
    )
    .limit(1),
);

/** Finds or creates an identity by name. */
export async function ensureIdentity(
  db: Db | Tx,
  values: { name: string; kind: Identity['kind']; role: Identity['role']; ownerId?: string | null },
): Promise<Identity> {
  await db.insert(identities).values(values).onConflictDoNothing({ target: identities.name });
  const [row] = await db.select().from(identities).where(eq(identities.name, values.name));
  return row!;
}
