// A transaction's task-status events carry its time as text, formatted once: a wide run's recording makes two or three
// a task, and `toISOString` was ~0.4 µs a call (session 33's S1 profile).
import { afterEach, describe, expect, it, vi } from 'vitest';
import { type Step, taskStatusEvent } from './context';

afterEach(() => vi.restoreAllMocks());

describe('taskStatusEvent', () => {
  it('formats the step time once for all of its events', () => {
    const at = new Date('2026-12-07T21:00:00.123Z');
    const step = { at, feed: [] } as unknown as Step;
    const formatted = vi.spyOn(Date.prototype, 'toISOString');
    for (const [i, status] of (['QUEUED', 'RUNNING', 'SUCCEEDED'] as const).entries())
      taskStatusEvent(step, { id: `t${i}`, runId: 'r', node: `n${i}`, attempt: 1 }, status);
    expect(formatted).toHaveBeenCalledTimes(1);
    expect(step.feed.map((e) => e.at)).toEqual(Array(3).fill('2026-12-07T21:00:00.123Z'));
  });
});
