// This replica's memory of live tokens' sessions (what server/auth/tokens.ts's one lookup reads: the identity, the
// token's scopes and expiry, the grants of its teams), so that a request of a token seen a moment ago costs no round
// trip to Postgres. A session is kept for at most `ttlMs` from when its lookup began, and its token's expiry is checked
// on every hit. Whatever changes what a lookup would read is told by the database itself (triggers of migration 0067
// notify the identities concerned, server/auth/token-watch.ts hears them: `heard`), whoever wrote it, this replica,
// another one or an operator's SQL; a mutation of this replica also says so itself before it answers (`changed`), so
// its own next request never waits for the notification. While the notifications may be missed (the listening
// connection lost: `watching(false)`) nothing is served from memory, and once they are heard again everything
// remembered is forgotten. Only live tokens are kept: an unknown, expired or revoked one is looked up every time
// (server/auth/token-failures.ts counts those). One lookup per token runs at a time: requests of a token whose lookup is
// under way wait for its answer.
import { DEFAULT_TOKEN_CACHE_TTL_MS } from '../config/defaults';
import type { Db } from '../db/client';
import type { Identity } from '../db/tables/identities';
import type { Grants } from './ability';

/** What a live token's lookup found (server/auth/tokens.ts). */
export interface TokenSession {
  identity: Identity;
  /** The token's scopes (null: unscoped). */
  scopes: string[] | null;
  /** A person chose it (tokens.chosen). */
  chosen: boolean;
  grants: Grants;
  task: { id: string; attempt: number } | null;
  /** When the token expires (null: never). */
  expiresAt: Date | null;
}

/** Identities whose tokens, memberships or grants changed; `all`: any identity's may have (forget everything). */
export type TokenChange = { identities: readonly string[]; all?: boolean };

export interface TokenCache {
  /**
   * The session of the token hashed `hash`: remembered (younger than `ttlMs`, token unexpired), else `load`ed, a load
   * under way for it shared. `fresh`: always loaded (a live subscription's re-check), the answer remembered for the
   * requests after it.
   */
  session(hash: string, load: () => Promise<TokenSession | null>, options?: { fresh?: boolean }): Promise<TokenSession | null>;
  /**
   * These identities' tokens, memberships or grants changed (committed, by this replica): forgotten here at once, and
   * each listener told (live subscriptions, to check their tokens again now). Resolves once every listener has (a
   * listener's failure is its own to report).
   */
  changed(change: TokenChange): Promise<void>;
  /** The same, heard from the database (a notification: any replica's change, or an operator's SQL). */
  heard(change: TokenChange): void;
  /**
   * Whether the database's notifications of changes reach this replica. False (the listening connection lost): nothing
   * is served from memory or remembered, every request looks its token up. True again: everything remembered before is
   * forgotten (a change may have been missed meanwhile), listeners told as of a change of every identity. A cache
   * nobody watches for (tests, tools) is watching from the start: the TTL alone bounds what it misses.
   */
  watching(heard: boolean): void;
  /** Calls `listener` with every change (`local`: said on this replica) until the returned function is called. */
  onChange(listener: (change: TokenChange, local: boolean) => unknown): () => void;
  /** Lookups that went to the database (tests and the bench count them). */
  readonly loads: number;
}

/** Sessions remembered at once; past it the oldest is dropped (a cache, never a registry of tokens). */
const MAX_SESSIONS = 10_000;

interface Kept {
  session: TokenSession;
  /** When its lookup began + ttl: a change committed after the lookup read is bounded by this, message or not. */
  until: number;
}

export function createTokenCache(options: { ttlMs: number; now?: () => number }): TokenCache {
  const now = options.now ?? Date.now;
  const kept = new Map<string, Kept>();
  const inFlight = new Map<string, Promise<TokenSession | null>>();
  const listeners = new Set<(change: TokenChange, local: boolean) => unknown>();
  // Bumped by every change: a lookup begun before one may have read what it changed, so its answer is not remembered.
  let generation = 0;
  // False while changes may go unheard: memory is neither read nor written.
  let serving = true;
  let loads = 0;

  const load = (hash: string, read: () => Promise<TokenSession | null>): Promise<TokenSession | null> => {
    const began = now();
    const at = generation;
    loads++;
    const loading = read().then(
      (session) => {
        if (inFlight.get(hash) === loading) inFlight.delete(hash);
        if (at !== generation || !serving || options.ttlMs <= 0) return session;
        if (session && live(session, now())) remember(hash, { session, until: began + options.ttlMs });
        else kept.delete(hash);
        return session;
      },
      (error: unknown) => {
        if (inFlight.get(hash) === loading) inFlight.delete(hash);
        throw error;
      },
    );
    if (options.ttlMs > 0 && serving) inFlight.set(hash, loading);
    return loading;
  };
  const remember = (hash: string, entry: Kept) => {
    kept.delete(hash);
    if (kept.size >= MAX_SESSIONS) kept.delete(kept.keys().next().value as string);
    kept.set(hash, entry);
  };
  const forget = (change: TokenChange) => {
    generation++;
    // A lookup under way may have read before the change committed: requests from now on start their own.
    inFlight.clear();
    if (change.all) return kept.clear();
    const ids = new Set(change.identities);
    for (const [hash, entry] of kept) if (ids.has(entry.session.identity.id)) kept.delete(hash);
  };
  const tell = (change: TokenChange, local: boolean) =>
    Promise.all(
      [...listeners].map(async (listener) => {
        try {
          await listener(change, local);
        } catch {
          // a listener reports its own failures; the change is forgotten here whatever they do
        }
      }),
    ).then(() => undefined);

  return {
    session(hash, read, { fresh = false } = {}) {
      if (!fresh && serving) {
        const entry = kept.get(hash);
        if (entry) {
          const at = now();
          if (at < entry.until && live(entry.session, at)) return Promise.resolve(entry.session);
          kept.delete(hash);
        }
        const loading = inFlight.get(hash);
        if (loading) return loading;
      }
      return load(hash, read);
    },
    changed(change) {
      forget(change);
      return tell(change, true);
    },
    heard(change) {
      forget(change);
      void tell(change, false);
    },
    watching(heard) {
      if (heard === serving) return;
      serving = heard;
      const everything = { identities: [], all: true };
      forget(everything);
      if (heard) void tell(everything, false);
    },
    onChange(listener) {
      listeners.add(listener);
      return () => void listeners.delete(listener);
    },
    get loads() {
      return loads;
    },
  };
}

const live = (session: TokenSession, at: number) => session.expiresAt === null || session.expiresAt.getTime() > at;

// One per database handle, i.e. per replica (its routes, GraphQL and the writes that change tokens share its handle),
// as server/auth/token-failures.ts keeps its counts.
const perDb = new WeakMap<Db, TokenCache>();

/** Gives this replica's handle its cache (the app, with ATELIER_TOKEN_CACHE_TTL_MS), before any request. */
export function useTokenCache(db: Db, cache: TokenCache): TokenCache {
  perDb.set(db, cache);
  return cache;
}

/** This replica's token cache (one with the default TTL for a handle the app did not set one for). */
export function tokenCacheOf(db: Db): TokenCache {
  let cache = perDb.get(db);
  if (!cache) perDb.set(db, (cache = createTokenCache({ ttlMs: DEFAULT_TOKEN_CACHE_TTL_MS })));
  return cache;
}

/** Says, after a commit, that these identities' tokens, memberships or grants changed (see TokenCache.changed). */
export const tokensChanged = (db: Db, identities: readonly string[]): Promise<void> =>
  identities.length ? tokenCacheOf(db).changed({ identities }) : Promise.resolve();
