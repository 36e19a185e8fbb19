// The words of a run's life: run and task statuses, what started a run, what kind of node a task is, and when a
// task may run given its upstreams. Plain constants and types, importing nothing, so every layer may use them.

export const runStatuses = ['QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED'] as const;
export type RunStatus = (typeof runStatuses)[number];
export const terminalRunStatuses: readonly RunStatus[] = ['SUCCEEDED', 'FAILED', 'CANCELLED'];

export const triggers = ['API', 'CLI', 'DASHBOARD', 'SCHEDULE', 'CLONE', 'RERUN', 'PARENT', 'EXTERNAL', 'EVENT'] as const;
export type Trigger = (typeof triggers)[number];
/**
 * The triggers a caller may name when it starts a run (how it was started). The others are the platform's to set:
 * SCHEDULE (the scheduler), CLONE and RERUN (those mutations), PARENT (a nested run), EXTERNAL (a run logged from
 * outside a workflow, by a notebook or an MLflow client), EVENT (a trigger, on a signal: server/triggers/): a caller never
 * claims them.
 */
export const callerTriggers = ['API', 'CLI', 'DASHBOARD'] as const satisfies readonly Trigger[];
export type CallerTrigger = (typeof callerTriggers)[number];

export const taskStatuses = ['PENDING', 'READY', 'QUEUED', 'RUNNING', 'RETRYING', 'SUCCEEDED', 'FAILED', 'CANCELLED', 'TIMED_OUT', 'SKIPPED'] as const;
export type TaskStatus = (typeof taskStatuses)[number];
export const terminalTaskStatuses: readonly TaskStatus[] = ['SUCCEEDED', 'FAILED', 'CANCELLED', 'TIMED_OUT', 'SKIPPED'];

/** `external`: the one task of a run logged from outside a workflow, holding what it logged; never dispatched. */
export const taskKinds = ['module', 'workflow', 'map', 'external'] as const;
export type TaskKind = (typeof taskKinds)[number];

/** When a task may run, given its upstreams' outcomes. */
export const triggerRules = ['all_succeeded', 'all_done', 'any_failed'] as const;
export type TriggerRule = (typeof triggerRules)[number];
