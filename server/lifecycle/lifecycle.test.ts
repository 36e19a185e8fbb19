import { describe, expect, it, vi } from 'vitest';
import { createLifecycle, periodic, type Service } from '.';

function recorder() {
  const calls: string[] = [];
  const service = (name: string, fail?: { start?: boolean; stop?: boolean }): Service => ({
    name,
    async start() {
      calls.push(`start ${name}`);
      if (fail?.start) throw new Error(`${name} would not start`);
    },
    async stop() {
      calls.push(`stop ${name}`);
      if (fail?.stop) throw new Error(`${name} would not stop`);
    },
  });
  return { calls, service };
}

describe('createLifecycle', () => {
  it('starts in order and stops in reverse', async () => {
    const { calls, service } = recorder();
    const lifecycle = createLifecycle([service('db'), service('bus'), service('http')]);
    await lifecycle.start();
    await lifecycle.stop();
    expect(calls).toEqual(['start db', 'start bus', 'start http', 'stop http', 'stop bus', 'stop db']);
  });

  it('stops what already started when a start fails, and throws that start error', async () => {
    const { calls, service } = recorder();
    const lifecycle = createLifecycle([service('db'), service('bus'), service('http', { start: true }), service('never')]);
    await expect(lifecycle.start()).rejects.toThrow('http would not start');
    expect(calls).toEqual(['start db', 'start bus', 'start http', 'stop bus', 'stop db']);
    await lifecycle.stop(); // nothing left to stop
    expect(calls).toHaveLength(5);
  });

  it('stop is idempotent, also when called twice at once', async () => {
    const { calls, service } = recorder();
    const lifecycle = createLifecycle([service('a'), service('b')]);
    await lifecycle.start();
    await Promise.all([lifecycle.stop(), lifecycle.stop()]);
    await lifecycle.stop();
    expect(calls).toEqual(['start a', 'start b', 'stop b', 'stop a']);
  });

  it('stops nothing that never started', async () => {
    const { calls, service } = recorder();
    await createLifecycle([service('a')]).stop();
    expect(calls).toEqual([]);
  });

  it('stops every service even when one fails to stop, then throws the first failure', async () => {
    const { calls, service } = recorder();
    const lifecycle = createLifecycle([service('a'), service('b', { stop: true }), service('c', { stop: true })]);
    await lifecycle.start();
    await expect(lifecycle.stop()).rejects.toThrow('c would not stop');
    expect(calls.slice(3)).toEqual(['stop c', 'stop b', 'stop a']);
  });
});

describe('periodic', () => {
  it('never overlaps a slow pass, reports errors and goes on, and waits for a pass in progress on stop', async () => {
    vi.useFakeTimers();
    try {
      let release: () => void = () => {};
      let passes = 0;
      const errors: string[] = [];
      const service = periodic(
        'tick',
        10,
        async () => {
          passes++;
          if (passes === 1) throw new Error('first pass fails');
          await new Promise<void>((resolve) => (release = resolve));
        },
        (message) => errors.push(message),
      );
      await service.start();
      await vi.advanceTimersByTimeAsync(10);
      expect(passes).toBe(1);
      expect(errors).toEqual(['tick: first pass fails (will retry)']);
      await vi.advanceTimersByTimeAsync(10); // second pass starts and hangs
      await vi.advanceTimersByTimeAsync(50); // no overlap while it hangs
      expect(passes).toBe(2);
      let stopped = false;
      const stopping = Promise.resolve(service.stop()).then(() => (stopped = true));
      await vi.advanceTimersByTimeAsync(0);
      expect(stopped).toBe(false);
      release();
      await stopping;
      await vi.advanceTimersByTimeAsync(100);
      expect(passes).toBe(2);
    } finally {
      vi.useRealTimers();
    }
  });
});
