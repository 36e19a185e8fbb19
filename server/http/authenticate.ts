// The one bearer-token check, shared by GraphQL over HTTP and SSE (yoga's context), graphql-ws `onConnect`, the
// artifact route and the git hook: where a token may come from, and what a live token gives.
import type { Grants } from '../auth/ability';
import { sessionForToken } from '../auth/tokens';
import type { Db } from '../db/client';
import type { Identity } from '../db/tables/identities';
import { AtelierError } from '../errors';

/** Where a caller may put its token: an `Authorization` header, or graphql-ws connection params. */
export interface Credentials {
  authorization?: string | null;
  /** `{ authorization: 'Bearer …' }` or `{ token: '…' }`, as browsers cannot set headers on a WebSocket. */
  connectionParams?: Readonly<Record<string, unknown>> | null;
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
export function tokenOf(credentials: Credentials): string | null {
  const params = credentials.connectionParams;
  return bearer(credentials.authorization) ?? bearer(params?.authorization) ?? nonEmptyString(params?.token);
}

/** The session of a live token; throws UNAUTHENTICATED saying what to send when the token is missing or dead. */
export async function authenticate(db: Db, credentials: Credentials): Promise<Session> {
  const token = tokenOf(credentials);
  if (!token)
    throw new AtelierError(
      'UNAUTHENTICATED',
      'Missing bearer token: send "Authorization: Bearer <token>" (the admin token is in $ATELIER_DATA_DIR/admin-token).',
    );
  const session = await sessionForToken(db, token);
  if (!session) throw new AtelierError('UNAUTHENTICATED', 'The bearer token is unknown, expired or revoked; ask an admin for a new one.');
  return { token, ...session };
}

/** As `authenticate`, with null for a missing or dead token (other failures, such as the database's, still throw). */
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
