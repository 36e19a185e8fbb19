// A task message carries its parameters, upstream outputs and model file lists inline, so what users send decides
// its size. One past the bus's payload limit could never be published: it would sit in the outbox, retried on every
// relay pass. Here nats-server takes 32 KiB: a task with a parameter too large, and one whose wired upstream output
// makes it too large, fail at dispatch saying what to do (never retried), while the rest of the run goes on and the
// outbox empties.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { outbox } from '../../server/db/tables/outbox';
import { startTestApp, type TestApp } from '../harness/app';
import { type NatsServer, startNats } from '../harness/nats';

let nats: NatsServer | undefined;
let t: TestApp;
const RUN = `query ($id: ID!) { run(id: $id) { status tasks { node status reason message attempt } } }`;

beforeAll(async () => {
  nats = await startNats({ maxPayloadBytes: 32 * 1024 });
  t = await startTestApp({ NATS_URL: nats.url, ATELIER_EMBEDDED_EXECUTOR: 'true' });
  await t.publishFixture('echo');
}, 60_000);
afterAll(async () => {
  await t?.stop();
  await nats?.stop();
});

describe('task messages within the bus’s payload limit', () => {
  it('fails the tasks whose message would not fit, saying so, and runs the rest', async () => {
    await t.createWorkflow({
      name: 'oversized',
      tasks: [
        { name: 'big', module: 'test/echo', parameters: { message: 'x'.repeat(40_000) } },
        { name: 'small', module: 'test/echo', parameters: { message: 'fits' } },
        // 15 KB goes out as `up`'s parameter and comes back as its output; `down` carries it twice (its parameter,
        // wired, and its upstream's outputs): over the 28 KiB a message may carry here
        { name: 'up', module: 'test/echo', parameters: { message: 'y'.repeat(15_000) } },
        { name: 'down', module: 'test/echo', dependsOn: ['up'], parameters: { message: '${outputs.up.message}' } },
      ],
    });
    const { startRun } = await t.api.gql(`mutation { startRun(workflow: "oversized") { id } }`);
    let run: any;
    for (const deadline = Date.now() + 60_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 100))) {
      run = (await t.api.gql(RUN, { id: startRun.id })).run;
      if (['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(run.status)) break;
    }
    expect(run.status).toBe('FAILED');
    const task = Object.fromEntries(run.tasks.map((x: any) => [x.node, x]));
    for (const node of ['big', 'down']) {
      expect(task[node]).toMatchObject({ status: 'FAILED', reason: 'message-too-large' });
      expect(task[node].message).toMatch(/its task message is \d+ bytes, over the 28672 the bus takes .*pass a large value as an artifact or a dataset/);
      expect(task[node].attempt).toBeLessThanOrEqual(1); // never retried
    }
    expect(task.small.status).toBe('SUCCEEDED');
    expect(task.up.status).toBe('SUCCEEDED');
    // nothing is left behind for the relay to retry
    let left = await t.app.services.db.select().from(outbox);
    for (const deadline = Date.now() + 10_000; left.length && Date.now() < deadline; await new Promise((r) => setTimeout(r, 100)))
      left = await t.app.services.db.select().from(outbox);
    expect(left).toEqual([]);
  });
});
