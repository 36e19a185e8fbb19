import { describe, expect, it } from 'vitest';
import type { AtelierError } from '../errors';
import type { TaskStatus } from '../vocabulary';
import { checkIdempotencyKey, checkSameWorkflow, moduleSwaps, pinnedVersions, privateNamespace, rerunReuse } from './run-inputs';

const codeOf = (fn: () => unknown) => {
  try {
    fn();
  } catch (error) {
    return (error as AtelierError).code;
  }
  return undefined;
};

describe('idempotency keys', () => {
  it('accepts 1 to 200 characters, or no key', () => {
    expect(() => checkIdempotencyKey(undefined)).not.toThrow();
    expect(() => checkIdempotencyKey('k')).not.toThrow();
    expect(() => checkIdempotencyKey('k'.repeat(200))).not.toThrow();
    expect(codeOf(() => checkIdempotencyKey(''))).toBe('BAD_USER_INPUT');
    expect(codeOf(() => checkIdempotencyKey('k'.repeat(201)))).toBe('BAD_USER_INPUT');
  });

  it('a key returns its run for the same workflow named by name or id, and conflicts for another', () => {
    const workflow = { id: '0b8e4a8e-6a0c-4d55-9a2a-3f1f2f0b8c11', name: 'train' };
    expect(() => checkSameWorkflow(workflow, 'train', 'k')).not.toThrow();
    expect(() => checkSameWorkflow(workflow, workflow.id, 'k')).not.toThrow();
    expect(() => checkSameWorkflow(undefined, 'train', 'k')).not.toThrow();
    expect(codeOf(() => checkSameWorkflow(workflow, 'evaluate', 'k'))).toBe('CONFLICT');
  });
});

describe('module swaps (useModules)', () => {
  const spec = {
    tasks: [
      { name: 'prep', module: 'ml/prep' },
      { name: 'fit', module: 'ml/fit@latest' },
      { name: 'fit2', module: 'ml/fit@v1' },
      { name: 'sub', workflow: 'other' },
    ],
  };

  it('replaces a module in every node that uses it, whatever tag the spec named', () => {
    expect(moduleSwaps(spec, ['ml/fit@v3'])).toEqual(
      new Map([
        ['fit', 'ml/fit@v3'],
        ['fit2', 'ml/fit@v3'],
      ]),
    );
    expect(moduleSwaps(spec, [])).toBeUndefined();
  });

  it('refuses a reference without a version, and one that would change nothing', () => {
    expect(codeOf(() => moduleSwaps(spec, ['ml/fit']))).toBe('BAD_USER_INPUT');
    expect(codeOf(() => moduleSwaps(spec, ['ml@v1']))).toBe('BAD_USER_INPUT');
    expect(codeOf(() => moduleSwaps(spec, ['ml/other@v1']))).toBe('BAD_USER_INPUT');
  });
});

describe('private cache namespaces', () => {
  it('are for experimentation runs only, with a short lowercase name', () => {
    expect(privateNamespace(undefined, 'production')).toBeNull();
    expect(privateNamespace('trial-1.a_b', 'experimentation')).toBe('trial-1.a_b');
    expect(codeOf(() => privateNamespace('trial', 'production'))).toBe('BAD_USER_INPUT');
    expect(codeOf(() => privateNamespace('Trial', 'experimentation'))).toBe('BAD_USER_INPUT');
    expect(codeOf(() => privateNamespace('', 'experimentation'))).toBe('BAD_USER_INPUT');
    expect(codeOf(() => privateNamespace('-x', 'experimentation'))).toBe('BAD_USER_INPUT');
    expect(privateNamespace('a'.repeat(63), 'experimentation')).toHaveLength(63);
    expect(codeOf(() => privateNamespace('a'.repeat(64), 'experimentation'))).toBe('BAD_USER_INPUT');
  });
});

describe('what a rerun reuses', () => {
  //   a ─▶ b ─▶ d
  //   a ─▶ c (failed) ─▶ e
  const t = (node: string, status: TaskStatus, dependsOn: string[] = []) => ({ node, status, dependsOn });
  const source = [t('a', 'SUCCEEDED'), t('b', 'SUCCEEDED', ['a']), t('c', 'FAILED', ['a']), t('d', 'SUCCEEDED', ['b']), t('e', 'SKIPPED', ['c'])];
  const reused = (input: Parameters<typeof rerunReuse>[2]) => [...rerunReuse('r1', source, input).keys()].sort();

  it('from FAILED: everything that succeeded', () => {
    expect(reused({ from: 'FAILED' })).toEqual(['a', 'b', 'd']);
  });
  it('from ALL: nothing', () => {
    expect(reused({ from: 'ALL' })).toEqual([]);
  });
  it('named nodes and swapped modules execute again with everything downstream of them', () => {
    expect(reused({ from: 'NODES', nodes: ['b'] })).toEqual(['a']);
    expect(reused({ from: 'NODES', modules: { a: 'ml/a@v2' } })).toEqual([]);
  });
  it('refuses unknown nodes, naming them, and NODES without any', () => {
    expect(() => rerunReuse('r1', source, { from: 'NODES', nodes: ['x', 'y'] })).toThrow('Run r1 has no nodes "x", "y"; its nodes are: a, b, c, d, e');
    expect(codeOf(() => rerunReuse('r1', source, { from: 'NODES' }))).toBe('BAD_USER_INPUT');
  });
});

it('pins the module versions of module nodes, not of map items or nested workflows', () => {
  const pinned = pinnedVersions([
    { node: 'a', moduleVersionId: 'v1', mapParent: null },
    { node: 'm[0]', moduleVersionId: 'v2', mapParent: 'm' },
    { node: 'sub', moduleVersionId: null, mapParent: null },
  ]);
  expect(pinned).toEqual(new Map([['a', 'v1']]));
});
