// Users and service accounts for the API: by id and by name, creating one with its first token, issuing
// another token, and revoking a service account's tokens. Callers check that the caller is an admin.
import { and, eq, inArray, isNull } from 'drizzle-orm';
import type { Db } from '../db/client';
import { type Identity, identities } from '../db/tables/identities';
import { tokens } from '../db/tables/tokens';
import { AtelierError, badInput, notFound } from '../errors';
import { parseScopes } from './ability';
import { ensureIdentity, issueToken } from './tokens';

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
  return issueFor(db, await ensureIdentity(db, { name, kind, role, ownerId: kind === 'service' ? (ownerId ?? null) : null }), expiresInDays, scopes);
}

/** Issues a new token for an identity, expiring after `expiresInDays` (never when not given). */
export async function issueFor(db: Db, identity: Identity, expiresInDays: number | null | undefined, scopes?: string[] | null): Promise<IssuedToken> {
  const expiresAt = expiresInDays ? new Date(Date.now() + expiresInDays * 86_400_000) : null;
  const token = await issueToken(db, identity.id, `service:${identity.name}`, { expiresAt: expiresAt ?? undefined, scopes: scopes ?? null });
  return { identity, token, expiresAt, scopes: scopes ?? null };
}

/** Revokes every live token of an identity; returns how many. */
export async function revokeTokensOf(db: Db, identityId: string): Promise<number> {
  const revoked = await db
    .update(tokens)
    .set({ revokedAt: new Date() })
    .where(and(eq(tokens.identityId, identityId), isNull(tokens.revokedAt)))
    .returning({ id: tokens.id });
  return revoked.length;
}
