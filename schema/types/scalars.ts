// Scalars: DateTime (ISO 8601), JSON (any JSON value), MetricValue (a float that may be NaN or ±Infinity) and File
// (a multipart upload).
import { GraphQLError, Kind, type ValueNode } from 'graphql';
import { describeInputProblem, type InputProblem, inputProblem, MAX_JSON_DEPTH } from '../../server/errors/input-limits';
import { builder } from '../builder';

builder.scalarType('DateTime', {
  description: 'An ISO 8601 timestamp with time zone.',
  serialize: (value) => (value instanceof Date ? value.toISOString() : String(value)),
  parseValue: (value) => {
    const date = new Date(String(value));
    if (Number.isNaN(date.getTime())) throw new GraphQLError(`"${String(value)}" is not an ISO 8601 date-time.`, { extensions: { code: 'BAD_USER_INPUT' } });
    return date;
  },
});

const literal = (node: ValueNode): unknown => {
  switch (node.kind) {
    case Kind.STRING:
    case Kind.BOOLEAN:
      return node.value;
    case Kind.INT:
    case Kind.FLOAT:
      return Number(node.value);
    case Kind.NULL:
      return null;
    case Kind.LIST:
      return node.values.map(literal);
    case Kind.OBJECT:
      return Object.fromEntries(node.fields.map((f) => [f.name.value, literal(f.value)]));
    default:
      throw new GraphQLError('Variables are not allowed inside a JSON literal; pass the whole value as a variable.', {
        extensions: { code: 'BAD_USER_INPUT' },
      });
  }
};

/** How deep a literal nests, counted without recursion (the literal is converted recursively after). */
function literalDepth(node: ValueNode): number {
  let deepest = 0;
  const stack: [ValueNode, number][] = [[node, 0]];
  while (stack.length) {
    const [v, depth] = stack.pop()!;
    if (v.kind !== Kind.LIST && v.kind !== Kind.OBJECT) continue;
    deepest = Math.max(deepest, depth + 1);
    if (deepest > MAX_JSON_DEPTH) break;
    for (const child of v.kind === Kind.LIST ? v.values : v.fields.map((f) => f.value)) stack.push([child, depth + 1]);
  }
  return deepest;
}

const refused = (problem: InputProblem) => new GraphQLError(describeInputProblem('A JSON value', problem), { extensions: { code: 'BAD_USER_INPUT' } });

// The edge (server/http/input-guard.ts) refuses deep values and NUL characters with the argument's name before
// anything is coerced; the scalar keeps the depth bound of its own for any other way in.
builder.scalarType('JSON', {
  description: 'Any JSON value.',
  serialize: (value) => value,
  parseValue: (value) => {
    const problem = inputProblem(value, 'value');
    if (problem) throw refused(problem);
    return value;
  },
  parseLiteral: (node) => {
    if (literalDepth(node) > MAX_JSON_DEPTH) throw refused({ path: 'value', kind: 'depth' });
    return literal(node);
  },
});

builder.scalarType('MetricValue', {
  description: 'A metric value: a number, or the string "NaN", "Infinity" or "-Infinity" (JSON has no such numbers).',
  serialize: (value) => (Number.isFinite(value) ? value : String(value)),
  parseValue: (value) => {
    const n = typeof value === 'string' && ['NaN', 'Infinity', '-Infinity'].includes(value) ? Number(value) : value;
    if (typeof n !== 'number')
      throw new GraphQLError('A MetricValue is a number or "NaN", "Infinity", "-Infinity".', { extensions: { code: 'BAD_USER_INPUT' } });
    return n;
  },
});

builder.scalarType('File', {
  description: 'A file sent with the GraphQL multipart request spec.',
  serialize: () => {
    throw new GraphQLError('File is an input-only scalar.');
  },
  parseValue: (value) => {
    // yoga hands over its own File implementation, so check the shape rather than the class.
    const file = value as File | null;
    if (!file || typeof file !== 'object' || typeof file.arrayBuffer !== 'function' || typeof file.size !== 'number')
      throw new GraphQLError('Expected an uploaded file (GraphQL multipart request).', { extensions: { code: 'BAD_USER_INPUT' } });
    return file;
  },
});
