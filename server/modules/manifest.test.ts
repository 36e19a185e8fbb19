// The manifest: every field the issue names is accepted, and each kind of mistake is named by field and reason.
import { describe, expect, it } from 'vitest';
import type { AtelierError } from '../errors';
import { checkParameters, parseManifest } from './manifest';

const full = `
namespace: ml
name: score
description: Scores users.
entrypoint: score.py
runtime: python3
parameters:
  type: object
  required: [threshold]
  properties:
    threshold: { type: number, minimum: 0, maximum: 1 }
inputs:
  - name: users
    dataset: crm/users
    columns:
      - { name: user_id, type: string }
      - { name: email, type: string }
      - { name: age, type: int }
outputs:
  - name: scores
    dataset: ml/scores
    columns:
      - { name: user_id, type: string, from: [users.user_id] }
      - { name: score, type: float, from: [users.age] }
      - { name: model, type: string, from: [] }
      - { name: note, type: string }
resources: { cpu: 2, memory: 4Gi, gpus: 1, pool: gpu }
cache: { enabled: true, version: "2" }
test: python3 -m pytest -q
`;

function errorOf(text: string): AtelierError {
  try {
    parseManifest(text);
  } catch (error) {
    return error as AtelierError;
  }
  throw new Error('expected the manifest to be refused');
}

describe('module manifest', () => {
  it('accepts every documented field, lineage included', () => {
    const m = parseManifest(full);
    expect(m.outputs?.[0]?.columns?.map((c) => c.from)).toEqual([['users.user_id'], ['users.age'], [], undefined]);
    expect(m.resources).toEqual({ cpu: 2, memory: '4Gi', gpus: 1, pool: 'gpu' });
    expect(m.cache).toEqual({ enabled: true, version: '2' });
  });

  it.each([
    ['a missing entrypoint', full.replace('entrypoint: score.py\n', ''), 'entrypoint', 'is required'],
    ['an unknown runtime', full.replace('runtime: python3', 'runtime: ruby'), 'runtime', 'must be one of node, python3, shell'],
    ['an unknown field', `${full}colour: blue\n`, '(root)', 'unknown field "colour"'],
    ['a misspelt field', full.replace('entrypoint: score.py', 'entryPoint: score.py'), '(root)', 'unknown field "entryPoint" (did you mean "entrypoint"?)'],
    ['an absolute entrypoint', full.replace('entrypoint: score.py', 'entrypoint: /etc/passwd'), 'entrypoint', 'must be a path inside the module directory'],
    ['bad memory', full.replace('memory: 4Gi', 'memory: lots'), 'resources.memory', 'must be a whole number of bytes, optionally with Ki, Mi, Gi or Ti'],
    ['negative gpus', full.replace('gpus: 1', 'gpus: -1'), 'resources.gpus', 'must be >= 0'],
    [
      'lineage from an undeclared input',
      full.replace('from: [users.age]', 'from: [orders.total]'),
      'outputs.0.columns.1.from.0',
      'names input "orders", which is not declared under inputs',
    ],
    [
      'lineage from an undeclared column',
      full.replace('from: [users.age]', 'from: [users.salary]'),
      'outputs.0.columns.1.from.0',
      'names column "salary", which input "users" does not declare',
    ],
    ['lineage without an input name', full.replace('from: [users.age]', 'from: [age]'), 'outputs.0.columns.1.from.0', 'must be INPUT.COLUMN'],
    [
      'a repeated column',
      full.replace('{ name: email, type: string }', '{ name: user_id, type: string }'),
      'inputs.0.columns.1.name',
      'repeats column "user_id"',
    ],
    ['a bad cache block', full.replace('enabled: true', 'enabled: yes please'), 'cache.enabled', 'must be boolean'],
  ])('names the field for %s', (_what, text, path, message) => {
    const error = errorOf(text);
    expect(error.code).toBe('INVALID_MANIFEST');
    expect(error.details).toContainEqual({ path, message: expect.stringContaining(message) });
  });

  it('says to write the namespace apart when the name is the full ns/name, as the CLI writes modules', () => {
    const error = errorOf(full.replace('namespace: ml\nname: score', 'name: ml/score'));
    expect(error.details).toEqual([{ path: 'name', message: 'is the full name "ml/score": write its namespace apart, as `namespace: ml` and `name: score`' }]);
    expect(errorOf(full.replace('name: score', 'name: ml/score')).details).toContainEqual({ path: 'name', message: expect.stringContaining('must be 1–64') });
  });

  it('refuses YAML that does not parse, and a parameter schema that is not JSON Schema', () => {
    expect(errorOf('namespace: [unclosed').message).toMatch(/not valid YAML/);
    expect(errorOf(full.replace('type: object\n  required', 'type: objekt\n  required')).details[0]?.path).toBe('parameters');
  });

  it('checks parameter values against the schema, naming each bad one', () => {
    const m = parseManifest(full);
    expect(checkParameters('d1', m, { threshold: 0.5 })).toEqual([]);
    expect(checkParameters('d1', m, { threshold: 2 })).toEqual([{ path: 'parameters.threshold', message: 'must be <= 1' }]);
    expect(checkParameters('d1', m, {})).toEqual([{ path: 'parameters.threshold', message: 'is required' }]);
  });
});
