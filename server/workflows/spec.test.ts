import { describe, expect, it } from 'vitest';
import type { AtelierError } from '../errors';
import { parseWorkflowSpec, resolveRunParameters, substituteParameters } from './spec';

const codeOf = (fn: () => unknown) => {
  try {
    fn();
  } catch (error) {
    return { code: (error as AtelierError).code, message: (error as Error).message, details: (error as AtelierError).details };
  }
  throw new Error('expected an error');
};

describe('workflow spec', () => {
  it('parses YAML and JSON alike', () => {
    const yaml = parseWorkflowSpec('name: w\ntasks:\n  - name: a\n    module: ns/m@latest\n  - name: b\n    module: ns/m\n    dependsOn: [a]\n');
    const json = parseWorkflowSpec(
      JSON.stringify({
        name: 'w',
        tasks: [
          { name: 'a', module: 'ns/m@latest' },
          { name: 'b', module: 'ns/m', dependsOn: ['a'] },
        ],
      }),
    );
    expect(yaml).toEqual(json);
  });

  it('names the nodes of a cycle, however long', () => {
    const tasks = Array.from({ length: 50 }, (_, i) => ({ name: `n${i}`, module: 'ns/m', dependsOn: [`n${(i + 1) % 50}`] }));
    const error = codeOf(() => parseWorkflowSpec({ name: 'w', tasks }));
    expect(error.code).toBe('INVALID_WORKFLOW');
    expect(error.message).toMatch(/cycle n\d+ → .* → n\d+/);
  });

  it('accepts a deep chain without recursion limits', () => {
    const tasks = Array.from({ length: 20000 }, (_, i) => ({ name: `n${i}`, module: 'ns/m', dependsOn: i ? [`n${i - 1}`] : [] }));
    expect(parseWorkflowSpec({ name: 'w', tasks }).tasks).toHaveLength(20000);
  });

  it('reports shape errors by node name, not array index', () => {
    const error = codeOf(() =>
      parseWorkflowSpec({
        name: 'w',
        tasks: [
          { name: 'ok', module: 'ns/m' },
          { name: 'bad', module: 'Not A Module' },
        ],
      }),
    );
    expect(error.details.map((d) => d.path)).toContain('tasks.bad.module');
  });

  it('rejects unknown fields, self-dependencies and duplicates', () => {
    expect(codeOf(() => parseWorkflowSpec({ name: 'w', tasks: [{ name: 'a', module: 'ns/m', colour: 1 }] })).message).toContain('unknown field "colour"');
    expect(codeOf(() => parseWorkflowSpec({ name: 'w', tasks: [{ name: 'a', module: 'ns/m', colour: 1 }] })).message).not.toContain('did you mean');
    // what the writer most likely meant, where a known field is that close
    expect(codeOf(() => parseWorkflowSpec({ name: 'w', tasks: [{ name: 'a', module: 'ns/m', timeout: 60 }] })).message).toContain(
      'unknown field "timeout" (did you mean "timeoutSeconds"?)',
    );
    expect(codeOf(() => parseWorkflowSpec({ name: 'w', tasks: [{ name: 'a', module: 'ns/m', depends_on: ['b'] }] })).message).toContain(
      '(did you mean "dependsOn"?)',
    );
    expect(codeOf(() => parseWorkflowSpec({ name: 'w', tasks: [{ name: 'a', module: 'ns/m', dependsOn: ['a'] }] })).message).toContain('names the task itself');
  });

  it('resolves run parameters with defaults and keeps JSON types when substituting', () => {
    const spec = parseWorkflowSpec({
      name: 'w',
      parameters: { epochs: { default: 10 }, lr: {} },
      tasks: [{ name: 'a', module: 'ns/m', parameters: { e: '${params.epochs}', nested: ['${params.lr}'], literal: 'x ${params.epochs}' } }],
    });
    const params = resolveRunParameters(spec, { lr: 0.1 });
    expect(params).toEqual({ epochs: 10, lr: 0.1 });
    expect(substituteParameters('a', spec.tasks[0]!.parameters!, params)).toEqual({ e: 10, nested: [0.1], literal: 'x ${params.epochs}' });
    expect(codeOf(() => resolveRunParameters(spec, { nope: 1 })).code).toBe('BAD_USER_INPUT');
    expect(codeOf(() => resolveRunParameters(spec, { nope: 1 })).details[0]?.message).toBe('is not declared by the workflow');
    expect(codeOf(() => resolveRunParameters(spec, { epoch: 1 })).details[0]?.message).toBe('is not declared by the workflow (did you mean "epochs"?)');
    expect(codeOf(() => substituteParameters('a', { e: '${params.missing}' }, params)).details[0]?.message).toBe('refers to missing run parameter "missing"');
  });

  it('takes names found on every object (constructor, toString, __proto__) as any other name', () => {
    const spec = parseWorkflowSpec(JSON.parse('{"name":"w","parameters":{"constructor":{},"__proto__":{"default":1}},"tasks":[{"name":"a","module":"ns/m"}]}'));
    // An undeclared `toString` is unknown; a declared `constructor` not given is missing (not Object, the function).
    expect(codeOf(() => resolveRunParameters(spec, { toString: 1, constructor: 2 })).details[0]?.path).toBe('parameters.toString');
    expect(codeOf(() => resolveRunParameters(spec, {})).message).toMatch(/needs run parameter "constructor"/);
    const params = resolveRunParameters(spec, JSON.parse('{"constructor":2,"__proto__":3}'));
    expect(Object.entries(params)).toEqual([
      ['constructor', 2],
      ['__proto__', 3],
    ]);
    expect(Object.getPrototypeOf(params)).toBe(Object.prototype);
    expect(codeOf(() => substituteParameters('a', { e: '${params.valueOf}' }, params)).details[0]?.message).toBe('refers to missing run parameter "valueOf"');
    expect(codeOf(() => parseWorkflowSpec({ name: 'w', tasks: [{ name: 'a', module: 'ns/m', parameters: { e: '${params.toString}' } }] })).code).toBe(
      'INVALID_WORKFLOW',
    );
  });
});

describe('run parameters a spec uses', () => {
  it('refuses every undeclared ${params.NAME} at once, naming the task and field', () => {
    const error = codeOf(() =>
      parseWorkflowSpec({
        name: 'w',
        parameters: { lr: { default: 0.1 } },
        tasks: [
          { name: 'train', module: 'ns/m', parameters: { seed: '${params.seed}', lr: '${params.lr}', nested: { list: ['${params.epochs}'] } } },
          { name: 'each', module: 'ns/m', map: { over: '${params.items}' } },
        ],
      }),
    );
    expect(error.code).toBe('INVALID_WORKFLOW');
    const paths = (error.details ?? []).map((d) => d.path);
    expect(paths).toEqual(['tasks.train.parameters.seed', 'tasks.train.parameters.nested.list.0', 'tasks.each.map.over']);
    expect(error.message).toContain('declares no run parameter "seed"');
    expect(error.message).toContain('"epochs"');
    expect(error.message).toContain('"items"');
  });

  it('accepts declared ones, with or without a default', () => {
    expect(() =>
      parseWorkflowSpec({
        name: 'w',
        parameters: { seed: {}, lr: { default: 1 } },
        tasks: [{ name: 'a', module: 'ns/m', parameters: { s: '${params.seed}', l: '${params.lr}' } }],
      }),
    ).not.toThrow();
  });
});
