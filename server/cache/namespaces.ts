// Private cache namespaces (an experimentation run's `cacheNamespace`): the first run in one claims it for the human
// behind its starter (a service account counts as its owner, server/auth/people.ts); afterwards only that human,
// through any of their identities, runs, clones, reruns or previews in it. Anyone else is refused (FORBIDDEN,
// audited) without being told whose it is: the refusal says only that the name is taken, as a taken user name would.
import { eq } from 'drizzle-orm';
import { humanBehind } from '../auth/people';
import { refusal } from '../auth/refuse';
import type { Db, Tx } from '../db/client';
import { cacheNamespaces } from '../db/tables/cache';
import type { Identity } from '../db/tables/identities';

export const CACHE_NAMESPACE_RULE = 'a private cache namespace is used only by the human who first used it (and their service accounts)';

/** Whose a namespace is for an identity: the human behind it, or the identity itself when nobody is known to be. */
const ownerOf = (identity: Identity) => humanBehind(identity) ?? identity.id;

function refused(identity: Identity, name: string) {
  return refusal(
    { identity, action: 'cache.namespace', subject: `cache-namespace:${name}`, rule: CACHE_NAMESPACE_RULE },
    `Cache namespace "${name}" is someone else's: a private namespace belongs to whoever used it first. Choose another name (your runs reuse only results of your own namespaces).`,
  );
}

/**
 * Claims `name` for `identity`'s human when nobody has it, and throws FORBIDDEN (an audited refusal) when someone
 * else does. Runs the platform starts itself (no identity, e.g. a nested run of an already checked parent) pass.
 */
export async function claimCacheNamespace(db: Db | Tx, name: string, identity: Identity | null): Promise<void> {
  if (!identity) return;
  await db
    .insert(cacheNamespaces)
    .values({ name, ownerId: ownerOf(identity), claimedBy: identity.id })
    .onConflictDoNothing();
  const [row] = await db.select({ ownerId: cacheNamespaces.ownerId }).from(cacheNamespaces).where(eq(cacheNamespaces.name, name));
  if (row?.ownerId !== ownerOf(identity)) throw refused(identity, name);
}

/** As `claimCacheNamespace`, for what only reads the cache (a preview): refuses someone else's, claims nothing. */
export async function assertMayUseCacheNamespace(db: Db | Tx, name: string, identity: Identity | null): Promise<void> {
  if (!identity) return;
  const [row] = await db.select({ ownerId: cacheNamespaces.ownerId }).from(cacheNamespaces).where(eq(cacheNamespaces.name, name));
  if (row && row.ownerId !== ownerOf(identity)) throw refused(identity, name);
}
