// The cache key alone: what changes it and what must not.
import { describe, expect, it } from 'vitest';
import { cacheKey, type KeyInput, keyComponents, keyDifferences, referencedObjects } from './key';

const base: KeyInput = {
  digest: `sha256:${'a'.repeat(64)}`,
  manifest: { namespace: 'ml', name: 'train', entrypoint: 'main.py', runtime: 'python3', cache: { version: '1' } },
  parameters: { epochs: 10, opts: { lr: 0.1, layers: [64, 32] } },
  inputs: { prepare: { rows: 150, data: `sha256:${'b'.repeat(64)}` } },
  scope: 'experimentation',
};
const keyOf = (input: KeyInput) => cacheKey(keyComponents(input));

describe('cache key', () => {
  it('ignores key order and number forms in parameters and inputs', () => {
    const reordered = {
      ...base,
      parameters: { opts: { layers: [64, 32], lr: 1e-1 }, epochs: 10.0 },
      inputs: { prepare: { data: base.inputs.prepare!.data, rows: 1.5e2 } },
    };
    expect(keyOf(reordered)).toBe(keyOf(base));
  });

  it('changes with a parameter, input content, module artifact, entrypoint, cache version, column projection or scope', () => {
    const variants: [string, KeyInput][] = [
      ['parameter', { ...base, parameters: { ...base.parameters, epochs: 11 } }],
      ['input content', { ...base, inputs: { prepare: { ...base.inputs.prepare, rows: 151 } } }],
      ['module artifact', { ...base, digest: `sha256:${'c'.repeat(64)}` }],
      ['entrypoint', { ...base, manifest: { ...base.manifest, entrypoint: 'other.py' } }],
      ['cache version', { ...base, manifest: { ...base.manifest, cache: { version: '2' } } }],
      [
        'column projection',
        { ...base, manifest: { ...base.manifest, inputs: [{ name: 'flowers', dataset: 'ml/iris', columns: [{ name: 'sepal_length' }] }] } },
      ],
      ['scope', { ...base, scope: 'production' }],
    ];
    for (const [what, variant] of variants) expect(keyOf(variant), what).not.toBe(keyOf(base));
  });

  it('names what differs, down to the parameter and the input', () => {
    const changed = keyComponents({ ...base, parameters: { ...base.parameters, epochs: 11 }, inputs: { prepare: { rows: 1 } } });
    const differences = keyDifferences(changed, keyComponents(base));
    expect(differences.map((d) => [d.component, d.name])).toEqual([
      ['parameter', 'epochs'],
      ['input', 'prepare'],
    ]);
  });

  it('finds the object-store digests outputs reference', () => {
    expect([...referencedObjects({ model: `sha256:${'d'.repeat(64)}`, nested: [{ x: `sha256:${'e'.repeat(64)}` }], text: 'sha256:short' })]).toEqual([
      `sha256:${'d'.repeat(64)}`,
      `sha256:${'e'.repeat(64)}`,
    ]);
  });
});
