// Concurrency decisions from counts the caller has read under its locks: which READY tasks a run's and the pools'
// limits let start now, and how many runs held back by a workflow's maxActiveRuns may be admitted.

/** The first tasks of `ready` that fit the run's maxParallelTasks, `active` of its tasks being queued or running. */
export function takeRunSlots<T>(ready: T[], maxParallelTasks: number, active: number): T[] {
  return ready.slice(0, Math.max(0, maxParallelTasks - active));
}

/** The pools among `ready` that have a limit, in the order their locks are taken (sorted, so replicas never deadlock). */
export function limitedPools(ready: { pool: string }[], poolLimits: Record<string, number> | undefined): string[] {
  return [...new Set(ready.map((t) => t.pool))].filter((p) => poolLimits?.[p] !== undefined).sort();
}

/** The tasks that fit `slotsLeft` (pool → limit minus active, negative when over); a pool not in it is unlimited. */
export function takePoolSlots<T extends { pool: string }>(ready: T[], slotsLeft: Map<string, number>): T[] {
  const budget = new Map(slotsLeft);
  return ready.filter((t) => {
    if (!budget.has(t.pool)) return true;
    const left = budget.get(t.pool)!;
    budget.set(t.pool, left - 1);
    return left > 0;
  });
}

/** Whether a new run of a workflow with `maxActiveRuns` starts admitted, `active` of its runs being admitted already. */
export const admitsNewRun = (maxActiveRuns: number, active: number) => active < maxActiveRuns;

/** How many of the runs held back may be admitted now; without a limit (any more), all of them. */
export const runsToAdmit = (maxActiveRuns: number | undefined, active: number) => Math.max(0, (maxActiveRuns ?? Infinity) - active);
