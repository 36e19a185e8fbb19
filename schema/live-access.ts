// Live subscriptions keep checking the caller's access while they run: the token every
// ATELIER_TOKEN_RECHECK_MS, and the ability rebuilt from the identity's current teams and grants.
import { subject } from '@casl/ability';
import { type AppAbility, defineAbilityFor } from '../server/auth/ability';
import { sessionForToken } from '../server/auth/tokens';
import type { Run } from '../server/db/tables/runs';
import { AtelierError, forbidden } from '../server/errors';
import type { Context } from './context';

const watched = new WeakMap<Context, AppAbility>();

/**
 * Checks a live subscription's access again every ATELIER_TOKEN_RECHECK_MS, over graphql-ws and SSE alike: the
 * token (revoked or expired: UNAUTHENTICATED) and the ability rebuilt from the identity's current teams and grants
 * (a revoked grant or a removal from a team: FORBIDDEN, when `stillAllowed` no longer holds). Either ends it.
 */
export function watchAccess(ctx: Context, abort: AbortController, stillAllowed?: (ability: AppAbility) => boolean) {
  let ended: AtelierError | null = null;
  const end = (error: AtelierError) => {
    ended = error;
    abort.abort();
  };
  const timer = setInterval(() => {
    void (async () => {
      const session = await sessionForToken(ctx.services.db, ctx.token);
      if (!session)
        return end(
          new AtelierError('UNAUTHENTICATED', 'Your token was revoked or has expired, so this subscription has ended; subscribe again with a valid token.'),
        );
      const ability = defineAbilityFor(session.identity, session.grants, session.scopes);
      watched.set(ctx, ability);
      if (stillAllowed && !stillAllowed(ability))
        end(forbidden('Your access to this run’s events changed (a grant was revoked or you left a team), so this subscription has ended.'));
    })().catch(() => undefined); // a failed check is retried at the next one
  }, ctx.services.config.tokenRecheckMs);
  timer.unref();
  return {
    stop: () => clearInterval(timer),
    /** The ability as of the last check (the request's own until the first). */
    ability: () => watched.get(ctx) ?? ctx.ability,
    assertStillValid() {
      if (ended) throw ended;
    },
  };
}

/** Whether the ability lets its holder read a run's events (its data: logs, metrics, messages). */
export const mayWatch = (ability: AppAbility, run: Pick<Run, 'domain'>) => ability.can('read', subject('Run', { domain: run.domain }), 'events');
