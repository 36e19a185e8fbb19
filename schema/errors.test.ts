// The GraphQL edge for domain errors: codes, statuses and details survive, locations are kept, anything else is masked.
import { GraphQLError } from 'graphql';
import { describe, expect, it } from 'vitest';
import { AtelierError, badInput, domainErrorOf } from '../server/errors';
import { maskError } from './errors';

const mask = (error: unknown) => maskError(error, 'Unexpected error.', false) as GraphQLError;

describe('the GraphQL edge for domain errors', () => {
  it('gives a domain error its code, HTTP status and details', () => {
    const masked = mask(badInput('bad spec', [{ path: 'tasks[0].module', message: 'unknown module' }]));
    expect(masked).toBeInstanceOf(GraphQLError);
    expect(masked.message).toBe('bad spec');
    expect(masked.extensions).toEqual({ code: 'BAD_USER_INPUT', http: { status: 400 }, details: [{ path: 'tasks[0].module', message: 'unknown module' }] });
  });

  it('keeps the path of a domain error that graphql-js located in a resolver, and leaves out empty details', () => {
    const located = new GraphQLError('no such run', { path: ['run', 'tasks'], originalError: new AtelierError('NOT_FOUND', 'no such run') });
    const masked = mask(located);
    expect(masked.path).toEqual(['run', 'tasks']);
    expect(masked.extensions).toEqual({ code: 'NOT_FOUND', http: { status: 404 } });
  });

  it('finds a domain error wrapped as a cause, but not one nested without end', () => {
    expect(domainErrorOf(new Error('outer', { cause: new AtelierError('CONFLICT', 'taken') }))?.code).toBe('CONFLICT');
    const loop: { originalError?: unknown } = {};
    loop.originalError = loop;
    expect(domainErrorOf(loop)).toBeUndefined();
  });

  it('masks an unexpected error without its message', () => {
    const masked = mask(new GraphQLError('x', { originalError: new Error('connection to 10.0.0.3 refused') }));
    expect(masked.message).toBe('Unexpected error.');
    expect(masked.extensions.code).toBe('INTERNAL_SERVER_ERROR');
  });

  it('passes a GraphQL error of its own (a validation or scalar error) through unchanged', () => {
    const own = new GraphQLError('"x" is not a date', { extensions: { code: 'BAD_USER_INPUT' } });
    expect(mask(own)).toBe(own);
  });
});
