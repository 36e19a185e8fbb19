// The document limits' refusals (graphql-armor's depth, aliases, directives and cost, server/http/yoga.ts) as typed
// validation errors that say what to do. Left to armor, they were thrown out of validation untyped, as "Syntax Error:
// Query Cost limit of 20000 exceeded, found …": no extensions.code for a client to act on, and a syntax error named
// where the syntax was fine.
import { GraphQLError, type ValidationContext } from 'graphql';

const LIMIT = /^Syntax Error: (.*?)\.?$/s;
const HINT = 'ask for less in one document (fewer nested levels, aliases, directives or fields; smaller pages with first:), or split it into several requests.';

/** The refusal typed GRAPHQL_VALIDATION_FAILED, its message saying what to do. */
export function typedLimitError(error: GraphQLError): GraphQLError {
  const limit = LIMIT.exec(error.message)?.[1] ?? error.message.replace(/\.$/, '');
  const { nodes, source, positions, path, originalError, extensions } = error;
  return new GraphQLError(`${limit}: ${HINT}`, {
    nodes,
    source,
    positions,
    path,
    originalError,
    extensions: { ...extensions, code: 'GRAPHQL_VALIDATION_FAILED' },
  });
}

/**
 * An armor plugin's `onReject` (with `propagateOnRejection: false`): the refusal reported to validation, typed. Thrown
 * when armor gives no validation context, so that a refusal can never be lost and the document run after all.
 */
export function rejectTyped(context: ValidationContext | null, error: GraphQLError): void {
  if (!context) throw typedLimitError(error);
  context.reportError(typedLimitError(error));
}
