// Task batches within the bus's payload limit (protocol 3, issue 21): nats-server here takes 32 KiB, so a run whose
// tasks dispatch together in ~75 KB of task messages goes out as a few batches, each under the limit, instead of
// one message per task or one message too large; a task too large on its own still fails with
// `message-too-large`, and everything else runs once. Also the packing itself (poolMessages), by size and count.
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TaskBatch, TaskMessage } from '../../plugins/protocol';
import { executorHosts } from '../../server/db/tables/executors';
import { outbox } from '../../server/db/tables/outbox';
import { messageTexts, poolMessages } from '../../server/orchestrator/task-message';
import { startTestApp, type TestApp } from '../harness/app';
import { type NatsServer, startNats } from '../harness/nats';

let nats: NatsServer | undefined;
let t: TestApp;
const RUN = `query ($id: ID!) { run(id: $id) { status tasks { node status reason attempt } } }`;

beforeAll(async () => {
  nats = await startNats({ maxPayloadBytes: 32 * 1024 });
  // 64 slots: a pool's batches are never larger than its smallest live host's capacity, and here the payload limit
  // is what should cut them.
  t = await startTestApp({ NATS_URL: nats.url, ATELIER_EMBEDDED_EXECUTOR: 'true', ATELIER_EXECUTOR_CONCURRENCY: '64' });
  await t.publishFixture('echo');
}, 60_000);
afterAll(async () => {
  await t?.stop();
  await nats?.stop();
});

/** Every message the TASKS stream has taken so far. */
async function tasksPublished(): Promise<number> {
  const nc = await connect({ servers: nats!.url });
  try {
    return (await (await jetstreamManager(nc)).streams.info('TASKS')).state.last_seq;
  } finally {
    await nc.close();
  }
}

describe('task batches within the bus’s payload limit', () => {
  it('sends a run’s 30 tasks as a few batches under max_payload, and still fails the one task too large alone', async () => {
    const tasks = Array.from({ length: 30 }, (_, i) => ({
      name: `t${i}`,
      module: 'test/echo',
      executor: 'noop',
      parameters: { message: `${i}`.padEnd(2_000, 'x') },
    }));
    await t.createWorkflow({
      name: 'batched',
      tasks: [...tasks, { name: 'big', module: 'test/echo', executor: 'noop', parameters: { message: 'x'.repeat(40_000) } }],
    });
    // Batches are sized by the live hosts the control plane has heard from: wait for the embedded host's heartbeat.
    for (const deadline = Date.now() + 30_000; !(await t.app.services.db.select().from(executorHosts)).length; await new Promise((r) => setTimeout(r, 50)))
      if (Date.now() > deadline) throw new Error('no executor host heartbeat recorded in 30 s');
    const before = await tasksPublished();
    const { startRun } = await t.api.gql(`mutation { startRun(workflow: "batched") { id } }`);
    let run: any;
    for (const deadline = Date.now() + 60_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 100))) {
      run = (await t.api.gql(RUN, { id: startRun.id })).run;
      if (['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(run.status)) break;
    }
    expect(run.status).toBe('FAILED');
    const byNode = Object.fromEntries(run.tasks.map((x: any) => [x.node, x]));
    expect(byNode.big).toMatchObject({ status: 'FAILED', reason: 'message-too-large' });
    for (const { name } of tasks) expect(byNode[name]).toMatchObject({ status: 'SUCCEEDED', attempt: 1 });
    // ~2.3 KB each, ~69 KB in all: three or four batches of at most 28 KiB, not thirty messages.
    const published = (await tasksPublished()) - before;
    expect(published).toBeGreaterThanOrEqual(3);
    expect(published).toBeLessThanOrEqual(4);
    let left = await t.app.services.db.select().from(outbox);
    for (const deadline = Date.now() + 10_000; left.length && Date.now() < deadline; await new Promise((r) => setTimeout(r, 100)))
      left = await t.app.services.db.select().from(outbox);
    expect(left).toEqual([]);
  });
});

describe('poolMessages', () => {
  const task = (pool: string, i: number) => ({ taskId: `t${i}`, attempt: 1, pool }) as TaskMessage;
  const sizes = (messages: TaskMessage[]) => messages.map((m) => Buffer.byteLength(JSON.stringify(m)));

  it('batches each pool’s tasks in order (batches in the order they fill), at most maxTasks each, a lone task as itself under its own id', () => {
    const messages = [task('a', 1), task('b', 2), task('a', 3), task('a', 4)];
    const out = poolMessages(messages, sizes(messages), 1_000_000, 2);
    expect(out.map((m) => [m.pool, m.msgId])).toEqual([
      ['a', 't1:1+2'],
      ['b', 't2:1'],
      ['a', 't4:1'],
    ]);
    expect((out[0]!.payload as TaskBatch).tasks.map((x) => x.taskId)).toEqual(['t1', 't3']);
    expect(out[2]!.payload).toEqual(task('a', 4));
  });

  it('closes a batch before it would pass maxBytes, counting the frame and commas', () => {
    const messages = Array.from({ length: 5 }, (_, i) => task('a', i));
    const bytes = sizes(messages);
    const two = JSON.stringify({ tasks: messages.slice(0, 2) }).length;
    const out = poolMessages(messages, bytes, two, 100);
    expect(out.map((m) => m.msgId)).toEqual(['t0:1+2', 't2:1+2', 't4:1']);
    for (const m of out) expect(JSON.stringify(m.payload).length).toBeLessThanOrEqual(two);
  });

  it('joins the messages’ JSON, when given, into each bus message’s own: what serializing its payload makes', () => {
    const messages = [task('a', 1), { ...task('b', 2), parameters: { text: 'é "quoted" \\ ✓' } } as TaskMessage, task('a', 3), task('a', 4)];
    const texts = messages.map((m) => JSON.stringify(m));
    const out = poolMessages(messages, sizes(messages), 1_000_000, 2, texts);
    expect(out.map((m) => m.text)).toEqual(out.map((m) => JSON.stringify(m.payload)));
    expect(poolMessages(messages, sizes(messages), 1_000_000, 2).every((m) => m.text === undefined)).toBe(true);
  });

  it('counts a message left unmeasured (messageTexts) only when its batch nears maxBytes: the same batches as measured', () => {
    // Two-byte characters: a bound of one byte a character would let batches pass the limit.
    const messages = Array.from({ length: 9 }, (_, i) => ({ ...task('a', i), parameters: { text: 'é'.repeat(40 + i * 7) } }) as TaskMessage);
    const limit = Math.max(...messages.map((m) => JSON.stringify(m).length * 3));
    const { texts, bytes } = messageTexts(messages, limit);
    expect(bytes.every((b) => b === undefined)).toBe(true); // each fits alone however it encodes: not counted here
    const lazily = poolMessages(messages, bytes, limit, 100, texts);
    expect(lazily.map((m) => m.msgId)).toEqual(poolMessages(messages, sizes(messages), limit, 100, texts).map((m) => m.msgId));
    expect(lazily.length).toBeGreaterThan(2);
    for (const m of lazily) expect(Buffer.byteLength(m.text!)).toBeLessThanOrEqual(limit);
    // A message that may not fit is counted at once (dispatch fails it when it does not).
    expect(messageTexts(messages, 100).bytes).toEqual(sizes(messages));
  });
});
