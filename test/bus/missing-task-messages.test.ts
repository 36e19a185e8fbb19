// A bus that outlives the database's history (a database restored from a backup while NATS ran on) no longer holds
// the message of a task the database has QUEUED: a host took and acked it in the history that was lost, or the bus
// dropped a publish of its id as a repeat. The control plane finds such tasks from what the TASKS stream holds and
// dispatches them again, once; a task whose message merely waits on the bus (no host free) is left alone.
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Delivery } from '../../plugins/bus/types';
import type { TaskMessage } from '../../plugins/protocol';
import { createJetStreamBus } from '../../server/bus/jetstream';
import { queryRows } from '../../server/db/client';
import { startTestApp, type TestApp } from '../harness/app';
import { type NatsServer, startNats } from '../harness/nats';

let nats: NatsServer | undefined;
let t: TestApp | undefined;
const RUN = `query ($id: ID!) { run(id: $id) { status tasks { id status attempt message } } }`;

beforeAll(async () => {
  nats = await startNats();
}, 60_000);
afterAll(async () => {
  await t?.stop();
  await nats?.stop();
});

async function poll<T>(read: () => Promise<T>, ok: (value: T) => boolean, what: string, ms = 30_000): Promise<T> {
  for (const deadline = Date.now() + ms; ; await new Promise((r) => setTimeout(r, 100))) {
    const value = await read();
    if (ok(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(value)}`);
  }
}

it('says which attempts the task stream holds: alone or in a batch, until acked', async () => {
  const bus = await createJetStreamBus({ url: nats!.url, streamPrefix: 'HELD' });
  try {
    const task = (taskId: string, attempt: number) => ({ taskId, attempt }) as TaskMessage;
    await bus.publishTask('p', task('a', 1), 'a:1');
    await bus.publishTasks!('q', [task('b', 2), task('c', 1)], 'b:2+2');
    await bus.publishTask('p', task('d', 1), 'd:1');
    const wanted = new Set(['a:1', 'b:2', 'c:1', 'd:1', 'a:2', 'e:1']);
    expect([...(await bus.heldTaskMessages!(wanted))].sort()).toEqual(['a:1', 'b:2', 'c:1', 'd:1']);
    // Acked (its attempt claimed or its result published), a message is no longer held.
    const acked: string[] = [];
    const subscription = await bus.consumeTasks(
      'p',
      async (d: Delivery<TaskMessage>) => {
        if (d.data.taskId === 'a') await d.ack();
        acked.push(d.data.taskId);
      },
      { durable: 'pool-p' },
    );
    await poll(
      async () => acked,
      (a) => a.includes('a') && a.includes('d'),
      'both messages of pool p delivered',
    );
    await subscription.stop();
    expect([...(await bus.heldTaskMessages!(wanted))].sort()).toEqual(['b:2', 'c:1', 'd:1']);
  } finally {
    await bus.close();
  }
});

it('dispatches again, once, a QUEUED task whose message the bus no longer holds, and leaves a waiting one alone', async () => {
  // No executor host: both tasks wait QUEUED, their messages on the bus. A second's heartbeat timeout: the sweep asks
  // the bus about tasks queued longer than that.
  t = await startTestApp({ NATS_URL: nats!.url, ATELIER_HEARTBEAT_TIMEOUT_SECONDS: '1' });
  await t.publishFixture('echo');
  await t.createWorkflow({ name: 'waiting', tasks: [{ name: 'say', module: 'test/echo', parameters: { message: 'hi' } }] });
  const start = async () => (await t!.api.gql(`mutation { startRun(workflow: "waiting") { id } }`)).startRun.id as string;
  const read = async (id: string) => (await t!.api.gql(RUN, { id })).run;
  const waiting = await start();
  await poll(
    () => read(waiting),
    (r) => r.tasks[0]?.status === 'QUEUED',
    'the first task to be queued',
  );
  const taken = await start();
  const queued = await poll(
    () => read(taken),
    (r) => r.tasks[0]?.status === 'QUEUED',
    'the second task to be queued',
  );
  await poll(
    () => queryRows<{ n: number }>(t!.app.services.db, sql`select count(*)::int as n from outbox`),
    (r) => r[0]!.n === 0,
    'the outbox to empty',
  );
  // The second task's message gone as if a host had taken and acked it in a history the database no longer has.
  const nc = await connect({ servers: nats!.url });
  try {
    const jsm = await jetstreamManager(nc);
    const { state } = await jsm.streams.info('TASKS');
    const last = await jsm.streams.getMessage('TASKS', { seq: state.last_seq });
    expect(last!.json<TaskMessage>().taskId).toBe(queued.tasks[0].id);
    await jsm.streams.deleteMessage('TASKS', state.last_seq);
  } finally {
    await nc.close();
  }

  const redispatched = await poll(
    () => read(taken),
    (r) => r.tasks[0]?.attempt === 2,
    'the task to be dispatched again',
  );
  expect(redispatched.tasks[0]).toMatchObject({ status: 'QUEUED', attempt: 2 });
  // The first task, queued earlier, was asked about in that pass or before: its message waits on the bus, it is left.
  expect((await read(waiting)).tasks[0]).toMatchObject({ status: 'QUEUED', attempt: 1 });
}, 90_000);
