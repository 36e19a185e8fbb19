// The executor host on the memory bus with the noop executor and small scripted executors: routing, results,
// acks, cancels, timeouts, coalescing, concurrency, and shutdown without ack.
import { readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createNoopExecutor } from '../../executors/noop/index';
import { createExecutorRegistry } from '../../plugins/registry';
import { defineExecutor, type Executor } from '../../plugins/sdk';
import { createHostWorld, createScratch, type HostWorld, makeTask, waitFor } from './host-harness';

let scratch: ReturnType<typeof createScratch>;
let world: HostWorld;

beforeEach(async () => {
  scratch = createScratch();
  world = await createHostWorld(path.join(scratch.root, 'work'));
});
afterEach(async () => {
  await world.close();
  scratch.remove();
});

describe('executor registry', () => {
  it('finds executors by name and lists them', () => {
    const registry = createExecutorRegistry([createNoopExecutor()]);
    expect(registry.names()).toEqual(['noop']);
    expect(registry.get('noop').name).toBe('noop');
    expect(() => registry.get('spark')).toThrow('unknown executor "spark" (known executors: "noop")');
  });

  it('rejects duplicate and empty names at start-up', () => {
    expect(() => createExecutorRegistry([createNoopExecutor(), createNoopExecutor()])).toThrow(/"noop" is used twice/);
    expect(() => createExecutorRegistry([{ ...createNoopExecutor(), name: ' ' }])).toThrow(/no name/);
  });
});

describe('executor host', () => {
  it('runs a noop task: progress, echo output, SUCCEEDED, then ack', async () => {
    await world.startHost([createNoopExecutor()]);
    const task = await world.submit(makeTask({ executor: 'noop', parameters: { a: 1 } }));
    const result = await world.result(task.taskId);
    expect(result.outcome).toEqual({ state: 'SUCCEEDED', outputs: { echo: { a: 1 } } });
    const kinds = world.eventsOf(task.taskId).map((e) => `${e.seq}:${e.kind}`);
    expect(kinds).toEqual(['0:started', '1:progress', '2:result']);
    expect(result).toMatchObject({ host: 'test-host', runId: task.runId, attempt: 1, at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) });
    const resultAt = world.timeline.indexOf(`event:result:${task.taskId}`);
    expect(resultAt).toBeGreaterThanOrEqual(0);
    expect(resultAt).toBeLessThan(world.timeline.indexOf(`ack:${task.taskId}`));
  });

  it('reports asked-to-fail as FAILED', async () => {
    await world.startHost([createNoopExecutor()]);
    const task = await world.submit(makeTask({ executor: 'noop', parameters: { fail: true } }));
    expect((await world.result(task.taskId)).outcome).toMatchObject({ state: 'FAILED', message: 'asked to fail' });
  });

  it('fails a task for an unknown executor, permanently, and acks it', async () => {
    await world.startHost([createNoopExecutor()]);
    const task = await world.submit(makeTask({ executor: 'spark' }));
    const { outcome } = await world.result(task.taskId);
    expect(outcome).toMatchObject({ state: 'FAILED', reason: 'unknown-executor', retryable: false });
    expect(outcome.message).toContain('"spark"');
    expect(outcome.message).toContain('"noop"');
  });

  it('turns a throw from submit into a retryable system failure naming the executor', async () => {
    const broken = defineExecutor({
      name: 'broken',
      submit: async () => {
        throw new Error('cluster unreachable');
      },
      wait: async () => ({ state: 'SUCCEEDED' as const }),
      cancel: async () => undefined,
      finalize: async () => {
        throw new Error('cleanup exploded');
      },
    });
    await world.startHost([broken]);
    const task = await world.submit(makeTask({ executor: 'broken' }));
    const { outcome } = await world.result(task.taskId);
    expect(outcome).toMatchObject({ state: 'FAILED', retryable: true, systemFailure: true, message: 'broken: submit failed: cluster unreachable' });
    // finalize's failure is reported as a log event, after the result
    await waitFor(() => world.logLines(task.taskId, 'stderr').some((l) => l.includes('broken: finalize failed: cleanup exploded')), 'the finalize log');
  });

  it('cancels on request, calling the executor and ending CANCELLED', async () => {
    const calls: string[] = [];
    const noop = createNoopExecutor();
    const watched: Executor = { ...noop, cancel: async (_handle, _task, reason) => void calls.push(reason) };
    await world.startHost([watched]);
    const task = await world.submit(makeTask({ executor: 'noop', parameters: { sleepMs: 10_000 } }));
    await waitFor(() => world.eventsOf(task.taskId).some((e) => e.kind === 'started'), 'started');
    await world.bus.publishCancel({ taskId: 'someone-else', attempt: 1, reason: 'not this one' });
    await world.bus.publishCancel({ taskId: task.taskId, attempt: 1, reason: 'by alice' });
    const { outcome } = await world.result(task.taskId);
    expect(outcome).toMatchObject({ state: 'CANCELLED', reason: 'cancelled', message: 'cancelled: by alice' });
    expect(calls).toEqual(['cancelled']);
  });

  it('ends CANCELLED when the cancel came while submit was in flight, though nothing made the signal (noop reads ctx.aborted)', async () => {
    const noop = createNoopExecutor();
    let submitting: () => void = () => undefined;
    const entered = new Promise<void>((resolve) => (submitting = resolve));
    const held: Executor = {
      ...noop,
      submit: async (task, ctx) => {
        submitting();
        await waitFor(() => ctx.aborted, 'the cancel, while submit is in flight');
        return noop.submit(task, ctx);
      },
    };
    await world.startHost([held]);
    const task = await world.submit(makeTask({ executor: 'noop' }));
    await entered;
    await world.bus.publishCancel({ taskId: task.taskId, attempt: 1, reason: 'by bob' });
    const { outcome } = await world.result(task.taskId);
    expect(outcome).toMatchObject({ state: 'CANCELLED', reason: 'cancelled', message: 'cancelled: by bob' });
  });

  it('times out an attempt as TIMED_OUT', async () => {
    await world.startHost([createNoopExecutor()]);
    const task = await world.submit(makeTask({ executor: 'noop', parameters: { sleepMs: 10_000 }, timeoutMs: 150 }));
    const { outcome } = await world.result(task.taskId);
    expect(outcome).toMatchObject({ state: 'TIMED_OUT', reason: 'timeout', message: expect.stringContaining('time limit of 150 ms') });
  });

  it('coalesces progress to about ten events a second, keeping the latest', async () => {
    let reportingMs = 0;
    const chatty = defineExecutor({
      name: 'chatty',
      submit: async () => 'h',
      wait: async (_h, _t, ctx) => {
        const from = Date.now();
        for (let i = 1; i <= 1000; i++) {
          ctx.progress(i / 1000, `step ${i}`);
          if (i % 100 === 0) await new Promise((r) => setTimeout(r, 20));
        }
        reportingMs = Date.now() - from;
        return { state: 'SUCCEEDED' as const };
      },
      cancel: async () => undefined,
    });
    await world.startHost([chatty]);
    const task = await world.submit(makeTask({ executor: 'chatty' }));
    await world.result(task.taskId);
    const progress = world.eventsOf(task.taskId).filter((e) => e.kind === 'progress');
    // The first at once, then at most one each 100 ms, and the one left waiting: ~10 a second over however long the
    // sleeps took (a fixed 6 held only while they took their 200 ms; a loaded machine stretches them).
    expect(progress.length).toBeLessThanOrEqual(2 + Math.floor(reportingMs / 100));
    expect(progress.at(-1)).toMatchObject({ fraction: 1, message: 'step 1000' });
  });

  it('takes no more than maxConcurrency tasks at once', async () => {
    let running = 0;
    let peak = 0;
    const counting = defineExecutor({
      name: 'counting',
      submit: async () => {
        peak = Math.max(peak, ++running);
        return null;
      },
      wait: async () => {
        await new Promise((r) => setTimeout(r, 50));
        running--;
        return { state: 'SUCCEEDED' as const };
      },
      cancel: async () => undefined,
    });
    await world.startHost([counting], { maxConcurrency: 2 });
    const tasks = await Promise.all(Array.from({ length: 6 }, () => world.submit(makeTask({ executor: 'counting' }))));
    for (const task of tasks) await world.result(task.taskId);
    expect(peak).toBe(2);
  });

  it('stop() leaves running attempts unacked, publishes no result, and they are redelivered', async () => {
    const hostA = await world.startHost([createNoopExecutor({ delayMs: 10_000 })], { hostName: 'host-a' });
    const task = await world.submit(makeTask({ executor: 'noop' }));
    await waitFor(() => world.eventsOf(task.taskId).some((e) => e.kind === 'started'), 'started');
    expect(hostA.running()).toBe(1);
    await hostA.stop();
    expect(hostA.running()).toBe(0);
    expect(world.resultOf(task.taskId)).toBeUndefined();
    expect(world.timeline).not.toContain(`ack:${task.taskId}`);

    await world.startHost([createNoopExecutor()], { hostName: 'host-b' });
    const result = await world.result(task.taskId);
    expect(result).toMatchObject({ host: 'host-b', outcome: { state: 'SUCCEEDED' } });
  });

  it('numbers the events of a redelivery in a fresh block, so none collides with an earlier delivery', async () => {
    const task = await world.submit(makeTask({ executor: 'noop' }));
    // An earlier consumer takes the task and gives it back, as a crashed or stopped host would.
    let gaveBack!: () => void;
    const given = new Promise<void>((resolve) => (gaveBack = resolve));
    const earlier = await world.bus.consumeTasks(
      'default',
      async (d) => {
        d.nak(50);
        gaveBack();
      },
      { durable: 'pool-default' },
    );
    await given;
    await earlier.stop();
    await world.startHost([createNoopExecutor()]);
    const result = await world.result(task.taskId);
    expect(result.outcome.state).toBe('SUCCEEDED');
    expect(world.eventsOf(task.taskId).map((e) => e.seq)).toEqual([2 ** 32, 2 ** 32 + 1, 2 ** 32 + 2]);
  });

  it('heartbeats at ack-wait/3 when that is shorter than heartbeatMs', async () => {
    // The attempt lasts until three heartbeats have arrived (at a minute apart, none would in waitFor's 10 s), not a
    // fixed 400 ms: on a loaded machine the interval's timer fired only twice in that time.
    const heartbeats = (taskId: string) => world.eventsOf(taskId).filter((e) => e.kind === 'heartbeat').length;
    const patient = defineExecutor({
      name: 'patient',
      submit: async () => null,
      wait: async (_handle, task) => {
        await waitFor(() => heartbeats(task.taskId) >= 3, 'three heartbeats');
        return { state: 'SUCCEEDED' as const };
      },
      cancel: async () => undefined,
    });
    await world.startHost([patient], { heartbeatMs: 60_000, ackWaitMs: 300 });
    const task = await world.submit(makeTask({ executor: 'patient' }));
    expect((await world.result(task.taskId)).outcome).toEqual({ state: 'SUCCEEDED' });
    expect(world.timeline.filter((t) => t === `working:${task.taskId}`).length).toBeGreaterThanOrEqual(3);
  });

  it('gives two hosts on one work root their own folder for one attempt that both run (a message delivered twice)', async () => {
    let arrived = 0;
    const seen = new Map<string, string[]>();
    const lookAround = defineExecutor<string>({
      name: 'look-around',
      async submit(_task, ctx) {
        await writeFile(path.join(ctx.workdir, `${ctx.host}.txt`), ctx.host);
        arrived++;
        return ctx.host;
      },
      async wait(host, _task, ctx) {
        // Both executions have made and filled their folders before either looks in its own.
        await waitFor(() => arrived === 2, 'both executions to start');
        seen.set(host, await readdir(ctx.workdir));
        return { state: 'SUCCEEDED' };
      },
      async cancel() {},
    });
    await world.startHost([lookAround], { hostName: 'host-a', maxConcurrency: 1 });
    await world.startHost([lookAround], { hostName: 'host-b', maxConcurrency: 1 });
    const task = makeTask({ executor: 'look-around' });
    await world.bus.publishTask(task.pool, task, 'first delivery');
    await world.bus.publishTask(task.pool, task, 'second delivery');
    await waitFor(() => seen.size === 2, 'both executions to look');
    expect(Object.fromEntries(seen)).toEqual({ 'host-a': ['host-a.txt'], 'host-b': ['host-b.txt'] });
  });
});
