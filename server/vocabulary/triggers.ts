// The words of triggers beyond cron: what a trigger listens for, the signals (events) sources record, and how each
// (trigger, signal) pair ended. Plain constants, importing nothing.

/** What a trigger listens for. */
export const triggerKinds = ['DATASET_VERSION', 'ALIAS_MOVED', 'RUN_SUCCEEDED', 'RUN_FAILED', 'ALERT_OPENED', 'HTTP'] as const;
export type TriggerKind = (typeof triggerKinds)[number];

/**
 * What sources record, in the transaction of the change that caused it (server/signals/): a new dataset version, an
 * alias moved (or rolled back), a top-level run of a workflow succeeding or failing (its tasks failed, or it ran past
 * its time limit; a cancel is someone's choice, not a failure, and records nothing), an alert opening, an inbound hook.
 */
export const signalTypes = ['dataset.version', 'alias.moved', 'run.succeeded', 'run.failed', 'alert.opened', 'hook.received'] as const;
export type SignalType = (typeof signalTypes)[number];

/** The signal type each trigger kind fires on. */
export const signalTypeOfKind: Record<TriggerKind, SignalType> = {
  DATASET_VERSION: 'dataset.version',
  ALIAS_MOVED: 'alias.moved',
  RUN_SUCCEEDED: 'run.succeeded',
  RUN_FAILED: 'run.failed',
  ALERT_OPENED: 'alert.opened',
  HTTP: 'hook.received',
};

/**
 * PENDING: matched, its run not started yet. STARTED: it started a run. COALESCED: another signal arrived for the same
 * trigger in the same pass, and the newest one's run stands for both (storm policy). RATE_LIMITED: the trigger already
 * started its most runs in the last minute. SKIPPED_OVERLAP: a run of the trigger was still active (overlap SKIP).
 * FAILED: the run could not start (a refusal, parameters that do not fit); the message says why.
 */
export const firingOutcomes = ['PENDING', 'STARTED', 'COALESCED', 'RATE_LIMITED', 'SKIPPED_OVERLAP', 'FAILED'] as const;
export type FiringOutcome = (typeof firingOutcomes)[number];

/** Why a run failed, as a `run.failed` signal says: a task failed (or timed out), or the run ran past its time limit. */
export const runFailureReasons = ['TASK_FAILED', 'TIME_LIMIT'] as const;
export type RunFailureReason = (typeof runFailureReasons)[number];

/**
 * The most runs in a row that failure triggers start from one another's failures (a run started by a `run.failed`
 * signal that fails again records its signal one further down the chain, through successes between too): beyond it
 * the firing is recorded FAILED and nothing starts, so a workflow that always fails cannot restart itself for ever.
 */
export const MAX_FAILURE_CHAIN = 5;
