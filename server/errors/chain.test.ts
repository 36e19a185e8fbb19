import { describe, expect, it } from 'vitest';
import { errorChain, wrapsCode } from './chain';
import { isDiskFull } from './disk-full';
import { domainErrorOf } from './index';
import { isLostConnection } from './lost-connection';

describe('errorChain', () => {
  it('walks what graphql-js and drivers wrap, outermost first, and stops at five or at a cycle', () => {
    const inner = Object.assign(new Error('reset'), { code: 'ECONNRESET' });
    const wrapped = { originalError: new Error('fetch failed', { cause: inner }) };
    expect(errorChain(wrapped)).toEqual([wrapped, wrapped.originalError, inner]);
    const cycle: { cause?: unknown } = {};
    cycle.cause = cycle;
    expect(errorChain(cycle)).toHaveLength(5);
    expect(errorChain('text')).toEqual([]);
  });

  it('finds a code however deep it is wrapped', () => {
    const wrapped = { originalError: new Error('upload failed', { cause: Object.assign(new Error('no space'), { code: 'ENOSPC' }) }) };
    expect(wrapsCode(wrapped, new Set(['ENOSPC']))).toBe(true);
    expect(isDiskFull(wrapped)).toBe(true);
    expect(isLostConnection(wrapped)).toBe(false);
    expect(isLostConnection({ cause: { code: '57P01' } })).toBe(true);
    expect(wrapsCode({ code: 42 }, new Set(['42']))).toBe(false);
  });

  it('takes a connection refused for want of slots, or by a database closed to connections, as lost; no other 55000', () => {
    const refused = (code: string, message: string) => ({ originalError: new Error('Failed query', { cause: Object.assign(new Error(message), { code }) }) });
    expect(isLostConnection(refused('53300', 'sorry, too many clients already'))).toBe(true);
    expect(isLostConnection(refused('55000', 'database "atelier" is not currently accepting connections'))).toBe(true);
    expect(isLostConnection(refused('55000', 'cannot execute statement: the table is in use'))).toBe(false);
    expect(domainErrorOf(refused('53300', 'sorry, too many clients already'))?.code).toBe('UNAVAILABLE');
  });
});

describe('domainErrorOf', () => {
  it("answers Postgres's disk_full (53100), as drizzle and graphql-js wrap it, as UNAVAILABLE about the database's disk", () => {
    const postgres = Object.assign(new Error('could not extend file "base/5/16510": No space left on device'), { code: '53100', severity: 'ERROR' });
    const known = domainErrorOf({ originalError: new Error('Failed query: insert into "workflows" …', { cause: postgres }) });
    expect(known?.code).toBe('UNAVAILABLE');
    expect(known?.message).toMatch(/database is out of disk space.*frees space on the database's disk/);
  });
});
