import { describe, expect, it } from 'vitest';
import { turnsDuring } from '../../test/harness/event-loop';
import type { TaskSpec } from '../vocabulary';
import { conditionProblems, evaluateCondition } from './condition';

const task = (when: string, dependsOn: string[] = ['evaluate', 'train']): TaskSpec & { when: string } => ({
  name: 'register',
  module: 'ml/register',
  dependsOn,
  when,
});
const problems = (when: string, params: Record<string, unknown> = { minimum: {} }) =>
  conditionProblems(task(when), params).map((p) => `${p.path} ${p.message}`);
const context = (outputs: Record<string, Record<string, unknown>> = {}, status: Record<string, string> = {}, params: Record<string, unknown> = {}) => ({
  params,
  outputs,
  status,
});

describe('a condition as the spec is stored', () => {
  it('takes a condition over the direct upstreams’ outputs and statuses and declared parameters', () => {
    expect(problems('double(outputs.evaluate.accuracy) >= params.minimum && status.train == "SUCCEEDED"')).toEqual([]);
    expect(problems('has(outputs.evaluate.accuracy) && outputs["evaluate"].accuracy > 0.9')).toEqual([]);
    expect(problems('outputs.evaluate.scores.all(s, s > 0.5)')).toEqual([]);
  });

  it('refuses what does not parse or type-check, saying where', () => {
    expect(problems('outputs.evaluate.accuracy >=')).toEqual(['tasks.register.when is not a valid CEL condition: Unexpected token: EOF (at character 29)']);
    expect(problems('accuracy > 0.9')).toEqual(['tasks.register.when is not a valid CEL condition: Unknown variable: accuracy (at character 1)']);
    expect(problems('1 > "a"')[0]).toMatch(/no such overload: int > string/);
    expect(problems('outputs.evaluate.n + 1')).toEqual([
      'tasks.register.when is an int, not true or false; compare it, e.g. "outputs.evaluate.accuracy >= 0.9"',
    ]);
    expect(problems(`${'1 + '.repeat(300)}1`)[0]).toMatch(/maxAstNodes/);
  });

  it('refuses a node that is not a direct upstream and an undeclared parameter, naming the nearest', () => {
    expect(problems('outputs.evaluat.accuracy > 0.9 && status["prepare"] == "SUCCEEDED"')).toEqual([
      'tasks.register.when reads outputs.evaluat, but "evaluat" is not in this task\'s dependsOn; a condition reads only its direct upstreams (did you mean "evaluate"?)',
      'tasks.register.when reads status.prepare, but "prepare" is not in this task\'s dependsOn; a condition reads only its direct upstreams',
    ]);
    expect(problems('params.minimun < 1.0')).toEqual([
      'tasks.register.when reads params.minimun, but the workflow declares no run parameter "minimun" (did you mean "minimum"?)',
    ]);
  });
});

describe('a condition decided', () => {
  it('is true or false over the context', async () => {
    await expect(evaluateCondition('outputs.evaluate.accuracy >= 0.9', context({ evaluate: { accuracy: 0.93 } }))).resolves.toEqual({ value: true });
    await expect(evaluateCondition('outputs.evaluate.n > 5', context({ evaluate: { n: 3 } }))).resolves.toEqual({ value: false });
    await expect(evaluateCondition('status.train == "FAILED" || params.force', context({}, { train: 'FAILED' }, { force: false }))).resolves.toEqual({
      value: true,
    });
  });

  it('says why when it cannot be decided: a missing key, a value that is not true or false', async () => {
    await expect(evaluateCondition('outputs.evaluate.accuracy > 0.9', context({ evaluate: {} }))).resolves.toEqual({ error: 'No such key: accuracy' });
    await expect(evaluateCondition('params.flag', context({}, {}, { flag: 'yes' }))).resolves.toEqual({
      error: 'it evaluated to "yes", not to true or false',
    });
  });

  it('runs a loop over large outputs off the event loop, and gives up one past its deadline on a fresh thread', async () => {
    const scores = Array.from({ length: 2000 }, (_, i) => i / 2000);
    const loop = evaluateCondition('outputs.evaluate.scores.exists(s, s > 0.999)', context({ evaluate: { scores } }));
    expect(await turnsDuring(loop)).toBeGreaterThan(0);
    await expect(loop).resolves.toEqual({ value: true });
    // 2,000³ comparisons: far past the deadline on any machine.
    const cubic = await evaluateCondition(
      'outputs.evaluate.scores.all(a, outputs.evaluate.scores.all(b, outputs.evaluate.scores.all(c, a + b + c >= 0.0)))',
      context({ evaluate: { scores } }),
    );
    expect(cubic).toEqual({ error: expect.stringMatching(/took longer than 2 s to evaluate/) });
    await expect(evaluateCondition('outputs.evaluate.scores.all(s, s < 1.0)', context({ evaluate: { scores } }))).resolves.toEqual({ value: true });
  });

  it('ends a condition that builds values past the thread’s memory, and the next one is decided', async () => {
    const big = Array.from({ length: 4000 }, (_, i) => i);
    const bomb = await evaluateCondition('size(outputs.a.l.map(x, outputs.a.l.map(y, [x, y]))) > 0', context({ a: { l: big } }));
    expect(bomb).toEqual({ error: expect.stringMatching(/took longer than|evaluation stopped/) });
    await expect(evaluateCondition('outputs.a.l.exists(x, x == 3)', context({ a: { l: big } }))).resolves.toEqual({ value: true });
  });
});
