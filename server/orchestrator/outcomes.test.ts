import { describe, expect, it } from 'vitest';
import { cacheWaitMessage, deadlineOutcome, failureSummary, lostHostOutcome, mapOutcome, nestedRunOutcome, skipMessage } from './outcomes';

describe('outcomes the control plane decides', () => {
  it('a lost host is a retryable platform failure naming the host and the silence', () => {
    expect(lostHostOutcome('gpu-3', 60_000)).toEqual({
      state: 'FAILED',
      reason: 'lost',
      retryable: true,
      systemFailure: true,
      message: 'no heartbeat from host gpu-3 for 60 s: the host is presumed lost',
    });
    expect(lostHostOutcome(null, 1_499).message).toContain('host (unknown) for 1 s');
  });

  it('a deadline passed is TIMED_OUT under the task’s own retry policy', () => {
    const outcome = deadlineOutcome(90_000);
    expect(outcome).toEqual({ state: 'TIMED_OUT', reason: 'timeout', message: 'ran past its time limit of 90 s and its host did not stop it' });
    expect(outcome.retryable).toBeUndefined();
  });

  it('a map succeeds with its items’ outputs in order, or fails naming at most five items that did not', () => {
    expect(mapOutcome([])).toEqual({ state: 'SUCCEEDED', outputs: { results: [] } });
    expect(
      mapOutcome([
        { node: 'm[0]', status: 'SUCCEEDED', outputs: { y: 1 } },
        { node: 'm[1]', status: 'SUCCEEDED', outputs: null },
      ]),
    ).toEqual({ state: 'SUCCEEDED', outputs: { results: [{ y: 1 }, {}] } });
    const items = Array.from({ length: 8 }, (_, i) => ({ node: `m[${i}]`, status: i === 0 ? ('SUCCEEDED' as const) : ('FAILED' as const), outputs: null }));
    const failed = mapOutcome(items);
    expect(failed).toMatchObject({ state: 'FAILED', reason: 'map-items-failed', retryable: false });
    expect(failed.message).toBe('7 of 8 items did not succeed: m[1] failed, m[2] failed, m[3] failed, m[4] failed, m[5] failed');
  });

  it('a nested run’s end becomes its node’s outcome, a failed or timed-out run a failure', () => {
    expect(nestedRunOutcome('r2', 'SUCCEEDED', null, { a: { x: 1 } })).toEqual({
      state: 'SUCCEEDED',
      reason: 'nested-run',
      message: 'nested run r2 succeeded',
      outputs: { a: { x: 1 } },
    });
    expect(nestedRunOutcome('r2', 'CANCELLED', 'by ada', {})).toMatchObject({ state: 'CANCELLED', message: 'nested run r2 cancelled: by ada' });
    expect(nestedRunOutcome('r2', 'FAILED', 'fit failed', {}).state).toBe('FAILED');
  });
});

describe('texts a run or task is left with', () => {
  it('a failed run names its failed tasks and their statuses, never their messages (run data: the run’s message is public)', () => {
    const failed = [
      { node: 'fit', status: 'FAILED' as const, message: 'Traceback...\n  line 3\nValueError: password=hunter2' },
      { node: 'eval', status: 'TIMED_OUT' as const, message: null },
    ];
    expect(failureSummary(failed)).toBe('fit failed; eval timed out');
    expect(failureSummary([])).toBe('');
  });

  it('a skipped task says which rule can no longer be met and why', () => {
    expect(skipMessage({ triggerRule: 'all_succeeded', total: 3, done: 2, succeeded: 1, failed: 1 })).toBe(
      'skipped: its trigger rule all_succeeded can no longer be met (1 of 3 upstreams succeeded, 1 failed, 1 still open)',
    );
    expect(skipMessage({ triggerRule: 'all_succeeded', total: 2, done: 2, succeeded: 1, failed: 0 })).toBe(
      'skipped: its trigger rule all_succeeded can no longer be met (1 of 2 upstreams succeeded, 0 failed, 1 skipped or cancelled, 0 still open)',
    );
  });

  it('a task waiting for an identical one names it when it is known', () => {
    expect(cacheWaitMessage({ taskId: 't1', runId: 'r1' })).toBe('waiting for task t1 of run r1, which computes the same result, to serve it from cache');
    expect(cacheWaitMessage(undefined)).toBe('waiting for an identical task to finish, to serve its result from cache');
  });
});
