// Maps a Databricks run (as `runs/get` returns it) to where it is in its life cycle and, once it has ended, to an
// Atelier outcome. The `status` object (Jobs API 2.1+) is preferred; the deprecated `state` is the fallback.
// Databricks says more states and codes may be added: anything unknown is reported as such, never thrown.
import { cancelled, failed, permanentFailure, succeeded, systemFailure, type TaskOutcome, timedOut } from '../../plugins/sdk';

export type RunPhase = 'queued' | 'provisioning' | 'running' | 'terminating' | 'terminated' | 'unknown';

export interface RunStateView {
  phase: RunPhase;
  /** The remote state in Databricks' words, e.g. `PENDING` or `TERMINATED/USER_CANCELED`. */
  label: string;
  /** Databricks' own message for the state (state_message, termination or queue details). */
  message: string;
  /** Set once the run has ended (`phase === 'terminated'`). */
  outcome?: TaskOutcome;
}

/** An outcome without its message, which is added from the run's own words once it has ended. */
type Verdict = TaskOutcome;

// status.state (RunLifecycleStateV2State). BLOCKED and WAITING are waits before the run starts.
const STATUS_PHASES: Record<string, RunPhase> = {
  QUEUED: 'queued',
  BLOCKED: 'queued',
  WAITING: 'queued',
  PENDING: 'provisioning',
  RUNNING: 'running',
  TERMINATING: 'terminating',
  TERMINATED: 'terminated',
};

// The deprecated state.life_cycle_state. SKIPPED and INTERNAL_ERROR are terminal in their own right.
const LIFE_CYCLE_PHASES: Record<string, RunPhase> = {
  QUEUED: 'queued',
  BLOCKED: 'queued',
  WAITING_FOR_RETRY: 'queued',
  PENDING: 'provisioning',
  RUNNING: 'running',
  TERMINATING: 'terminating',
  TERMINATED: 'terminated',
  SKIPPED: 'terminated',
  INTERNAL_ERROR: 'terminated',
};

const success: Verdict = succeeded();
const userFailure: Verdict = failed('run-failed'); // the task's retry policy decides
const permanent = (reason: string): Verdict => permanentFailure(reason);
const platform = (reason: string): Verdict => systemFailure(reason);
const skipped: Verdict = failed('skipped');

// termination_details.code (TerminationCodeCode). Platform, cloud and capacity trouble is retryable and not the
// user's fault; configuration mistakes are permanent; the user's own code failing is an ordinary failure.
const TERMINATION_CODES: Record<string, Verdict> = {
  SUCCESS: success,
  SUCCESS_WITH_FAILURES: success, // only child (for-each) runs failed; an Atelier run has one task
  USER_CANCELED: cancelled('cancelled'),
  CANCELED: cancelled('cancelled-by-databricks'),
  RUN_EXECUTION_ERROR: userFailure,
  SKIPPED: skipped,
  DISABLED: skipped,
  INTERNAL_ERROR: platform('databricks-internal-error'),
  DRIVER_ERROR: platform('driver-error'),
  CLUSTER_ERROR: platform('cluster-error'),
  CLOUD_FAILURE: platform('cloud-failure'),
  BREAKING_CHANGE: platform('breaking-change'),
  REPOSITORY_CHECKOUT_FAILED: platform('repository-checkout-failed'),
  WORKSPACE_RUN_LIMIT_EXCEEDED: platform('capacity'),
  CLUSTER_REQUEST_LIMIT_EXCEEDED: platform('capacity'),
  MAX_CONCURRENT_RUNS_EXCEEDED: platform('capacity'),
  MAX_JOB_QUEUE_SIZE_EXCEEDED: platform('capacity'),
  MAX_SPARK_CONTEXTS_EXCEEDED: platform('capacity'),
  INVALID_CLUSTER_REQUEST: permanent('invalid-cluster-request'),
  INVALID_RUN_CONFIGURATION: permanent('invalid-run-configuration'),
  FEATURE_DISABLED: permanent('feature-disabled'),
  RESOURCE_NOT_FOUND: permanent('resource-not-found'),
  UNAUTHORIZED_ERROR: permanent('unauthorized'),
  LIBRARY_INSTALLATION_ERROR: permanent('library-installation-failed'),
  STORAGE_ACCESS_ERROR: permanent('storage-access-error'),
  BUDGET_POLICY_LIMIT_EXCEEDED: permanent('budget-policy-limit'),
};

// termination_details.type (TerminationTypeType), for codes added after this table was written.
const TERMINATION_TYPES: Record<string, Verdict> = {
  SUCCESS: success,
  CLIENT_ERROR: permanent('client-error'),
  INTERNAL_ERROR: platform('databricks-internal-error'),
  CLOUD_FAILURE: platform('cloud-failure'),
};

// The deprecated state.result_state (RunResultState).
const RESULT_STATES: Record<string, Verdict> = {
  SUCCESS: success,
  SUCCESS_WITH_FAILURES: success,
  FAILED: userFailure,
  TIMEDOUT: timedOut(),
  CANCELED: cancelled('cancelled'),
  MAXIMUM_CONCURRENT_RUNS_REACHED: platform('capacity'),
  EXCLUDED: skipped,
  UPSTREAM_FAILED: skipped,
  UPSTREAM_CANCELED: skipped,
};

// The status object has no timeout code: a run stopped at its timeout_seconds ends as CANCELED ("canceled by the
// platform, e.g. the maximum run duration was exceeded"). The legacy result_state, or the message, tells them apart.
const TIMEOUT_WORDS = /timed?[ -]?out|timeout|maximum run duration/i;

const text = (v: unknown) => (typeof v === 'string' ? v : '');
const record = (v: unknown): Record<string, unknown> | undefined =>
  v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;

/** Reads a `runs/get` answer (or its `tasks[i]`). Never throws: an unreadable run is `unknown`. */
export function readRunState(run: unknown): RunStateView {
  const r = record(run) ?? {};
  const status = record(r.status);
  const legacy = record(r.state);
  if (status && typeof status.state === 'string') return fromStatus(status, legacy);
  if (legacy && typeof legacy.life_cycle_state === 'string') return fromLegacy(legacy);
  return { phase: 'unknown', label: 'no state', message: 'the run has neither `status` nor `state`' };
}

function fromStatus(status: Record<string, unknown>, legacy: Record<string, unknown> | undefined): RunStateView {
  const state = status.state as string;
  const phase = STATUS_PHASES[state] ?? 'unknown';
  const queue = record(status.queue_details);
  if (phase !== 'terminated') return { phase, label: state, message: text(queue?.message) || text(legacy?.state_message) };

  const details = record(status.termination_details);
  const code = text(details?.code);
  const type = text(details?.type);
  const message = text(details?.message) || text(legacy?.state_message);
  const label = `${state}/${code || type || '?'}`;
  let verdict = TERMINATION_CODES[code] ?? TERMINATION_TYPES[type];
  if (!verdict) {
    // No termination details we know: the deprecated result_state may still say it.
    const result = text(legacy?.result_state);
    verdict = RESULT_STATES[result] ?? failed('unknown-result');
  }
  if (code === 'CANCELED' && (legacy?.result_state === 'TIMEDOUT' || TIMEOUT_WORDS.test(message))) {
    verdict = timedOut();
  }
  return { phase, label, message, outcome: outcomeOf(verdict, label, message) };
}

function fromLegacy(legacy: Record<string, unknown>): RunStateView {
  const lifeCycle = legacy.life_cycle_state as string;
  const phase = LIFE_CYCLE_PHASES[lifeCycle] ?? 'unknown';
  const message = text(legacy.state_message);
  if (phase !== 'terminated') return { phase, label: lifeCycle, message };
  const result = text(legacy.result_state);
  const label = `${lifeCycle}/${result || '?'}`;
  let verdict: Verdict;
  if (lifeCycle === 'INTERNAL_ERROR')
    verdict = platform('databricks-internal-error'); // includes cluster launch failures
  else if (lifeCycle === 'SKIPPED') verdict = skipped;
  else verdict = RESULT_STATES[result] ?? failed('unknown-result');
  return { phase, label, message, outcome: outcomeOf(verdict, label, message) };
}

function outcomeOf(verdict: Verdict, label: string, message: string): TaskOutcome {
  const outcome: TaskOutcome = { ...verdict };
  for (const key of ['reason', 'retryable', 'systemFailure'] as const) if (outcome[key] === undefined) delete outcome[key];
  if (verdict.state !== 'SUCCEEDED') outcome.message = message ? `${label}: ${message}` : label;
  return outcome;
}
