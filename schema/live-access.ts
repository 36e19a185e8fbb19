// Live subscriptions: each holds a slot of the server's (server/events/live-subscriptions.ts) for as long as it
// runs and lets go of everything the moment it ends, and keeps checking the caller's access while it runs: the
// token every ATELIER_TOKEN_RECHECK_MS, and the ability rebuilt from the identity's current teams and grants.
import { subject } from '@casl/ability';
import { type AppAbility, defineAbilityFor } from '../server/auth/ability';
import { sessionForToken } from '../server/auth/tokens';
import type { Run } from '../server/db/tables/runs';
import { AtelierError, forbidden } from '../server/errors';
import type { LiveSubscription } from '../server/events/live-subscriptions';
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

/**
 * The token's session as of at most half a re-check interval ago: a token's subscriptions share one query per
 * interval rather than each running its own (a hundred of them would otherwise make a hundred queries).
 */
const recentSessions = new WeakMap<Context['services'], Map<string, { at: number; session: ReturnType<typeof sessionForToken> }>>();
function recentSession(ctx: Context): ReturnType<typeof sessionForToken> {
  let byToken = recentSessions.get(ctx.services);
  if (!byToken) recentSessions.set(ctx.services, (byToken = new Map()));
  const now = Date.now();
  const fresh = ctx.services.config.tokenRecheckMs / 2;
  const recent = byToken.get(ctx.token);
  if (recent && now - recent.at < fresh) return recent.session;
  for (const [token, entry] of byToken) if (now - entry.at >= fresh) byToken.delete(token);
  const session = sessionForToken(ctx.services.db, ctx.token);
  const entry = { at: now, session };
  byToken.set(ctx.token, entry);
  session.catch(() => byToken.get(ctx.token) === entry && byToken.delete(ctx.token)); // a failed check is not shared
  return session;
}

/**
 * Checks a live subscription's access again every ATELIER_TOKEN_RECHECK_MS, over graphql-ws and SSE alike: the
 * token (revoked or expired: UNAUTHENTICATED) and the ability rebuilt from the identity's current teams and grants
 * (a revoked grant or a removal from a team: FORBIDDEN, when `stillAllowed` no longer holds). Either ends it; the
 * timer is the subscription's, so it stops when the subscription ends for any reason.
 */
export function watchAccess(ctx: Context, live: LiveSubscription, stillAllowed?: (ability: AppAbility) => boolean) {
  let ended: AtelierError | null = null;
  const end = (error: AtelierError) => {
    ended = error;
    live.end();
  };
  live.every(ctx.services.config.tokenRecheckMs, () => {
    void (async () => {
      const session = await recentSession(ctx);
      if (live.signal.aborted) return;
      if (!session)
        return end(
          new AtelierError('UNAUTHENTICATED', 'Your token was revoked or has expired, so this subscription has ended; subscribe again with a valid token.'),
        );
      const ability = defineAbilityFor(session.identity, session.grants, session.scopes);
      watched.set(ctx, ability);
      if (stillAllowed && !stillAllowed(ability))
        end(forbidden('Your access to this run’s events changed (a grant was revoked or you left a team), so this subscription has ended.'));
    })().catch(() => undefined); // a failed check is retried at the next one
  });
  return {
    /** The ability as of the last check (the request's own until the first). */
    ability: () => watched.get(ctx) ?? ctx.ability,
    assertStillValid() {
      if (ended) throw ended;
    },
  };
}

/** Whether the ability lets its holder read a run's events (its data: logs, metrics, messages). */
export const mayWatch = (ability: AppAbility, run: Pick<Run, 'domain'>) => ability.can('read', subject('Run', { domain: run.domain }), 'events');

const seqs = new WeakMap<object, number>();
/** Remembers the `seq` of the event a subscription's resolver is answering now (its context is its own). */
export const noteSeq = (ctx: object, seq: number) => void seqs.set(ctx, seq);
/** The `seq` of the event just answered on this context, for the edge to send along (SSE `id:`, `extensions.seq`). */
export const notedSeq = (ctx: object): number | undefined => seqs.get(ctx);
