// graphql-js refuses a variable it cannot coerce (a value of the wrong type, an unknown enum value, a required one
// missing) before any resolver runs, untyped: no extensions.code, so a client could not tell bad input from a fault,
// and an enum's refusal did not say which values it takes. Here each is typed BAD_USER_INPUT, with a detail naming
// where inside the variable the problem is and, for an enum, the values it takes (the schema is public).
import { handleStreamOrSingleExecutionResult, type Plugin } from '@envelop/core';
import { type ExecutionResult, GraphQLEnumType, GraphQLError, type GraphQLSchema } from 'graphql';
import { printable } from '../errors/echo';
import { MAX_GRAPHQL_ERROR_MESSAGE } from './bounded-errors';

const COERCION = /^Variable "\$([_A-Za-z][_0-9A-Za-z]*)" (?:got invalid value .*?(?: at "([^"]*)")?; (.*)|of (?:required|non-null) type (.*))$/s;
const ENUM = /^Value (".*") does not exist in "([_A-Za-z][_0-9A-Za-z]*)" enum\.(?: .*)?$/s;

/** What a value of an enum may be, said to the caller; null where the enum is not the schema's. */
function enumValues(schema: GraphQLSchema, name: string): string | null {
  const type = schema.getType(name);
  return type instanceof GraphQLEnumType
    ? type
        .getValues()
        .map((v) => v.name)
        .join(', ')
    : null;
}

/** A variable's coercion error typed BAD_USER_INPUT with a detail; any other error as it was. */
export function typedVariableError(schema: GraphQLSchema, error: GraphQLError): GraphQLError {
  if (error.extensions?.code !== undefined || error.path) return error;
  const m = COERCION.exec(error.message);
  if (!m) return error;
  const [, variable, at, problem, missing] = m;
  // `i.rules[0].kind` → `rules.0.kind`: the name of an input object's variable is the client's, not a field of it.
  const path = at ? at.replace(/^[^.[]+\./, '').replace(/\[(\d+)\]/g, '.$1') : variable!;
  let message = error.message;
  let detail = problem ?? `is required (of type ${missing!.replace(/ (?:was not provided|must not be null)\.$/, '')})`;
  const unknownValue = problem ? ENUM.exec(problem) : null;
  const values = unknownValue ? enumValues(schema, unknownValue[2]!) : null;
  if (unknownValue && values) {
    detail = `${unknownValue[1]} is not a ${unknownValue[2]}: use one of ${values}`;
    message = `${message.replace(/\.$/, '')}; use one of ${values}.`;
  }
  const { nodes, source, positions, originalError, extensions } = error;
  return new GraphQLError(message, {
    nodes,
    source,
    positions,
    originalError,
    // The detail quotes the value as the message does: bounded alike (useBoundedErrors, after this, bounds the message).
    extensions: { ...extensions, code: 'BAD_USER_INPUT', details: [{ path: printable(path, 200), message: printable(detail, MAX_GRAPHQL_ERROR_MESSAGE) }] },
  });
}

function typedResult(schema: GraphQLSchema, result: ExecutionResult): ExecutionResult | undefined {
  if (!result.errors?.length) return undefined;
  const errors = result.errors.map((e) => typedVariableError(schema, e));
  return errors.some((e, i) => e !== result.errors![i]) ? { ...result, errors } : undefined;
}

/** Types variable coercion errors on HTTP, SSE and graphql-ws alike (all run through the same envelop). */
export function useTypedVariableErrors(): Plugin {
  return {
    onExecute: ({ args }) => ({
      onExecuteDone: (payload) =>
        handleStreamOrSingleExecutionResult(payload, ({ result, setResult }) => {
          const next = typedResult(args.schema, result);
          if (next) setResult(next);
        }),
    }),
    onSubscribe: ({ args }) => ({
      onSubscribeResult: ({ result, setResult }) => {
        if (Symbol.asyncIterator in result) return; // a stream: its events' errors are domain errors
        const next = typedResult(args.schema, result);
        if (next) setResult(next);
      },
    }),
  };
}
