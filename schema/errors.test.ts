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

  it("answers a transaction Postgres aborted for another one's sake as a CONFLICT to send again, however wrapped", () => {
    // drizzle wraps the driver's error as the cause of its own "Failed query" error; graphql-js wraps that again.
    const deadlock = Object.assign(new Error('deadlock detected'), { code: '40P01' });
    const masked = mask(new GraphQLError('Failed query', { path: ['promoteDeployment'], originalError: new Error('Failed query', { cause: deadlock }) }));
    expect(masked.extensions).toEqual({ code: 'CONFLICT', http: { status: 409 } });
    expect(masked.message).toMatch(/send it again/);
    expect(masked.path).toEqual(['promoteDeployment']);
    expect(domainErrorOf(Object.assign(new Error('could not serialize access'), { code: '40001' }))?.code).toBe('CONFLICT');
    // Other database errors stay masked: they say nothing a caller can act on.
    expect(mask(Object.assign(new Error('relation "x" does not exist'), { code: '42P01' })).extensions.code).toBe('INTERNAL_SERVER_ERROR');
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
