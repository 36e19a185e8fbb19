// Domain errors: what went wrong in the user's terms, with a stable code, the HTTP status it maps to, and where the
// problem is. They know nothing of GraphQL or HTTP; the edges translate them (schema/errors.ts for GraphQL, the
// HTTP routes for plain responses). A leaf: imports nothing of the project.

import { errorChain } from './chain';
import { isDatabaseDiskFull, isDiskFull } from './disk-full';
import { MAX_ERROR_DETAILS, MAX_ERROR_MESSAGE, printable } from './echo';
import { isLostConnection } from './lost-connection';

export type ErrorCode =
  | 'BAD_USER_INPUT'
  | 'INVALID_MANIFEST'
  | 'INVALID_WORKFLOW'
  | 'NOT_FOUND'
  | 'UNAUTHENTICATED'
  | 'FORBIDDEN'
  | 'CONFLICT'
  | 'PAYLOAD_TOO_LARGE'
  | 'DIGEST_MISMATCH'
  | 'TOO_MANY_SUBSCRIPTIONS'
  /** Uploads in progress hold as much memory as they may together (server/http/upload-budget.ts): retry shortly. */
  | 'TOO_MANY_UPLOADS'
  /** Too many unknown bearer tokens from one address (server/auth/token-failures.ts): wait for Retry-After. */
  | 'TOO_MANY_AUTH_FAILURES'
  /** A live subscription whose client left too many events waiting: it ended, to be subscribed again. */
  | 'SUBSCRIBER_TOO_SLOW'
  /** A service the request needs (the database) cannot be reached for now: send it again shortly. */
  | 'UNAVAILABLE'
  /** A webhook URL outside ATELIER_WEBHOOK_ALLOWLIST. */
  | 'URL_NOT_ALLOWED'
  /** A run search names a metric, param or tag that no run the caller may read has (server/tracking/search-keys.ts). */
  | 'UNKNOWN_METRIC'
  | 'UNKNOWN_PARAM'
  | 'UNKNOWN_TAG';

const statusOf: Record<ErrorCode, number> = {
  BAD_USER_INPUT: 400,
  INVALID_MANIFEST: 400,
  INVALID_WORKFLOW: 400,
  NOT_FOUND: 404,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  CONFLICT: 409,
  PAYLOAD_TOO_LARGE: 413,
  DIGEST_MISMATCH: 400,
  TOO_MANY_SUBSCRIPTIONS: 429,
  TOO_MANY_UPLOADS: 503,
  TOO_MANY_AUTH_FAILURES: 429,
  SUBSCRIBER_TOO_SLOW: 429,
  UNAVAILABLE: 503,
  URL_NOT_ALLOWED: 400,
  UNKNOWN_METRIC: 400,
  UNKNOWN_PARAM: 400,
  UNKNOWN_TAG: 400,
};

export interface ErrorDetail {
  /** Where the problem is: a manifest field, a workflow node, a parameter path. */
  path?: string;
  message: string;
}

/** An error the caller caused and can act on; its message says what to do. Anything else is a bug, masked at the edge. */
export class AtelierError extends Error {
  override readonly name = 'AtelierError';
  readonly code: ErrorCode;
  /** The HTTP status an edge answers with. */
  readonly status: number;
  readonly details: ErrorDetail[];
  /** Seconds to wait before sending it again, for an error that has a Retry-After (HTTP edges send it). */
  readonly retryAfterS?: number;
  constructor(code: ErrorCode, message: string, details: ErrorDetail[] = []) {
    super(printable(message)); // its text echoes input, and reaches a terminal: bounded, no control characters
    this.code = code;
    this.status = statusOf[code];
    this.details = details.length > MAX_ERROR_DETAILS || details.some(unprintable) ? printableDetails(details) : details;
  }
}

const unprintable = (d: ErrorDetail) =>
  printable(d.message, MAX_ERROR_MESSAGE / 4) !== d.message || (d.path !== undefined && printable(d.path, MAX_ERROR_MESSAGE / 4) !== d.path);

function printableDetails(details: ErrorDetail[]): ErrorDetail[] {
  const kept = details
    .slice(0, MAX_ERROR_DETAILS)
    .map((d) =>
      unprintable(d)
        ? { ...d, message: printable(d.message, MAX_ERROR_MESSAGE / 4), ...(d.path === undefined ? {} : { path: printable(d.path, MAX_ERROR_MESSAGE / 4) }) }
        : d,
    );
  if (details.length > MAX_ERROR_DETAILS) kept.push({ message: `… and ${details.length - MAX_ERROR_DETAILS} more` });
  return kept;
}

/** An error that passes: the caller is told when to send the request again (HTTP edges send Retry-After). */
export class RetryLater extends AtelierError {
  constructor(
    code: ErrorCode,
    message: string,
    override readonly retryAfterS: number,
  ) {
    super(code, message);
  }
}

/** The Retry-After header for an error that has one (none for any other). */
export function retryAfterHeader(error: unknown): Record<string, string> {
  const seconds = error instanceof AtelierError ? error.retryAfterS : undefined;
  return seconds === undefined ? {} : { 'retry-after': String(seconds) };
}

export const badInput = (message: string, details?: ErrorDetail[]) => new AtelierError('BAD_USER_INPUT', message, details);
export const notFound = (message: string) => new AtelierError('NOT_FOUND', message);
export const forbidden = (message: string) => new AtelierError('FORBIDDEN', message);
export const conflict = (message: string) => new AtelierError('CONFLICT', message);
export const unauthenticated = (message: string) => new AtelierError('UNAUTHENTICATED', message);

/** Postgres' codes (SQLSTATE) for a transaction aborted only because of another one: a deadlock, a serialization failure. */
export const TRANSIENT_ABORTS: ReadonlySet<string> = new Set(['40P01', '40001']);

/**
 * The domain error inside `error`, however deep an edge (graphql-js, envelop) has wrapped it. A transaction Postgres
 * aborted because another one ran into it (a deadlock's victim, a serialization failure) is one too, a CONFLICT that
 * says to send the request again: the abort undid all of it, so doing so is safe (retryingTransaction retries such
 * aborts where the work allows; one that still reaches an edge must not read as a server bug). So is a connection
 * lost or refused (Postgres restarting, a socket reset): UNAVAILABLE, which says to send it again shortly.
 */
export function domainErrorOf(error: unknown): AtelierError | undefined {
  for (const e of errorChain(error)) {
    if (e instanceof AtelierError) return e;
    if (isDatabaseDiskFull(e))
      return new AtelierError(
        'UNAVAILABLE',
        "The database is out of disk space: nothing of this request was kept (reads still work). An operator frees space on the database's disk (the embedded database's: under ATELIER_DATA_DIR; a Postgres server's: its data directory), then send the request again.",
      );
    if (isDiskFull(e))
      return new AtelierError(
        'UNAVAILABLE',
        'The server is out of disk space: nothing of this request was kept. An operator frees space where the control plane writes (its data directory, the local object store: ATELIER_DATA_DIR, ATELIER_OBJECTS_DIR), then send the request again.',
      );
    if (isLostConnection(e))
      return new AtelierError(
        'UNAVAILABLE',
        'A service this request needs could not be reached (the database restarting, a connection reset): send the request again shortly. A change whose connection was lost as it committed may have been made: look before repeating one that must not happen twice.',
      );
    if (TRANSIENT_ABORTS.has((e as { code?: unknown }).code as string))
      return conflict('Another change to the same objects ran at the same moment and the database undid this one (nothing of it was kept); send it again.');
  }
  return undefined;
}
