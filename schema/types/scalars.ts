// Scalars: DateTime (ISO 8601), JSON (any JSON value) and File (a multipart upload).
import { GraphQLError, Kind, type ValueNode } from 'graphql';
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

builder.scalarType('JSON', {
  description: 'Any JSON value.',
  serialize: (value) => value,
  parseValue: (value) => value,
  parseLiteral: literal,
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
