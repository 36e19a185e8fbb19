// The GraphQL edge for domain errors: an AtelierError thrown anywhere below a resolver, the context factory or a
// subscription becomes a GraphQL error with its code, HTTP status and details; anything else is masked as yoga does
// by default (an unexpected error says nothing of the server's internals). Used as yoga's `maskedErrors.maskError`,
// so HTTP, SSE and graphql-ws answer alike.
import { GraphQLError } from 'graphql';
import { maskError as maskUnexpected } from 'graphql-yoga';
import { type AtelierError, domainErrorOf, retryAfterHeader } from '../server/errors';

export function toGraphQLError(domain: AtelierError, located?: GraphQLError): GraphQLError {
  return new GraphQLError(domain.message, {
    nodes: located?.nodes,
    source: located?.source,
    positions: located?.positions,
    path: located?.path,
    originalError: domain,
    extensions: {
      code: domain.code,
      http: { status: domain.status, ...(domain.retryAfterS === undefined ? {} : { headers: retryAfterHeader(domain) }) },
      ...(domain.details.length ? { details: domain.details } : {}),
    },
  });
}

export function maskError(error: unknown, message: string, isDev?: boolean): Error {
  const domain = domainErrorOf(error);
  if (domain) return toGraphQLError(domain, error instanceof GraphQLError ? error : undefined);
  return maskUnexpected(error, message, isDev);
}
