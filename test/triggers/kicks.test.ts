// What wakes the background loops (trigger dispatcher, webhook worker, registry feed and through it the deployments'
// reconciler): a run mutation kicks nothing by itself (its orchestrator kicks what its transaction wrote for), so a run
// no trigger or webhook waits for wakes no loop; a run a trigger waits for still kicks the dispatcher at its end, and
// any other mutation kicks them all as before.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../harness/app';
import { runToEnd } from '../registry/setup';
import { CREATE_TRIGGER, until } from './world';

let t: TestApp;
const kicks = { triggers: 0, webhooks: 0, registryFeed: 0 };

beforeAll(async () => {
  t = await startTestApp();
  await t.publishFixture('echo');
  for (const name of ['quiet', 'watched']) await t.createWorkflow({ name, tasks: [{ name: 'say', module: 'test/echo', parameters: { message: 'hi' } }] });
  await t.createWorkflow({ name: 'follow-up', tasks: [{ name: 'say', module: 'test/echo', pool: 'parked', parameters: { message: 'hi' } }] });
  await t.api.gql(CREATE_TRIGGER, { input: { workflow: 'follow-up', name: 'after-watched', kind: 'RUN_SUCCEEDED', source: 'watched' } });
  // Counted from here: every caller (the yoga plugin, the orchestrator's hooks) calls the loop object's own kick.
  for (const name of Object.keys(kicks) as (keyof typeof kicks)[]) {
    const loop = t.app.services[name];
    const kick = loop.kick.bind(loop);
    loop.kick = () => {
      kicks[name]++;
      kick();
    };
  }
}, 120_000);
afterAll(() => t?.stop());

const reset = () => Object.assign(kicks, { triggers: 0, webhooks: 0, registryFeed: 0 });

describe('loop kicks', () => {
  it('a run no trigger or webhook waits for wakes no loop, from its start to its end', async () => {
    reset();
    await runToEnd(t, 'quiet');
    expect(kicks).toEqual({ triggers: 0, webhooks: 0, registryFeed: 0 });
  });

  it('a run a trigger waits for kicks the dispatcher at its end, which starts the trigger’s run', async () => {
    reset();
    await runToEnd(t, 'watched');
    await until('the trigger dispatcher kicked', async () => kicks.triggers > 0);
    expect(kicks.triggers).toBeGreaterThan(0);
  });

  it('any other mutation kicks every loop, as before', async () => {
    reset();
    await t.api.gql(`mutation ($n: String!) { createTeam(name: $n) { id } }`, { n: 'kickers' });
    expect(kicks).toEqual({ triggers: 1, webhooks: 1, registryFeed: 1 });
  });
});
