// The one bearer-token check, shared by GraphQL over HTTP and SSE (yoga's context), graphql-ws `onConnect`, the
// artifact, MLflow, observation and hook routes: where a token may come from, what a live token gives (remembered by
// this replica a moment: server/auth/token-cache.ts), and how often one address may present a dead one.
import type { Grants } from '../auth/ability';
import { sourceOf, tokenFailuresOf } from '../auth/token-failures';
import { sessionForToken } from '../auth/tokens';
import type { Db } from '../db/client';
import type { Identity } from '../db/tables/identities';
import { AtelierError } from '../errors';

/** Where a caller may put its token: an `Authorization` header, or graphql-ws connection params. */
export interface Credentials {
  authorization?: string | null;
  /** `{ authorization: 'Bearer …' }` or `{ token: '…' }`, as browsers cannot set headers on a WebSocket. */
  connectionParams?: Readonly<Record<string, unknown>> | null;
  /**
   * The request's address (`peerOf`, server/http/peer.ts: the TCP peer, or the client a trusted proxy names): failed
   * tokens are counted per address, and an address past its limit has its dead tokens refused
   * (server/auth/token-failures.ts). Required, so that no edge checks tokens unthrottled.
   */
  peer: string | undefined;
}

export interface Session {
  /** The bearer token itself: live subscriptions check it again while they run. */
  token: string;
  identity: Identity;
  /** The token's scopes (null: unscoped). */
  scopes: string[] | null;
  grants: Grants;
  /** A task's own token (MLFLOW_TRACKING_TOKEN): it reaches that task's tracking data only (its scopes are empty). */
  task: { id: string; attempt: number } | null;
}

/** The token the credentials carry, header first; null when there is none. */
export function tokenOf(credentials: Omit<Credentials, 'peer'>): string | null {
  const params = credentials.connectionParams;
  return bearer(credentials.authorization) ?? bearer(params?.authorization) ?? nonEmptyString(params?.token);
}

/**
 * The session of a live token; throws UNAUTHENTICATED saying what to send when the token is missing or dead, and
 * TOO_MANY_AUTH_FAILURES (429, with `retryAfterS`) instead for a dead token (or a chosen secret's, ATELIER_ADMIN_TOKEN)
 * while the peer's address is past its limit of failed tokens.
 */
export async function authenticate(db: Db, credentials: Credentials): Promise<Session> {
  const token = tokenOf(credentials);
  if (!token)
    throw new AtelierError(
      'UNAUTHENTICATED',
      'Missing bearer token: send "Authorization: Bearer <token>" (the admin token is in $ATELIER_DATA_DIR/admin-token).',
    );
  const failures = tokenFailuresOf(db);
  const found = await sessionForToken(db, token);
  const session = found && { identity: found.identity, scopes: found.scopes, grants: found.grants, task: found.task };
  // A live minted token passes even from a locked-out address (server/auth/token-failures.ts says why); a dead one,
  // or a live secret a person chose (tokens.chosen), is refused there with TOO_MANY_AUTH_FAILURES, one answer for both.
  if (session && !found.chosen) return { token, ...session };
  const source = sourceOf(credentials.peer);
  failures.assertMayTry(source);
  if (!session) await failures.failed(source);
  if (!session) throw new AtelierError('UNAUTHENTICATED', 'The bearer token is unknown, expired or revoked; ask an admin for a new one.');
  return { token, ...session };
}

/**
 * As `authenticate`, with null for a missing or dead token (other failures still throw: the database's, and an
 * address past its limit of failed tokens, TOO_MANY_AUTH_FAILURES, which its caller answers 429 with Retry-After).
 */
export async function authenticated(db: Db, credentials: Credentials): Promise<Session | null> {
  try {
    return await authenticate(db, credentials);
  } catch (error) {
    if (error instanceof AtelierError && error.code === 'UNAUTHENTICATED') return null;
    throw error;
  }
}

function bearer(value: unknown): string | null {
  if (typeof value !== 'string') return null;
  const m = /^Bearer\s+(\S+)$/i.exec(value.trim());
  return m ? m[1]! : null;
}

const nonEmptyString = (value: unknown): string | null => (typeof value === 'string' && value ? value : null);
