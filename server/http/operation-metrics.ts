// The yoga plugin that counts GraphQL operations by type and errors by code (server/metrics/instruments.ts), on HTTP,
// SSE and graphql-ws alike (all go through this envelop): parse and validation failures when they happen, execution
// errors from each result. Labels are the operation's type and the error's code, never a name a client chose.
import { type GraphQLError, getOperationAST } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { domainErrorOf } from '../errors';
import type { Instruments } from '../metrics/instruments';

type Counted = Pick<Instruments, 'graphqlOperation' | 'graphqlError'>;

/** The code the caller will see: the error's own, or its domain error's (mapped at the edge after this plugin counts it). */
const codeOf = (error: unknown) => {
  const code = (error as GraphQLError | undefined)?.extensions?.code;
  if (typeof code === 'string') return code;
  return domainErrorOf((error as GraphQLError | undefined)?.originalError ?? error)?.code;
};

export function useOperationMetrics(instruments: Counted): Plugin {
  // Parse and validation errors get their code from yoga only when the response is written: named here as yoga names them.
  const countErrors = (errors: readonly unknown[] | undefined, otherwise?: string) => {
    for (const error of errors ?? []) instruments.graphqlError(codeOf(error) ?? otherwise);
  };
  const countResult = (result: unknown, otherwise: string) => {
    if (result && typeof result === 'object' && 'errors' in result) countErrors((result as { errors?: readonly unknown[] }).errors, otherwise);
  };
  return {
    onParse:
      () =>
      ({ result }) => {
        if (result instanceof Error) countErrors([result], 'GRAPHQL_PARSE_FAILED');
      },
    onValidate:
      () =>
      ({ result }) => {
        if (Array.isArray(result)) countErrors(result, 'GRAPHQL_VALIDATION_FAILED');
      },
    onExecute: ({ args }) => {
      instruments.graphqlOperation(getOperationAST(args.document, args.operationName)?.operation === 'mutation' ? 'mutation' : 'query');
      return { onExecuteDone: ({ result }) => countResult(result, 'INTERNAL_SERVER_ERROR') };
    },
    onSubscribe: ({ args }) => {
      instruments.graphqlOperation('subscription');
      return { onSubscribeResult: ({ result }) => countResult(result, 'INTERNAL_SERVER_ERROR') };
    },
  };
}
