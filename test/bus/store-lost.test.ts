// nats-server started again without its JetStream store (a container with no persistent volume, or the store removed):
// its streams and consumers are gone. What was queued in them is lost with the store, but the bus must carry new work
// again by itself: its next publish makes the streams anew, and its pull consumers (tasks and events) are made again
// and deliver. Before, every publish failed ("jetstream is not enabled") and every consumer stayed dead until each
// control plane and executor host was restarted.
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Bus } from '../../plugins/bus/types';
import type { ExecutorEvent, TaskMessage } from '../../plugins/protocol';
import { createJetStreamBus } from '../../server/bus/jetstream';
import { type NatsServer, startNats } from '../harness/nats';
import { refused } from '../harness/ports';

let nats: NatsServer | undefined;
let bus: Bus | undefined;

beforeAll(async () => {
  nats = await startNats();
  // Silence on a pull request is taken as lost only after 10 minutes here: the reconnect alone must find the consumers
  // gone and make them anew (before, they waited out the watchdog's 15 s of silence after every such restart).
  bus = await createJetStreamBus({ url: nats.url, name: 'store-lost', pullSilenceMs: 600_000 });
}, 60_000);
afterAll(async () => {
  await bus?.close();
  await nats?.stop();
});

const task = (taskId: string): TaskMessage => ({
  taskId,
  runId: 'run-1',
  attempt: 1,
  node: 'train',
  pool: 'p',
  executor: 'noop',
  module: { ref: 'team/train@1.0.0', digest: 'sha256:00', entrypoint: 'main.py', runtime: 'python3.11' },
  parameters: {},
  inputs: {},
  timeoutMs: 60_000,
  settings: {},
  enqueuedAt: '2025-01-01T00:00:00.000Z',
});
const heartbeat = (seq: number): ExecutorEvent => ({
  kind: 'heartbeat',
  taskId: 't1',
  runId: 'run-1',
  attempt: 1,
  seq,
  at: '2025-01-01T00:00:00.000Z',
  host: 'h',
});

async function until(ok: () => boolean, what: string) {
  for (let i = 0; !ok(); i++) {
    if (i > 600) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

it('makes its streams and consumers anew after nats-server came back without its store, and carries tasks and events again', async () => {
  const tasks: string[] = [];
  const events: number[] = [];
  await bus!.consumeTasks(
    'p',
    async (d) => {
      tasks.push(d.data.taskId);
      await d.ack();
    },
    { durable: 'hosts', ackWaitMs: 5_000 },
  );
  await bus!.consumeEvents(
    async (batch) => {
      for (const d of batch) {
        events.push(d.data.seq);
        await d.ack();
      }
    },
    { durable: 'control-plane', ackWaitMs: 5_000 },
  );
  await bus!.publishTask('p', task('before'), 'before');
  await bus!.publishEvent(heartbeat(1), 'e1');
  await until(() => tasks.length === 1 && events.length === 1, 'the first task and event');

  // Killed, its store removed while it is down, started again empty.
  const restarted = nats!.restart('SIGKILL', 1_000);
  while (!(await refused(nats!.port))) await new Promise((r) => setTimeout(r, 20));
  await rm(path.join(nats!.storeDir, 'jetstream'), { recursive: true, force: true });
  await restarted;

  // The client reconnects on its own; a publish sent before it has may fail as the connection's, and is sent again.
  const publishAgain = async (send: () => Promise<void>) => {
    for (let i = 0; ; i++) {
      try {
        return await send();
      } catch (error) {
        if (i > 50) throw error;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  };
  await publishAgain(() => bus!.publishTask('p', task('after'), 'after'));
  await publishAgain(() => bus!.publishEvent(heartbeat(2), 'e2'));
  await until(() => tasks.includes('after') && events.includes(2), 'the task and event published after the restart');
  expect(tasks).toEqual(['before', 'after']);
  expect(events).toEqual([1, 2]);
}, 60_000);
