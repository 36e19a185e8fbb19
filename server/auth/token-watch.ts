// The database tells this replica's token cache (server/auth/token-cache.ts) what changed: the triggers of migration
// 0067 notify channel `atelier_token_changes` with the identities whose tokens, memberships or grants a committed
// statement changed (`*`: too many to name, or a TRUNCATE), whoever wrote it; this service LISTENs and forgets them. While
// its connection is lost the cache serves nothing from memory, and forgets everything once it listens again.
import type { Database } from '../db/client';
import type { Unlisten } from '../db/listen';
import type { Service } from '../lifecycle';
import type { TokenCache } from './token-cache';

/** The channel the triggers notify (server/db/migrations/0067_token_changes.sql). */
export const TOKEN_CHANGES_CHANNEL = 'atelier_token_changes';

/** A notification's payload: comma-separated identity ids, or `*` for every identity. */
export const parseTokenChange = (payload: string) =>
  payload === '*' ? { identities: [], all: true } : { identities: payload.split(',').filter((id) => id !== '') };

export function tokenWatch(cache: TokenCache, database: Pick<Database, 'listen'>, log: (message: string) => void): Service {
  let unlisten: Unlisten | undefined;
  return {
    name: 'token changes from the database',
    async start() {
      // Until the LISTEN is answered a change could go unheard.
      cache.watching(false);
      unlisten = await database.listen(TOKEN_CHANGES_CHANNEL, {
        notify: (payload) => cache.heard(parseTokenChange(payload)),
        up: () => cache.watching(true),
        down: () => {
          log('token changes: the database connection that hears them closed; tokens are looked up on every request until it is open again');
          cache.watching(false);
        },
      });
    },
    async stop() {
      await unlisten?.();
    },
  };
}
