import { expect, it } from 'vitest';
import { parseModelTarget } from './spec';

it('reads a model target as an alias to follow or a version to pin, written either way the registry writes one', () => {
  expect(parseModelTarget('ml/iris@champion')).toEqual({ model: 'ml/iris', alias: 'champion', version: null });
  expect(parseModelTarget('ml/iris/3')).toEqual({ model: 'ml/iris', alias: null, version: 3 });
  // No alias is a number (setModelAlias refuses one), so ns/model@3 is version 3, as in modelVersion(ref:).
  expect(parseModelTarget('ml/iris@3')).toEqual({ model: 'ml/iris', alias: null, version: 3 });
  for (const bad of ['ml/iris', 'iris@champion', 'ml/iris@', 'ml/iris@-x', 'ml/iris/3/4', 'ml/iris@1234567890'])
    expect(() => parseModelTarget(bad), bad).toThrow(/names no model version: use ns\/model@alias/);
});
