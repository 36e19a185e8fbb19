// Token changes across replicas: a change said on this replica (server/auth/token-cache.ts: a token revoked, a
// membership or a grant changed, committed) goes to every other replica over the bus's control topic
// `tokens-changed`, which forgets those identities' sessions there and checks their live subscriptions again at once.
// Best effort, like every control message: a replica that misses one answers from memory for at most
// ATELIER_TOKEN_CACHE_TTL_MS after the change committed, its subscriptions at the next ATELIER_TOKEN_RECHECK_MS.
import { randomUUID } from 'node:crypto';
import type { Bus, Subscription } from '../../plugins/bus/types';
import type { Service } from '../lifecycle';
import type { TokenCache } from './token-cache';

/** Identities per message: a grant to a team of many members goes in messages well under any bus's payload limit. */
const IDENTITIES_PER_MESSAGE = 1000;
/** How long a change waits for its message to reach the bus before its request is answered anyway. */
const PUBLISH_WAIT_MS = 1_000;

export function tokenSignals(cache: TokenCache, bus: Pick<Bus, 'kind' | 'publishControl' | 'subscribeControl'>, log: (message: string) => void): Service {
  const origin = randomUUID();
  let subscription: Subscription | undefined;
  let unlisten: (() => void) | undefined;
  return {
    name: 'token changes across replicas',
    async start() {
      if (bus.kind !== 'jetstream') return;
      subscription = await bus.subscribeControl('tokens-changed', (message) => {
        if (message.origin !== origin) cache.heard({ identities: message.identities });
      });
      // Awaited by whoever said it, so the message has normally reached the bus when the revoking request is answered;
      // but for PUBLISH_WAIT_MS at most: with NATS unreachable a flush waits for the reconnection, and a revocation must
      // not hang on it (the TTL bounds what the other replicas miss).
      unlisten = cache.onChange(async (change, local) => {
        if (!local) return;
        const ids = [...change.identities];
        const publishing = (async () => {
          for (let i = 0; i < ids.length; i += IDENTITIES_PER_MESSAGE)
            await bus.publishControl('tokens-changed', { identities: ids.slice(i, i + IDENTITIES_PER_MESSAGE), origin });
        })().catch((error: unknown) =>
          log(`token changes: not told to the other replicas (${(error as Error).message}); they forget within ATELIER_TOKEN_CACHE_TTL_MS`),
        );
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([publishing, new Promise((resolve) => (timer = setTimeout(resolve, PUBLISH_WAIT_MS)))]);
        clearTimeout(timer);
      });
    },
    async stop() {
      unlisten?.();
      await subscription?.stop();
    },
  };
}
