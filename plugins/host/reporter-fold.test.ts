// The reporter's fold on the host's timer lanes (ReporterClock.lanes): every attempt's wait for the events after its
// first is a link on one host timer, not a timer of its own, and still sends what waits once the fold's time is up.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { ExecutorEvent, TaskMessage } from '../protocol';
import { createReporter, FOLD_MS, type ReporterClock } from './reporter';
import { TimerLanes } from './timer-lanes';

function attempts(count: number) {
  const messages: ExecutorEvent[][] = [];
  const clock: ReporterClock = {
    now: () => Date.now(),
    schedule(fn, ms) {
      const timer = setTimeout(fn, ms);
      return () => clearTimeout(timer);
    },
    lanes: new TimerLanes(),
  };
  const reporters = Array.from({ length: count }, (_, i) =>
    createReporter({
      bus: {
        publishEvent: async (event) => void messages.push([event]),
        publishEvents: async (events) => void messages.push(events),
      },
      task: { taskId: `t${i}`, runId: 'r', attempt: 1, protocol: 2 } as TaskMessage,
      host: 'h',
      redeliveryCount: 0,
      logBatch: { bytes: 1_000, ms: 250 },
      maxLogBytes: 1_000_000,
      warn: () => undefined,
      clock,
    }),
  );
  return { reporters, messages };
}

describe('attempt reporter’s fold on the host’s timer lanes', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date', 'performance'] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('waits for many attempts’ folds on one timer, and sends each attempt’s events once its fold is up', async () => {
    const { reporters, messages } = attempts(50);
    for (const reporter of reporters) reporter.started({ pid: 1 });
    for (const reporter of reporters) reporter.progress(1, 'done');
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(FOLD_MS - 1);
    expect(messages).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(messages.map((m) => m.map((e) => `${e.taskId}:${e.kind}`))).toEqual(reporters.map((_, i) => [`t${i}:started`, `t${i}:progress`]));
  });

  it('sends what waits with the result, and nothing more when the fold would have been up', async () => {
    const { reporters, messages } = attempts(2);
    const [first, second] = reporters as [(typeof reporters)[0], (typeof reporters)[0]];
    first.started({ pid: 1 });
    second.started({ pid: 2 });
    first.close();
    expect(await first.publishResult({ state: 'SUCCEEDED' }, 1, () => false)).toBe(true);
    expect(messages.map((m) => m.map((e) => `${e.taskId}:${e.kind}`))).toEqual([['t0:started', 't0:result']]);
    await vi.advanceTimersByTimeAsync(FOLD_MS);
    expect(messages.map((m) => m.map((e) => `${e.taskId}:${e.kind}`))).toEqual([['t0:started', 't0:result'], ['t1:started']]);
    expect(vi.getTimerCount()).toBe(0);
  });
});
