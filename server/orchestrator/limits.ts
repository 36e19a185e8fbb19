// Concurrency decisions from counts the caller has read under its locks: which READY tasks a run's and the pools'
// limits let start now, in which order a saturated pool's queue is served, and how many runs held back by a
// workflow's maxActiveRuns may be admitted.
import { sql } from 'drizzle-orm';
import { PRIORITY_AGING_SECONDS } from '../vocabulary';

/**
 * The order a saturated pool serves READY tasks in, over `tasks t join runs r`: by a virtual time, the moment the
 * task became READY moved earlier by PRIORITY_AGING_SECONDS per level of its run's priority. So higher priorities go
 * first, one priority is first come first served, and waiting ages a task: one queued at T with priority p goes
 * before any task queued after T + (q - p) × PRIORITY_AGING_SECONDS, whatever its priority q. Nothing starves.
 */
export const queueTime = sql`(t.queued_at - r.priority * ${sql.raw(`interval '${PRIORITY_AGING_SECONDS} seconds'`)})`;
export const poolQueueOrder = sql`${queueTime}, t.queued_at, t.node, t.id`;

/** The first tasks of `ready` that fit the run's maxParallelTasks, `active` of its tasks being queued or running. */
export function takeRunSlots<T>(ready: T[], maxParallelTasks: number, active: number): T[] {
  return ready.slice(0, Math.max(0, maxParallelTasks - active));
}

/** The pools among `ready` that have a limit, in the order their locks are taken (sorted, so replicas never deadlock). */
export function limitedPools(ready: { pool: string }[], poolLimits: Record<string, number> | undefined): string[] {
  return [...new Set(ready.map((t) => t.pool))].filter((p) => poolLimits?.[p] !== undefined).sort();
}

/**
 * The tasks that fit `slotsLeft` (pool → limit minus active, negative when over); a pool not in it is unlimited.
 * `ahead` (pool → ids at the head of its queue, as many as it has slots): a limited pool's slot goes only to those.
 */
export function takePoolSlots<T extends { id: string; pool: string }>(ready: T[], slotsLeft: Map<string, number>, ahead?: Map<string, Set<string>>): T[] {
  const budget = new Map(slotsLeft);
  return ready.filter((t) => {
    if (!budget.has(t.pool)) return true;
    if (ahead?.get(t.pool) && !ahead.get(t.pool)!.has(t.id)) return false;
    const left = budget.get(t.pool)!;
    budget.set(t.pool, left - 1);
    return left > 0;
  });
}

/** Whether a new run of a workflow with `maxActiveRuns` starts admitted, `active` of its runs being admitted already. */
export const admitsNewRun = (maxActiveRuns: number, active: number) => active < maxActiveRuns;

/** How many of the runs held back may be admitted now; without a limit (any more), all of them. */
export const runsToAdmit = (maxActiveRuns: number | undefined, active: number) => Math.max(0, (maxActiveRuns ?? Infinity) - active);
