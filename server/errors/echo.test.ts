import { describe, expect, it } from 'vitest';
import { printable, printableData, quoted } from './echo';
import { AtelierError } from './index';

describe('what an error echoes', () => {
  it('escapes control characters but newlines and tabs, and cuts long text saying how much', () => {
    expect(printable('a\u001b[31mb\rc\nd\te\u202ef\u0085')).toBe('a\\u001b[31mb\\u000dc\nd\te\\u202ef\\u0085');
    expect(printable('x'.repeat(12), 10)).toBe('xxxxxxxxxx… (2 more characters)');
    expect(printable('plain')).toBe('plain');
  });

  it('quotes a name as JSON does, cut short', () => {
    expect(quoted('a"b\n\u001b')).toBe('"a\\"b\\n\\u001b"');
    expect(quoted('y'.repeat(100), 5)).toBe('"yyyyy…"');
  });

  it('holds for every AtelierError: its message, its details and how many', () => {
    const e = new AtelierError('BAD_USER_INPUT', `bad \u001b]0;title\u0007 ${'m'.repeat(10_000)}`, [
      ...Array.from({ length: 150 }, (_, i) => ({ path: `p.${i}\u001b`, message: 'is unknown' })),
    ]);
    expect(e.message).toMatch(/^bad \\u001b\]0;title\\u0007 m+… \(6,\d+ more characters\)$/);
    expect(e.details).toHaveLength(101);
    expect(e.details[0]).toEqual({ path: 'p.0\\u001b', message: 'is unknown' });
    expect(e.details[100]).toEqual({ message: '… and 50 more' });
    const plain = [{ path: 'a', message: 'b' }];
    expect(new AtelierError('NOT_FOUND', 'x', plain).details).toBe(plain);
  });

  it('makes every string of parsed data printable, keys too, whole, and a __proto__ key stays a key', () => {
    const data = JSON.parse('{"a\\u001b":["x\\r",1,null,{"__proto__":{"p":"\\u202e"}}],"n":true}');
    const out = printableData(data) as any;
    expect(Object.keys(out)).toEqual(['a\\u001b', 'n']);
    expect(out['a\\u001b'][0]).toBe('x\\u000d');
    expect(Object.getPrototypeOf(out['a\\u001b'][3])).toBe(Object.prototype);
    expect(Object.hasOwn(out['a\\u001b'][3], '__proto__')).toBe(true);
    expect(printableData('z'.repeat(10_000))).toHaveLength(10_000);
  });
});
