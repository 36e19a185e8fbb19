// Pure decisions of the orchestrator: when a task may run given its upstreams (trigger rules), whether and when a
// failed attempt is retried, and what a run's final status is.
import type { TaskOutcome } from '../../plugins/protocol';
import { terminalTaskStatuses, type TaskStatus, type TriggerRule } from '../db/tables/runs';

export const isTerminal = (s: TaskStatus) => terminalTaskStatuses.includes(s);
const failed = (s: TaskStatus) => s === 'FAILED' || s === 'TIMED_OUT';

/** `ready`: may run now; `skip`: can never run in this run; `wait`: an upstream has not decided yet. */
export type Readiness = 'ready' | 'skip' | 'wait';

export function readiness(rule: TriggerRule, upstream: TaskStatus[]): Readiness {
  const done = upstream.every(isTerminal);
  switch (rule) {
    case 'all_succeeded':
      if (upstream.every((s) => s === 'SUCCEEDED')) return 'ready';
      return upstream.some((s) => isTerminal(s) && s !== 'SUCCEEDED') ? 'skip' : 'wait';
    case 'all_done':
      return done ? 'ready' : 'wait';
    case 'any_failed':
      if (upstream.some(failed)) return 'ready';
      return done ? 'skip' : 'wait';
  }
}

/** The same decision from counts of upstreams (how many there are, have ended, succeeded, failed). */
export function readinessFromCounts(rule: TriggerRule, c: { total: number; done: number; succeeded: number; failed: number }): Readiness {
  switch (rule) {
    case 'all_succeeded':
      if (c.succeeded === c.total) return 'ready';
      return c.done > c.succeeded ? 'skip' : 'wait';
    case 'all_done':
      return c.done === c.total ? 'ready' : 'wait';
    case 'any_failed':
      if (c.failed > 0) return 'ready';
      return c.done === c.total ? 'skip' : 'wait';
  }
}

export const MAX_RETRY_DELAY_MS = 10 * 60_000;
/** Attempts lost to the platform are retried this many times on top of the task's own retries. */
export const MAX_SYSTEM_RETRIES = 3;

export interface RetryDecision {
  retry: boolean;
  /** Counts as a platform failure (does not use the task's own retries). */
  system: boolean;
  delayMs: number;
}

/** Exponential backoff: base, 2×base, 4×base… capped. */
export function retryDelay(baseMs: number, attempt: number): number {
  return Math.min(MAX_RETRY_DELAY_MS, baseMs * 2 ** Math.max(0, attempt - 1));
}

export function decideRetry(
  outcome: TaskOutcome,
  task: { attempt: number; maxAttempts: number; systemFailures: number; retryDelayMs: number },
): RetryDecision {
  const no = { retry: false, system: false, delayMs: 0 };
  if (outcome.state === 'SUCCEEDED' || outcome.state === 'CANCELLED' || outcome.retryable === false) return no;
  if (outcome.systemFailure && task.systemFailures < MAX_SYSTEM_RETRIES) {
    return { retry: true, system: true, delayMs: retryDelay(Math.min(task.retryDelayMs, 1000), task.systemFailures + 1) };
  }
  if (task.attempt < task.maxAttempts) return { retry: true, system: false, delayMs: retryDelay(task.retryDelayMs, task.attempt) };
  return no;
}

/** A run ends FAILED when any of its tasks failed or timed out, SUCCEEDED otherwise. */
export function finalRunStatus(statuses: TaskStatus[]): 'SUCCEEDED' | 'FAILED' {
  return statuses.some(failed) ? 'FAILED' : 'SUCCEEDED';
}
