// An executor host's event messages against control planes of two protocol versions (on the in-process bus, which
// carries bundles as JetStream does): at 7 the attempts of one run that end together share a message; below 7 each
// attempt's events go in messages of their own, as before.
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createNoopExecutor } from '../../executors/noop/index';
import { createMemoryBus } from '../../plugins/bus/memory';
import type { Bus } from '../../plugins/bus/types';
import { createExecutorHost, type ExecutorHost } from '../../plugins/host/index';
import type { ExecutorEvent, TaskMessage } from '../../plugins/protocol';
import { createExecutorRegistry } from '../../plugins/registry';
import { createArtifacts, createScratch, makeTask, waitFor } from './host-harness';

let scratch: ReturnType<typeof createScratch>;
let bus: Bus;
let host: ExecutorHost | undefined;

beforeEach(() => {
  scratch = createScratch();
  bus = createMemoryBus();
});
afterEach(async () => {
  await host?.stop();
  host = undefined;
  await bus.close();
  scratch.remove();
});

/** Runs `count` no-op tasks of one run, dispatched together, claimed from a control plane at `protocol`. */
async function runBatch(protocol: number, count: number) {
  // Each bus message the host publishes, as the tasks whose events it carries.
  const messages: string[][] = [];
  const { publishEvent, publishEvents } = bus;
  bus.publishEvent = (event, msgId) => {
    messages.push([event.taskId]);
    return publishEvent(event, msgId);
  };
  bus.publishEvents = (events, msgId, payload) => {
    messages.push([...new Set(events.map((e) => e.taskId))]);
    return publishEvents!(events, msgId, payload);
  };
  await bus.serveClaims(async () => ({ verdict: 'run', protocol }));
  const events: ExecutorEvent[] = [];
  await bus.consumeEvents(
    async (deliveries) => {
      for (const d of deliveries) {
        events.push(d.data);
        await d.ack();
      }
    },
    { durable: 'collector' },
  );
  host = createExecutorHost({
    bus,
    registry: createExecutorRegistry([createNoopExecutor()]),
    pools: ['default'],
    hostName: 'test-host',
    artifacts: createArtifacts(),
    workRoot: path.join(scratch.root, 'work'),
    warn: () => undefined,
    verifyClaims: true,
  });
  await host.start();
  const publishBatch = (tasks: TaskMessage[]) => Promise.all(tasks.map((t) => bus.publishTask('default', t, `${t.taskId}:1`)));
  // A first task, alone, lets the host learn the control plane's protocol (claims in batches from 5 on).
  const first = makeTask({ executor: 'noop', runId: 'run-1' });
  await publishBatch([first]);
  await waitFor(() => events.some((e) => e.kind === 'result' && e.taskId === first.taskId), 'the first result');
  messages.length = 0;
  const tasks = Array.from({ length: count }, () => makeTask({ executor: 'noop', runId: 'run-1' }));
  await publishBatch(tasks);
  await waitFor(() => tasks.every((t) => events.some((e) => e.kind === 'result' && e.taskId === t.taskId)), 'every result');
  return { messages, tasks, events };
}

describe('executor host event messages', () => {
  it("sends the results of a run's attempts that end together as one message for a control plane at 7", async () => {
    const { messages, tasks, events } = await runBatch(7, 6);
    expect(Math.max(...messages.map((m) => m.length))).toBeGreaterThan(1);
    expect(messages.flat().sort()).toEqual(tasks.map((t) => t.taskId).sort());
    // Each task's events arrive whole and in order, whatever message carried them.
    for (const t of tasks) expect(events.filter((e) => e.taskId === t.taskId).map((e) => e.kind)).toEqual(['started', 'progress', 'result']);
  });

  it('sends each attempt its own messages for a control plane below 7, as before', async () => {
    const { messages, tasks } = await runBatch(6, 6);
    expect(messages.every((m) => m.length === 1)).toBe(true);
    expect(messages.flat().sort()).toEqual(tasks.map((t) => t.taskId).sort());
  });
});
