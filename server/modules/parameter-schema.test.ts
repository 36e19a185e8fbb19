import { describe, expect, it } from 'vitest';
import { inputProblem, textNestsDeeperThan } from '../errors/input-limits';
import { checkParameters, compileParameterSchema } from './parameter-schema';

describe('parameter schemas', () => {
  it('run patterns in linear time, with JavaScript syntax and meaning', () => {
    const schema = { type: 'object', properties: { s: { type: 'string', pattern: '^(a|a)+$' }, u: { type: 'string', pattern: '^[\\u0041-\\u005a]+$' } } };
    const started = performance.now();
    expect(checkParameters('sha256:redos', schema, { s: `${'a'.repeat(50_000)}!` })).toEqual([
      { path: 'parameters.s', message: 'must match pattern "^(a|a)+$"' },
    ]);
    expect(performance.now() - started).toBeLessThan(5_000); // catastrophic backtracking would take hours
    expect(checkParameters('sha256:redos', schema, { s: 'aaa', u: 'ABC' })).toEqual([]);
    expect(checkParameters('sha256:redos', schema, { u: 'abc' })).toHaveLength(1);
  });

  it('name the parameter a misspelt one most likely meant, or else the ones it takes, where the schema closes its object', () => {
    const schema = { type: 'object', additionalProperties: false, properties: { learningRate: { type: 'number' }, epochs: { type: 'integer' } } };
    expect(checkParameters('sha256:typo', schema, { learning_rate: 0.1 })).toEqual([
      { path: 'parameters', message: 'unknown field "learning_rate" (did you mean "learningRate"?)' },
    ]);
    expect(checkParameters('sha256:typo', schema, { batch: 8 })).toEqual([
      { path: 'parameters', message: 'unknown field "batch" (it takes learningRate, epochs)' },
    ]);
  });

  it('compile once per digest', () => {
    const schema = { type: 'object', properties: { n: { type: 'integer' } } };
    expect(checkParameters('sha256:once', schema, { n: 1 })).toEqual([]);
    // The cached validator answers for the digest even if handed another schema object.
    expect(checkParameters('sha256:once', { type: 'object', properties: { n: { type: 'string' } } }, { n: 1 })).toEqual([]);
  });

  it('refuse what RE2 cannot run, naming the field', () => {
    for (const [pattern, path] of [
      ['(a)\\1', 'parameters.properties.s.pattern'],
      ['(?=a)', 'parameters.properties.s.pattern'],
      ['(?<n>a)\\k<n>', 'parameters.properties.s.pattern'],
    ]) {
      const { validate, problems } = compileParameterSchema({ type: 'object', properties: { s: { type: 'string', pattern } } });
      expect(validate).toBeUndefined();
      expect(problems.map((p) => p.path)).toEqual([path]);
    }
    const nested = compileParameterSchema({ type: 'array', items: { anyOf: [{ type: 'string', pattern: '(?!x)' }] } });
    expect(nested.problems.map((p) => p.path)).toEqual(['parameters.items.anyOf.0.pattern']);
  });

  it('bound size before compiling: keys per object, depth, nodes', () => {
    const wide = { type: 'object', properties: Object.fromEntries(Array.from({ length: 201 }, (_, i) => [`p${i}`, {}])) };
    expect(compileParameterSchema(wide).problems[0]?.message).toMatch(/at most 200 properties/);
    let deep: object = { type: 'string' };
    for (let i = 0; i < 20; i++) deep = { type: 'object', properties: { a: deep } };
    expect(compileParameterSchema(deep).problems[0]?.message).toMatch(/32 levels/);
    const many = { anyOf: Array.from({ length: 600 }, () => ({ type: 'string' })) };
    expect(compileParameterSchema(many).problems[0]?.message).toMatch(/at most 1,000/);
  });
});

describe('input limits', () => {
  it('find NUL characters in strings and keys, and nesting past the limit, without recursion', () => {
    expect(inputProblem({ a: ['x', 'y\0'] }, '$v')).toEqual({ path: '$v.a.1', kind: 'nul' });
    expect(inputProblem({ 'k\0': 1 }, '$v')?.kind).toBe('nul');
    let deep: unknown = 1;
    for (let i = 0; i < 200_000; i++) deep = [deep];
    expect(inputProblem(deep, '$v')?.kind).toBe('depth');
    let ok: unknown = 1;
    for (let i = 0; i < 64; i++) ok = [ok];
    expect(inputProblem(ok, '$v')).toBeNull();
    expect(textNestsDeeperThan(`${'['.repeat(65)}${']'.repeat(65)}`)).toBe(true);
    expect(textNestsDeeperThan('a: [1, [2], {b: [3]}]')).toBe(false);
  });
});
