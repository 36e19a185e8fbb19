// Users and service accounts for the API: by id and by name, creating one with its first token, issuing
// another token, revoking a service account's tokens, or one token by its text. Callers check that the caller is an admin. Each of these
// grants or takes access, so each is audited (who, what, to whom, when) in its own transaction: never the token. A
// revocation is said, once committed, to every replica's memory of tokens (server/auth/token-cache.ts).
import { and, eq, inArray, isNull } from 'drizzle-orm';
import { audit } from '../audit/audit';
import type { Db, Tx } from '../db/client';
import { type Identity, identities } from '../db/tables/identities';
import { tokens } from '../db/tables/tokens';
import { AtelierError, badInput, notFound } from '../errors';
import { parseScopes } from './ability';
import { tokensChanged } from './token-cache';
import { hashToken, issueToken } from './tokens';

const namePattern = /^[a-z0-9][a-z0-9._-]{1,62}$/;

export interface IssuedToken {
  identity: Identity;
  token: string;
  expiresAt: Date | null;
  scopes: string[] | null;
}

export const identitiesByIds = (db: Db, ids: string[]): Promise<Identity[]> => db.select().from(identities).where(inArray(identities.id, ids));

export async function identityWithName(db: Db, name: string): Promise<Identity | null> {
  const [identity] = await db.select().from(identities).where(eq(identities.name, name));
  return identity ?? null;
}

export async function serviceAccountWithName(db: Db, name: string): Promise<Identity | null> {
  const [identity] = await db
    .select()
    .from(identities)
    .where(and(eq(identities.name, name), eq(identities.kind, 'service')));
  return identity ?? null;
}

/** The user a new service account acts for (its owner): a person, never another service account. */
export async function ownerFor(db: Db, name: string): Promise<Identity> {
  const owner = await identityWithName(db, name);
  if (!owner) throw notFound(`No user "${name}" to own the service account; create the user first.`);
  if (owner.kind !== 'user') throw badInput(`The owner of a service account is a user; "${name}" is a service account.`);
  return owner;
}

/** Creates a user or service account (acting for the user `ownerId`) and issues its first token; CONFLICT when the name is taken. */
export async function createIdentity(
  db: Db,
  caller: Identity,
  kind: Identity['kind'],
  name: string,
  role: Identity['role'],
  expiresInDays: number | null | undefined,
  scopes?: string[] | null,
  ownerId?: string | null,
): Promise<IssuedToken> {
  if (scopes) parseScopes(scopes);
  if (!namePattern.test(name)) throw badInput(`A ${kind === 'user' ? 'user' : 'service account'} name is 2–63 lowercase letters, digits, ".", "_" or "-".`);
  if (expiresInDays !== null && expiresInDays !== undefined && (expiresInDays < 1 || expiresInDays > 3650))
    throw badInput('expiresInDays must be between 1 and 3650.');
  const existing = await identityWithName(db, name);
  if (existing)
    throw new AtelierError(
      'CONFLICT',
      `An identity named "${name}" already exists${existing.kind === 'service' ? '; issue it a new token with issueServiceToken' : ''}.`,
    );
  return db.transaction(async (tx) => {
    // Inserted here or refused: two creations of one name at once must not both issue a token to the one identity.
    const [identity] = await tx
      .insert(identities)
      .values({ name, kind, role, ownerId: kind === 'service' ? (ownerId ?? null) : null })
      .onConflictDoNothing({ target: identities.name })
      .returning();
    if (!identity) throw new AtelierError('CONFLICT', `An identity named "${name}" already exists.`);
    await audit(tx, {
      identity: caller,
      action: kind === 'user' ? 'identity.user.create' : 'identity.service.create',
      decision: 'allow',
      subject: `identity:${name}`,
      rule: 'admins create users and service accounts',
      details: { kind, role, ...(kind === 'service' ? { ownerId: ownerId ?? null } : {}) },
    });
    return issueIn(tx, caller, identity, expiresInDays, scopes);
  });
}

/** Issues a new token for an identity, expiring after `expiresInDays` (never when not given), by `caller`. */
export async function issueFor(
  db: Db,
  caller: Identity,
  identity: Identity,
  expiresInDays: number | null | undefined,
  scopes?: string[] | null,
): Promise<IssuedToken> {
  return db.transaction((tx) => issueIn(tx, caller, identity, expiresInDays, scopes));
}

async function issueIn(tx: Tx, caller: Identity, identity: Identity, expiresInDays: number | null | undefined, scopes?: string[] | null): Promise<IssuedToken> {
  const expiresAt = expiresInDays ? new Date(Date.now() + expiresInDays * 86_400_000) : null;
  const token = await issueToken(tx, identity.id, `service:${identity.name}`, { expiresAt: expiresAt ?? undefined, scopes: scopes ?? null });
  await audit(tx, {
    identity: caller,
    action: 'identity.token.issue',
    decision: 'allow',
    subject: `identity:${identity.name}`,
    rule: 'admins issue tokens',
    details: { role: identity.role, expiresAt: expiresAt?.toISOString() ?? null, scopes: scopes ?? null },
  });
  return { identity, token, expiresAt, scopes: scopes ?? null };
}

/** Revokes every live token of an identity, by `caller`; returns how many. */
export async function revokeTokensOf(db: Db, caller: Identity, identity: Identity): Promise<number> {
  const count = await db.transaction(async (tx) => {
    const revoked = await tx
      .update(tokens)
      .set({ revokedAt: new Date() })
      .where(and(eq(tokens.identityId, identity.id), isNull(tokens.revokedAt)))
      .returning({ id: tokens.id });
    await audit(tx, {
      identity: caller,
      action: 'identity.token.revoke',
      decision: 'allow',
      subject: `identity:${identity.name}`,
      rule: 'admins revoke tokens',
      details: { revoked: revoked.length },
    });
    return revoked.length;
  });
  await tokensChanged(db, [identity.id]);
  return count;
}

/**
 * Revokes one token given its text (a leaked one, or the old one once a rotation's overlap ends), any identity's,
 * the admin's too; the identity's other tokens stay live. False when it was revoked already; NOT_FOUND when no token
 * here has that text. The audit names whose token it was, never the token.
 */
export async function revokeToken(db: Db, caller: Identity, token: string): Promise<boolean> {
  const revoked = await db.transaction(async (tx) => {
    const [held] = await tx
      .select({ id: tokens.id, identityId: tokens.identityId, revokedAt: tokens.revokedAt, owner: identities.name })
      .from(tokens)
      .innerJoin(identities, eq(identities.id, tokens.identityId))
      .where(eq(tokens.hash, hashToken(token)));
    if (!held) throw notFound('No token here has that text: check that you pasted the whole token (revokeServiceTokens revokes all of an account’s).');
    if (held.revokedAt) return null;
    await tx.update(tokens).set({ revokedAt: new Date() }).where(eq(tokens.id, held.id));
    await audit(tx, {
      identity: caller,
      action: 'identity.token.revoke',
      decision: 'allow',
      subject: `identity:${held.owner}`,
      rule: 'admins revoke tokens',
      details: { revoked: 1 },
    });
    return held.identityId;
  });
  if (revoked) await tokensChanged(db, [revoked]);
  return revoked !== null;
}
