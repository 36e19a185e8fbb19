// How an attempt ended, as constructors (Flyte's phase.go style): one place decides what each kind of ending
// carries, so executors say `systemFailure('lost', why)` instead of spelling out `{ state, retryable, ... }`.
import type { TaskOutcome } from './protocol';

/** What any outcome may add: the process's exit code, outputs, and time spent getting compute ready. */
export type OutcomeDetails = Pick<TaskOutcome, 'exitCode' | 'outputs' | 'provisioningMs'>;

/** A failure's details; `retryable` unset lets the task's retry policy decide (an ordinary non-zero exit). */
export type FailureDetails = OutcomeDetails & Pick<TaskOutcome, 'retryable' | 'systemFailure'>;

/** Copies only the keys that carry a value: an outcome has no `undefined` entries. */
function outcome(base: TaskOutcome, details: object | undefined): TaskOutcome {
  const result: TaskOutcome = { ...base };
  for (const [key, value] of Object.entries(details ?? {})) if (value !== undefined) Object.assign(result, { [key]: value });
  return result;
}

/** The work finished as asked. */
export function succeeded(details?: OutcomeDetails): TaskOutcome {
  return outcome({ state: 'SUCCEEDED' }, details);
}

/**
 * The work failed. `reason` is a short machine-readable code (`exit-code`, `oom`), `message` says why for a person.
 * Without `retryable` the task's retry policy decides.
 */
export function failed(reason: string, message?: string, details?: FailureDetails): TaskOutcome {
  return outcome({ state: 'FAILED', reason }, { message, ...details });
}

/** A failure trying again cannot fix (a missing entrypoint, an invalid image): the task's retries are not used. */
export function permanentFailure(reason: string, message?: string, details?: OutcomeDetails): TaskOutcome {
  return failed(reason, message, { ...details, retryable: false });
}

/** A transient failure of the user's work (an image pull, a kill on node shutdown): worth another try. */
export function retryableFailure(reason: string, message?: string, details?: OutcomeDetails): TaskOutcome {
  return failed(reason, message, { ...details, retryable: true });
}

/** The platform failed, not the user's work: retried without consuming the user's retries. */
export function systemFailure(reason: string, message?: string, details?: OutcomeDetails): TaskOutcome {
  return failed(reason, message, { ...details, retryable: true, systemFailure: true });
}

/**
 * The work stopped on request. The host fills in `reason` and `message` from why it aborted (a user's cancel,
 * the deadline, a shutdown), so executors usually pass nothing; `shutdown` says the work was left running.
 */
export function cancelled(reason?: string, message?: string, details?: OutcomeDetails): TaskOutcome {
  return outcome({ state: 'CANCELLED' }, { reason, message, ...details });
}

/** The work ran past a time limit (the attempt's, or one the backend enforces). */
export function timedOut(message?: string, details?: OutcomeDetails): TaskOutcome {
  return outcome({ state: 'TIMED_OUT', reason: 'timeout' }, { message, ...details });
}
