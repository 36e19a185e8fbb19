// Every error a GraphQL result carries, bounded as the domain errors are (server/errors/echo.ts): graphql-js quotes
// the value it could not take whole ('Variable "$p" got invalid value "…"', 'Int cannot represent non-integer value:
// "…"', 'Cannot query field "…"'), so a megabyte sent was a megabyte or two answered. Messages past 1,000 characters
// are cut and any control character escaped, in parsing, validation, execution and a subscription's set-up alike (HTTP, SSE
// and graphql-ws run through the same envelop); a live event's errors are domain errors, bounded where made.
import { handleStreamOrSingleExecutionResult, type Plugin } from '@envelop/core';
import { type ExecutionResult, GraphQLError } from 'graphql';
import { printable } from '../errors/echo';

/** The longest message an error of a GraphQL result keeps. */
export const MAX_GRAPHQL_ERROR_MESSAGE = 1_000;

function bounded<E extends Error>(error: E): E | GraphQLError {
  const message = printable(error.message, MAX_GRAPHQL_ERROR_MESSAGE);
  if (message === error.message) return error;
  if (!(error instanceof GraphQLError)) return new GraphQLError(message);
  const { nodes, source, positions, path, originalError, extensions } = error;
  return new GraphQLError(message, { nodes, source, positions, path, originalError, extensions });
}

/** The errors bounded, or undefined where none needed it (the result is then left as it is). */
function boundedErrors<E extends Error>(errors: readonly E[] | undefined): (E | GraphQLError)[] | undefined {
  if (!errors?.length) return undefined;
  const mapped = errors.map(bounded);
  return mapped.some((e, i) => e !== errors[i]) ? mapped : undefined;
}

const boundedResult = (result: ExecutionResult): ExecutionResult | undefined => {
  const errors = boundedErrors(result.errors);
  return errors && { ...result, errors: errors as GraphQLError[] };
};

export function useBoundedErrors(): Plugin {
  return {
    onParse:
      () =>
      ({ result, replaceParseResult }) => {
        if (result instanceof Error) {
          const next = bounded(result);
          if (next !== result) replaceParseResult(next);
        }
      },
    onValidate:
      () =>
      ({ result, setResult }) => {
        const errors = boundedErrors(result as Error[]);
        if (errors) setResult(errors as GraphQLError[]);
      },
    onExecute: () => ({
      onExecuteDone: (payload) =>
        handleStreamOrSingleExecutionResult(payload, ({ result, setResult }) => {
          const next = boundedResult(result);
          if (next) setResult(next);
        }),
    }),
    onSubscribe: () => ({
      onSubscribeResult: ({ result, setResult }) => {
        if (Symbol.asyncIterator in result) return; // a stream: its events' errors are domain errors
        const next = boundedResult(result);
        if (next) setResult(next);
      },
    }),
  };
}
