import { describe, expect, it } from 'vitest';
import type { TaskOutcome } from '../../plugins/protocol';
import type { TaskStatus, TriggerRule } from '../vocabulary';
import {
  decideRetry,
  endAttempt,
  finalRunStatus,
  initialStatuses,
  MAX_RETRY_DELAY_MS,
  MAX_SYSTEM_RETRIES,
  readiness,
  readinessFromCounts,
  retryDelay,
  upstreamCounts,
} from './rules';

const at = new Date('2025-06-01T12:00:00Z');
const task = (over: Partial<{ attempt: number; maxAttempts: number; systemFailures: number; retryDelayMs: number }> = {}) => ({
  attempt: 1,
  maxAttempts: 3,
  systemFailures: 0,
  retryDelayMs: 2000,
  ...over,
});
const failed: TaskOutcome = { state: 'FAILED', message: 'exit 1' };

describe('retries', () => {
  it('backs off exponentially from the base, capped', () => {
    expect([1, 2, 3, 4].map((a) => retryDelay(1000, a))).toEqual([1000, 2000, 4000, 8000]);
    expect(retryDelay(1000, 0)).toBe(1000);
    expect(retryDelay(60_000, 20)).toBe(MAX_RETRY_DELAY_MS);
  });

  it('retries a failure while attempts are left, and not once they are exhausted', () => {
    expect(decideRetry(failed, task({ attempt: 2, maxAttempts: 3 }))).toEqual({ retry: true, system: false, delayMs: 4000 });
    expect(decideRetry(failed, task({ attempt: 3, maxAttempts: 3 })).retry).toBe(false);
    expect(decideRetry({ state: 'TIMED_OUT' }, task({ attempt: 1, maxAttempts: 1 })).retry).toBe(false);
  });

  it('never retries success, cancellation or a failure marked not retryable', () => {
    for (const outcome of [{ state: 'SUCCEEDED' }, { state: 'CANCELLED' }, { state: 'FAILED', retryable: false }] as TaskOutcome[]) {
      expect(decideRetry(outcome, task()).retry).toBe(false);
    }
  });

  it('retries a platform failure without using the task’s retries, quickly, up to the system limit', () => {
    const lost: TaskOutcome = { state: 'FAILED', systemFailure: true, retryable: true };
    expect(decideRetry(lost, task({ attempt: 1, maxAttempts: 1, retryDelayMs: 30_000 }))).toEqual({ retry: true, system: true, delayMs: 1000 });
    expect(decideRetry(lost, task({ attempt: 1, maxAttempts: 1, systemFailures: 1 })).delayMs).toBe(2000);
    // once the platform's budget is spent, it counts as an ordinary failure
    expect(decideRetry(lost, task({ attempt: 1, maxAttempts: 1, systemFailures: MAX_SYSTEM_RETRIES })).retry).toBe(false);
    expect(decideRetry(lost, task({ attempt: 1, maxAttempts: 2, systemFailures: MAX_SYSTEM_RETRIES }))).toEqual({ retry: true, system: false, delayMs: 2000 });
  });
});

describe('how an attempt ends', () => {
  it('a retried failure is RETRYING until its backoff is over, saying so', () => {
    const end = endAttempt(task({ attempt: 1, retryDelayMs: 1500 }), { state: 'TIMED_OUT', message: 'too slow' }, at);
    expect(end.status).toBe('RETRYING');
    expect(end.retryAt).toEqual(new Date(at.getTime() + 1500));
    expect(end.message).toBe('attempt 1 timed out: too slow; retrying in 1.5 s');
  });

  it('a platform failure says it does not count against the task’s retries', () => {
    const end = endAttempt(task({ attempt: 2 }), { state: 'FAILED', systemFailure: true }, at);
    expect(end.retry.system).toBe(true);
    expect(end.message).toBe('attempt 2 failed; retrying in 1 s (platform failure: not counted against the task’s retries)');
  });

  it('a final outcome keeps its own state and message, with no retry time', () => {
    expect(endAttempt(task({ attempt: 3, maxAttempts: 3 }), failed, at)).toEqual({
      retry: { retry: false, system: false, delayMs: 0 },
      status: 'FAILED',
      retryAt: null,
      message: 'exit 1',
    });
    expect(endAttempt(task(), { state: 'SUCCEEDED' }, at)).toMatchObject({ status: 'SUCCEEDED', retryAt: null, message: null });
  });
});

describe('trigger rules', () => {
  const cases: [TriggerRule, TaskStatus[], string][] = [
    ['all_succeeded', ['SUCCEEDED', 'SUCCEEDED'], 'ready'],
    ['all_succeeded', ['SUCCEEDED', 'RUNNING'], 'wait'],
    ['all_succeeded', ['SKIPPED', 'RUNNING'], 'skip'],
    ['all_done', ['FAILED', 'CANCELLED'], 'ready'],
    ['all_done', ['FAILED', 'QUEUED'], 'wait'],
    ['any_failed', ['TIMED_OUT', 'RUNNING'], 'ready'],
    ['any_failed', ['SUCCEEDED', 'SKIPPED'], 'skip'],
    ['any_failed', ['SUCCEEDED', 'PENDING'], 'wait'],
  ];
  it.each(cases)('%s over %j is %s, from statuses and from counts alike', (rule, upstream, expected) => {
    expect(readiness(rule, upstream)).toBe(expected);
    const statuses = new Map(upstream.map((s, i) => [`u${i}`, s]));
    const c = upstreamCounts([...statuses.keys()], statuses);
    expect(readinessFromCounts(rule, { total: upstream.length, done: c.upstreamDone, succeeded: c.upstreamSucceeded, failed: c.upstreamFailed })).toBe(
      expected,
    );
  });

  it('a run fails when any task failed or timed out, whatever else was skipped or cancelled', () => {
    expect(finalRunStatus(['SUCCEEDED', 'SKIPPED', 'CANCELLED'])).toBe('SUCCEEDED');
    expect(finalRunStatus(['SUCCEEDED', 'TIMED_OUT'])).toBe('FAILED');
    expect(finalRunStatus([])).toBe('SUCCEEDED');
  });
});

describe('a new run’s initial statuses', () => {
  const node = (name: string, dependsOn: string[] = [], triggerRule: TriggerRule = 'all_succeeded') => ({ node: name, dependsOn, triggerRule });

  it('roots are READY and everything downstream of work still to do is PENDING', () => {
    const s = initialStatuses([node('c', ['a', 'b']), node('a'), node('b', ['a'])]);
    expect(Object.fromEntries(s)).toEqual({ a: 'READY', b: 'PENDING', c: 'PENDING' });
  });

  it('reused nodes count as SUCCEEDED, so what follows only them is READY at once', () => {
    const s = initialStatuses([node('a'), node('b', ['a']), node('c', ['b']), node('d', ['a'], 'any_failed')], new Set(['a', 'b']));
    expect(Object.fromEntries(s)).toEqual({ a: 'SUCCEEDED', b: 'SUCCEEDED', c: 'READY', d: 'SKIPPED' });
  });

  it('a join waits for every upstream, even when some are reused', () => {
    const s = initialStatuses([node('a'), node('b'), node('join', ['a', 'b'], 'all_done')], new Set(['a']));
    expect(s.get('join')).toBe('PENDING');
  });
});
