// Conditional tasks end to end on the embedded stack: a node's `when` (CEL) over the run's parameters and its direct
// upstreams' outputs and statuses, decided before dispatch — a model registered only when its evaluation is good
// enough, a notification only when registration was skipped — with what a false, an undecidable or a mistyped
// condition does to the node, its downstream and the run.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../harness/app';
import { RUN_EVENTS } from '../harness/client';

const START = `mutation ($w: String!, $p: JSON) { startRun(workflow: $w, parameters: $p) { id } }`;
const RUN = `query ($id: ID!) { run(id: $id) { status message tasks { node status reason message condition childRun { id } } } }`;
const terminal = (e: any) => e.runEvents.__typename === 'RunStatusEvent' && ['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(e.runEvents.runStatus);

describe('conditional tasks (when)', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
    await t.publishFixture('echo');
    await t.createWorkflow({ name: 'report', tasks: [{ name: 'write', module: 'test/echo' }] });
    await t.createWorkflow({
      name: 'gated',
      parameters: { accuracy: { default: '0.95' }, minimum: { default: 0.9 }, publish: { default: true } },
      tasks: [
        { name: 'evaluate', module: 'test/echo', parameters: { message: '${params.accuracy}' } },
        // The gate: the echo fixture outputs its message, here the accuracy as text.
        { name: 'register', module: 'test/echo', dependsOn: ['evaluate'], when: 'double(outputs.evaluate.message) >= params.minimum' },
        { name: 'announce', module: 'test/echo', dependsOn: ['register'] },
        { name: 'report', workflow: 'report', dependsOn: ['register'], trigger: 'all_done', when: 'status.register == "SUCCEEDED"' },
        { name: 'fan', module: 'test/echo', map: { over: ['a', 'b'], as: 'message' }, dependsOn: ['evaluate'], when: 'params.publish' },
        { name: 'notify', module: 'test/echo', dependsOn: ['register'], trigger: 'all_done', when: 'status.register == "SKIPPED"' },
      ],
    });
  });
  afterAll(() => t?.stop());

  async function runToEnd(workflow: string, parameters?: object) {
    const { startRun } = await t.api.gql(START, { w: workflow, p: parameters ?? null });
    const events = (await t.api.subscribe<any>(RUN_EVENTS, { runId: startRun.id }, terminal)).map((e) => e.runEvents);
    const { run } = await t.api.gql(RUN, { id: startRun.id });
    return { run, byNode: Object.fromEntries(run.tasks.map((x: any) => [x.node, x])) as Record<string, any>, events };
  }

  it('runs a node whose condition holds and skips one whose condition is false, with what depends on each', async () => {
    const { run, byNode } = await runToEnd('gated');
    expect(run.status).toBe('SUCCEEDED');
    expect(byNode.register).toMatchObject({ status: 'SUCCEEDED', condition: 'double(outputs.evaluate.message) >= params.minimum' });
    expect(byNode.announce.status).toBe('SUCCEEDED');
    expect(byNode.report.status).toBe('SUCCEEDED');
    expect(byNode['fan[1]'].status).toBe('SUCCEEDED');
    expect(byNode.notify).toMatchObject({
      status: 'SKIPPED',
      reason: 'condition-false',
      message: 'skipped: its condition was false (when: status.register == "SKIPPED")',
    });
  });

  it('skips a gated node, its downstream by trigger rule (reason upstream-skipped), a nested run and a map, and the run succeeds', async () => {
    const { run, byNode, events } = await runToEnd('gated', { accuracy: '0.5', publish: false });
    expect(run.status).toBe('SUCCEEDED');
    expect(byNode.register).toMatchObject({ status: 'SKIPPED', reason: 'condition-false' });
    expect(byNode.announce).toMatchObject({ status: 'SKIPPED', reason: 'upstream-skipped' });
    expect(byNode.announce.message).toContain('1 skipped or cancelled');
    // all_done makes it ready; its condition then skips it: no nested run is started.
    expect(byNode.report).toMatchObject({ status: 'SKIPPED', reason: 'condition-false', childRun: null });
    // A skipped map is never expanded.
    expect(byNode.fan).toMatchObject({ status: 'SKIPPED', reason: 'condition-false' });
    expect(Object.keys(byNode).filter((n) => n.startsWith('fan['))).toEqual([]);
    expect(byNode.notify.status).toBe('SUCCEEDED');
    // Live subscribers see the skip with its reason.
    expect(events).toContainEqual(expect.objectContaining({ __typename: 'TaskStatusEvent', node: 'register', status: 'SKIPPED', reason: 'condition-false' }));
  });

  it('fails a node whose condition cannot be decided, saying why, and the run with it', async () => {
    const { run, byNode } = await runToEnd('gated', { accuracy: 'not a number' });
    expect(run.status).toBe('FAILED');
    expect(byNode.register).toMatchObject({ status: 'FAILED', reason: 'condition-invalid' });
    expect(byNode.register.message).toMatch(
      /^its condition could not be decided: .*double.*\(when: double\(outputs\.evaluate\.message\) >= params\.minimum\); .*has\(\)/,
    );
    expect(byNode.announce).toMatchObject({ status: 'SKIPPED', reason: 'upstream-failed' });
    expect(run.message).toBe('register failed');
  });

  it('refuses a spec whose condition does not parse or names what the node may not read, storing nothing', async () => {
    const spec = (when: string) => ({
      name: 'bad-gate',
      parameters: { minimum: { default: 0.9 } },
      tasks: [
        { name: 'evaluate', module: 'test/echo' },
        { name: 'register', module: 'test/echo', dependsOn: ['evaluate'], when },
      ],
    });
    const create = `mutation ($spec: String!) { createWorkflow(spec: $spec) { created } }`;
    for (const [when, message] of [
      ['outputs.evaluate.accuracy >=', /tasks\.register\.when is not a valid CEL condition: Unexpected token: EOF \(at character 29\)/],
      ['outputs.evaluat.accuracy > params.minimum', /reads outputs\.evaluat, but "evaluat" is not in this task's dependsOn.*did you mean "evaluate"/],
      ['outputs.evaluate.accuracy > params.minimun', /declares no run parameter "minimun" \(did you mean "minimum"\?\)/],
    ] as const) {
      const r = await t.api.raw(create, { spec: JSON.stringify(spec(when)) });
      expect(r.errors?.[0]?.extensions?.code).toBe('INVALID_WORKFLOW');
      expect(r.errors?.[0]?.message).toMatch(message);
    }
    const { workflow } = await t.api.gql(`query { workflow(name: "bad-gate") { id } }`);
    expect(workflow).toBeNull();
  });
});
