// Model targets and rollout policies as deployments read them. A target is an alias to follow or a version to pin,
// written either way the registry writes one. A policy's gates name metrics as observations do: a name no
// observation could carry (a space, a control character, over 128 characters) is refused with what a name may be,
// rather than kept as a gate that never has data.
import { expect, it } from 'vitest';
import { checkPolicy, parseModelTarget } from './spec';

it('reads a model target as an alias to follow or a version to pin, written either way the registry writes one', () => {
  expect(parseModelTarget('ml/iris@champion')).toEqual({ model: 'ml/iris', alias: 'champion', version: null });
  expect(parseModelTarget('ml/iris/3')).toEqual({ model: 'ml/iris', alias: null, version: 3 });
  // No alias is a number (setModelAlias refuses one), so ns/model@3 is version 3, as in modelVersion(ref:).
  expect(parseModelTarget('ml/iris@3')).toEqual({ model: 'ml/iris', alias: null, version: 3 });
  for (const bad of ['ml/iris', 'iris@champion', 'ml/iris@', 'ml/iris@-x', 'ml/iris/3/4', 'ml/iris@1234567890'])
    expect(() => parseModelTarget(bad), bad).toThrow(/names no model version: use ns\/model@alias/);
});

const gated = (metric: string) => () =>
  checkPolicy({ steps: [{ percent: 10 }, { percent: 100 }], gates: [{ metric, rule: { kind: 'THRESHOLD', above: 0.01 } }] });

it('refuses a gate whose metric no observation could be named, and takes one that could', () => {
  for (const metric of ['error rate', 'serving.error_rate\u001b[2J', '', `m${'x'.repeat(128)}`, '.hidden'])
    expect(gated(metric), JSON.stringify(metric)).toThrow(/^rollout\.gates\.0\.metric must name a metric as observations do: 1–128 letters/);
  expect(gated('serving.error_rate')().gates).toMatchObject([{ metric: 'serving.error_rate' }]);
  expect(gated(`m${'x'.repeat(127)}`)().gates).toHaveLength(1);
});
