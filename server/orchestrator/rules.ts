// Pure decisions of the orchestrator: when a task may run given its upstreams (trigger rules), a new run's initial
// task statuses, whether and when a failed attempt is retried, and what a run's final status is.
import { type AnyColumn, type SQL, sql } from 'drizzle-orm';
import type { TaskOutcome } from '../../plugins/protocol';
import { type TaskStatus, type TriggerRule, terminalTaskStatuses } from '../vocabulary';

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

/**
 * readinessFromCounts' `ready`, as a SQL condition over the given counts (so the update that counts an upstream's
 * end can also make its downstream READY). test/wire/edge-readiness.test.ts checks both agree on every count.
 */
export function readyWhen(c: { rule: SQL | AnyColumn; total: SQL; done: SQL; succeeded: SQL; failed: SQL }): SQL {
  return sql`((${c.rule} = 'all_succeeded' and ${c.succeeded} = ${c.total}) or (${c.rule} = 'all_done' and ${c.done} = ${c.total}) or (${c.rule} = 'any_failed' and ${c.failed} > 0))`;
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

export function decideRetry(outcome: TaskOutcome, task: { attempt: number; maxAttempts: number; systemFailures: number; retryDelayMs: number }): RetryDecision {
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

/** How an attempt ended: the task's new status, and when it is RETRYING, when it becomes READY again and why. */
export interface AttemptEnd {
  retry: RetryDecision;
  status: TaskStatus;
  retryAt: Date | null;
  message: string | null;
}

export function endAttempt(
  task: { attempt: number; maxAttempts: number; systemFailures: number; retryDelayMs: number },
  outcome: TaskOutcome,
  at: Date,
): AttemptEnd {
  const retry = decideRetry(outcome, task);
  const status: TaskStatus = retry.retry ? 'RETRYING' : outcome.state;
  const retryAt = retry.retry ? new Date(at.getTime() + retry.delayMs) : null;
  const message = retry.retry
    ? `attempt ${task.attempt} ${outcome.state.toLowerCase().replace('_', ' ')}${outcome.message ? `: ${outcome.message}` : ''}; retrying in ${Math.round(retry.delayMs / 100) / 10} s${retry.system ? ' (platform failure: not counted against the task’s retries)' : ''}`
    : (outcome.message ?? null);
  return { retry, status, retryAt, message };
}

/** Initial statuses of a new run's tasks, deciding in topological order what is READY, SKIPPED or reused. */
export function initialStatuses(
  planned: { node: string; dependsOn: string[]; triggerRule: TriggerRule }[],
  reuse?: { has(node: string): boolean },
): Map<string, TaskStatus> {
  const status = new Map<string, TaskStatus>();
  const byNode = new Map(planned.map((p) => [p.node, p]));
  const remaining = new Map(planned.map((p) => [p.node, p.dependsOn.length]));
  const downstream = new Map<string, string[]>();
  for (const p of planned) for (const d of p.dependsOn) pushTo(downstream, d, p.node);
  const order = planned.filter((p) => p.dependsOn.length === 0).map((p) => p.node);
  for (let i = 0; i < order.length; i++) {
    const node = order[i]!;
    const p = byNode.get(node)!;
    if (reuse?.has(node)) status.set(node, 'SUCCEEDED');
    else {
      const decision = readiness(
        p.triggerRule,
        p.dependsOn.map((d) => status.get(d)!),
      );
      // Upstreams that will execute leave the task PENDING; readiness is then decided as they finish.
      const undecided = p.dependsOn.some((d) => !isTerminal(status.get(d)!));
      status.set(node, undecided ? 'PENDING' : decision === 'ready' ? 'READY' : decision === 'skip' ? 'SKIPPED' : 'PENDING');
    }
    for (const next of downstream.get(node) ?? []) {
      remaining.set(next, remaining.get(next)! - 1);
      if (remaining.get(next) === 0) order.push(next);
    }
  }
  return status;
}

/** A new task's upstream counters (see `readinessFromCounts`) from its upstreams' initial statuses. */
export function upstreamCounts(
  dependsOn: string[],
  statuses: Map<string, TaskStatus>,
): { upstreamDone: number; upstreamSucceeded: number; upstreamFailed: number } {
  let done = 0;
  let succeeded = 0;
  let failed = 0;
  for (const d of dependsOn) {
    const st = statuses.get(d)!;
    if (!isTerminal(st)) continue;
    done++;
    if (st === 'SUCCEEDED') succeeded++;
    else if (st === 'FAILED' || st === 'TIMED_OUT') failed++;
  }
  return { upstreamDone: done, upstreamSucceeded: succeeded, upstreamFailed: failed };
}

export function pushTo<K, V>(map: Map<K, V[]>, key: K, value: V) {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}
