// Variables graphql-js cannot coerce come back typed BAD_USER_INPUT, with where in the variable and, for an enum, the
// values it takes; the schema's real coercion makes the errors, as a request would.
import { buildSchema, execute, type GraphQLError, parse } from 'graphql';
import { describe, expect, it } from 'vitest';
import { typedVariableError } from './variable-errors';

const schema = buildSchema(`
  enum Kind { THRESHOLD DRIFT }
  input Rule { kind: Kind!, above: Float }
  type Query { check(rules: [Rule!]!, limit: Int): Boolean }
`);

async function errorsOf(variables: Record<string, unknown>): Promise<GraphQLError[]> {
  const result = await execute({ schema, document: parse('query ($r: [Rule!]!, $n: Int) { check(rules: $r, limit: $n) }'), variableValues: variables });
  return (result.errors ?? []).map((e) => typedVariableError(schema, e));
}

describe('variable coercion errors', () => {
  it('are typed, say where, and for an enum what it takes', async () => {
    const [unknownKind] = await errorsOf({ r: [{ kind: 'SOMETIMES' }] });
    expect(unknownKind!.extensions).toEqual({
      code: 'BAD_USER_INPUT',
      details: [{ path: 'r.0.kind', message: '"SOMETIMES" is not a Kind: use one of THRESHOLD, DRIFT' }],
    });
    expect(unknownKind!.message).toMatch(/does not exist in "Kind" enum; use one of THRESHOLD, DRIFT\.$/);

    const [wrongType] = await errorsOf({ r: [], n: 'ten' });
    expect(wrongType!.extensions).toEqual({ code: 'BAD_USER_INPUT', details: [{ path: 'n', message: 'Int cannot represent non-integer value: "ten"' }] });

    const [missing] = await errorsOf({});
    expect(missing!.extensions).toEqual({ code: 'BAD_USER_INPUT', details: [{ path: 'r', message: 'is required (of type "[Rule!]!")' }] });
  });

  it('quote a huge value bounded in the detail', async () => {
    const [huge] = await errorsOf({ r: [{ kind: 'X'.repeat(100_000) }] });
    expect(huge!.extensions.code).toBe('BAD_USER_INPUT');
    expect(JSON.stringify(huge!.extensions).length).toBeLessThan(2_000);
  });
});
