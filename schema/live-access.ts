// Live subscriptions: each holds a slot of the server's (server/events/live-subscriptions.ts) for as long as it
// runs and lets go of everything the moment it ends, and keeps checking the caller's access while it runs: the
// token every ATELIER_TOKEN_RECHECK_MS, and the ability rebuilt from the identity's current teams and grants (one
// check per token, shared by all its subscriptions), and at once when the token's identity changes.
import { subject } from '@casl/ability';
import { type AppAbility, sharedAbilityFor } from '../server/auth/ability';
import type { TokenCache } from '../server/auth/token-cache';
import { sessionForToken } from '../server/auth/tokens';
import type { Run } from '../server/db/tables/runs';
import { AtelierError, forbidden } from '../server/errors';
import type { LiveSubscription, LiveSubscriptions } from '../server/events/live-subscriptions';
import type { Context } from './context';

/**
 * A subscription's event stream, from `body` (an async generator), holding a slot from now until it ends; past the
 * caller's or the server's limit this throws TOO_MANY_SUBSCRIPTIONS before anything starts. However the stream
 * ends — the client completes it or goes away (graphql-ws and yoga's SSE then call `return`), the body finishes
 * or throws — the slot is freed, its timers stop and `live.signal` aborts at once. That matters because an async
 * generator waiting inside (on a quiet feed) would only see `return` at its next `yield`, perhaps never: here the
 * abort ends what it waits on first.
 */
export function liveStream<T>(ctx: Context, body: (live: LiveSubscription) => AsyncGenerator<T, void, undefined>): AsyncIterableIterator<T> {
  const live = ctx.services.subscriptions.open(ctx.token);
  let generator: AsyncGenerator<T, void, undefined>;
  try {
    generator = body(live);
  } catch (error) {
    live.end();
    throw error;
  }
  const settle = async (step: Promise<IteratorResult<T, void>>): Promise<IteratorResult<T>> => {
    try {
      const result = await step;
      if (result.done) live.end();
      return result.done ? { done: true, value: undefined } : result;
    } catch (error) {
      live.end();
      throw error;
    }
  };
  const stream: AsyncIterableIterator<T> = {
    next: () => settle(generator.next()),
    return: () => {
      live.end();
      return settle(generator.return(undefined));
    },
    throw: (error?: unknown) => {
      live.end();
      return settle(generator.throw(error));
    },
    [Symbol.asyncIterator]: () => stream,
  };
  return stream;
}

const watched = new WeakMap<Context, AppAbility>();

/** What one re-check of a token found: nothing (revoked or expired), or the ability rebuilt from its current grants. */
type TokenCheck = { ability: AppAbility } | null;

/**
 * Checks a live subscription's access again every ATELIER_TOKEN_RECHECK_MS, over graphql-ws and SSE alike: the
 * token (revoked or expired: UNAUTHENTICATED) and the ability rebuilt from the identity's current teams and grants
 * (a revoked grant or a removal from a team: FORBIDDEN, when `stillAllowed` no longer holds). Either ends it.
 * All the live subscriptions of one token, over any number of connections, share one check: one timer, one query
 * and one ability built per interval (a thousand subscriptions of a dashboard's token made a thousand of each);
 * each then applies its own `stillAllowed` to that ability. The check stops when the token's last one ends.
 */
export function watchAccess(ctx: Context, live: LiveSubscription, stillAllowed?: (ability: AppAbility) => boolean) {
  let ended: AtelierError | null = null;
  const end = (error: AtelierError) => {
    ended = error;
    live.end();
  };
  const { db, config } = ctx.services;
  const token = ctx.token;
  live.join<TokenCheck>(
    tokenCheckKey(ctx.identity.id, token),
    config.tokenRecheckMs,
    async () => {
      // Read now, not remembered (server/auth/token-cache.ts): a replica that missed a revocation's message still ends
      // the subscription within one re-check, as before there was a cache; the answer serves its requests after.
      const session = await sessionForToken(db, token, { fresh: true });
      return session ? { ability: sharedAbilityFor(session.identity, session.grants, session.scopes) } : null;
    },
    (check) => {
      if (live.signal.aborted) return;
      if (!check)
        return end(
          new AtelierError('UNAUTHENTICATED', 'Your token was revoked or has expired, so this subscription has ended; subscribe again with a valid token.'),
        );
      watched.set(ctx, check.ability);
      if (stillAllowed && !stillAllowed(check.ability))
        end(forbidden('Your access to this run’s events changed (a grant was revoked or you left a team), so this subscription has ended.'));
    },
  );
  return {
    /** The ability as of the last check (the request's own until the first). */
    ability: () => watched.get(ctx) ?? ctx.ability,
    assertStillValid() {
      if (ended) throw ended;
    },
  };
}

const tokenCheckKey = (identityId: string, token: string) => `token:${identityId}:${token}`;

/**
 * Checks the live subscriptions of an identity again at once when its tokens, memberships or grants change, here or
 * on another replica (server/auth/token-cache.ts), rather than at their next re-check. Returns what stops it.
 */
export function checkAtTokenChanges(cache: TokenCache, subscriptions: LiveSubscriptions): () => void {
  return cache.onChange((change) => {
    const prefixes = change.identities.map((id) => tokenCheckKey(id, ''));
    void subscriptions.checkNow((key) => change.all === true || prefixes.some((prefix) => key.startsWith(prefix)));
  });
}

/** Whether the ability lets its holder read a run's events (its data: logs, metrics, messages). */
export const mayWatch = (ability: AppAbility, run: Pick<Run, 'domain'>) => ability.can('read', subject('Run', { domain: run.domain }), 'events');

const seqs = new WeakMap<object, number>();
/** Remembers the `seq` of the event a subscription's resolver is answering now (its context is its own). */
export const noteSeq = (ctx: object, seq: number) => void seqs.set(ctx, seq);
/** The `seq` of the event just answered on this context, for the edge to send along (SSE `id:`, `extensions.seq`). */
export const notedSeq = (ctx: object): number | undefined => seqs.get(ctx);
