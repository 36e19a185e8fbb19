import { describe, expect, it } from 'vitest';
import { createMemoryBus } from '../../plugins/bus/memory';
import type { ExecutorEvent, TaskMessage } from '../../plugins/protocol';
import { busContract } from './contract';

busContract('memory', async () => createMemoryBus());

describe('memory bus', () => {
  // A guard against accidental quadratic behaviour, not a benchmark (npm run bench measures): quadratic work over
  // 20,000 messages runs into the test's timeout, and the time taken is printed rather than asserted, since the
  // suite shares two cores with real servers and other test files.
  it('moves 20,000 tasks and events without slowing down per message', async () => {
    const bus = createMemoryBus();
    const count = 20_000;
    const task = { taskId: 't', runId: 'r', attempt: 1, pool: 'p' } as TaskMessage;
    const started = performance.now();

    let tasksDone = 0;
    await bus.consumeTasks(
      'p',
      async (d) => {
        await d.ack();
        tasksDone++;
      },
      { durable: 'pool-p', maxInFlight: 64 },
    );
    let eventsDone = 0;
    let batches = 0;
    await bus.consumeEvents(
      async (deliveries) => {
        batches++;
        for (const d of deliveries) await d.ack();
        eventsDone += deliveries.length;
      },
      { durable: 'recorder', maxBatch: 500 },
    );

    await Promise.all(Array.from({ length: count }, (_, i) => bus.publishTask('p', task, `t${i}`)));
    const event = { kind: 'heartbeat', taskId: 't', runId: 'r', attempt: 1, at: '', host: 'h' } as const;
    await Promise.all(Array.from({ length: count }, (_, seq) => bus.publishEvent({ ...event, seq } as ExecutorEvent, `e${seq}`)));
    while (tasksDone < count || eventsDone < count) await new Promise((resolve) => setTimeout(resolve, 5));
    const elapsedMs = performance.now() - started;

    console.log(`memory bus: ${count} tasks and ${count} events through batched consumers in ${elapsedMs.toFixed(0)} ms`); // speed lives in npm run bench
    expect(batches).toBeLessThan(count / 10);
    await bus.close();
  });

  it('refuses to publish once closed', async () => {
    const bus = createMemoryBus();
    await bus.close();
    await expect(bus.publishTask('p', {} as TaskMessage, 'x')).rejects.toThrow(/closed/);
  });
});
