// Typed domain errors. Each carries a stable `extensions.code` and an HTTP status, and says what to do.
import { GraphQLError } from 'graphql';

export type ErrorCode =
  | 'BAD_USER_INPUT'
  | 'INVALID_MANIFEST'
  | 'INVALID_WORKFLOW'
  | 'NOT_FOUND'
  | 'UNAUTHENTICATED'
  | 'FORBIDDEN'
  | 'CONFLICT'
  | 'PAYLOAD_TOO_LARGE'
  | 'DIGEST_MISMATCH';

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
};

export interface ErrorDetail {
  /** Where the problem is: a manifest field, a workflow node, a parameter path. */
  path?: string;
  message: string;
}

export class AtelierError extends GraphQLError {
  readonly code: ErrorCode;
  readonly details: ErrorDetail[];
  constructor(code: ErrorCode, message: string, details: ErrorDetail[] = []) {
    super(message, { extensions: { code, http: { status: statusOf[code] }, ...(details.length ? { details } : {}) } });
    this.code = code;
    this.details = details;
  }
}

export const badInput = (message: string, details?: ErrorDetail[]) => new AtelierError('BAD_USER_INPUT', message, details);
export const notFound = (message: string) => new AtelierError('NOT_FOUND', message);
export const forbidden = (message: string) => new AtelierError('FORBIDDEN', message);
