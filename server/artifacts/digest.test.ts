// Content digests: key order does not matter, values do, and a spec stored before digests had one home keeps its digest.
import { describe, expect, it } from 'vitest';
import { canonicalJson, digestOf } from './digest';

const spec = {
  name: 'train',
  tasks: [{ name: 'a', module: 'ml/prep@latest', parameters: { rate: 0.1, é: 'ü\n', n: [1, 2.5e-7, 1e21] } }],
  domain: 'experimentation',
};

describe('content digests', () => {
  it('ignores key order and nothing else', () => {
    const reordered = {
      domain: 'experimentation',
      tasks: [{ parameters: { n: [1, 2.5e-7, 1e21], é: 'ü\n', rate: 0.1 }, module: 'ml/prep@latest', name: 'a' }],
      name: 'train',
    };
    expect(digestOf(reordered)).toBe(digestOf(spec));
    expect(digestOf({ ...spec, name: 'train2' })).not.toBe(digestOf(spec));
    expect(digestOf([1, 2])).not.toBe(digestOf([2, 1]));
  });

  it('gives a workflow spec the digest it had when workflow versions hashed it themselves', () => {
    // The value the hand-written sorted-keys JSON gave this spec: re-submitting an unchanged spec must still find its version.
    expect(digestOf(spec)).toBe('sha256:116770aa22baeef463dd0c0482dba8f99e61e31999462a0566ae479e75848c0e');
  });

  it('treats a missing value as null', () => {
    expect(canonicalJson(undefined)).toBe('null');
    expect(digestOf(undefined)).toBe(digestOf(null));
  });
});
