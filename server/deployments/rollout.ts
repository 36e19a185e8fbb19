// The rollout decision, as pure code: given the policy, where the rollout stands, the time, the new revision's health
// and the gates' verdict, what to do next (wait, move traffic to a step, roll back, complete). The reconciler
// (reconciler.ts) applies it; the split a deployment should have is also decided here, from its stored state alone,
// so a replica that restarts makes the deployer match the database without remembering anything.
import type { GateResult, Rollout, RolloutPolicy } from '../db/tables/deployments';

export type RevisionHealthState = 'STARTING' | 'READY' | 'RESTARTING' | 'FAILED';

/** The gates over the new version's observations since the step began: a breach names why; null when none. */
export interface GateVerdict {
  breach: string | null;
  /** The gates (metric names) that had no observation of the new revision in the window. */
  missing?: string[];
  /** Each gate's own verdict, for people (the decision reads only `breach` and `missing`). */
  results?: GateResult[];
}

export type RolloutDecision =
  /** `reason`: why the rollout holds (shown on the rollout until it moves on). */
  | { kind: 'wait'; until: Date | null; reason?: string }
  | { kind: 'setTraffic'; step: number; percent: number }
  | { kind: 'rollback'; reason: string }
  | { kind: 'complete' };

export type Progress = Pick<Rollout, 'step' | 'startedAt' | 'stepStartedAt'>;

/** How long a step holds for observations before the rollout counts as stuck and rolls back. */
export const DEFAULT_HOLD_TIMEOUT_S = 3_600;

const plus = (iso: string, seconds: number) => new Date(new Date(iso).getTime() + seconds * 1000);

/**
 * What a RUNNING rollout does now. A FAILED new revision rolls back at once; one not READY within
 * `readyTimeoutSeconds` (of the rollout's start, or of its step) rolls back; after each step's dwell the gates
 * decide: a breach rolls back, a pass moves to the next step, and after the last step the rollout completes. A gate
 * with no observations holds the step (policy `noData`, default HOLD) until they come, a person acts, or
 * `holdTimeoutSeconds` past the dwell: then the rollout is stuck and rolls back. A step with no dwell is not gated.
 */
export function decideRollout(policy: RolloutPolicy, progress: Progress, now: Date, health: RevisionHealthState, gates: GateVerdict): RolloutDecision {
  if (health === 'FAILED') return { kind: 'rollback', reason: 'the new revision FAILED' };
  const readySince = progress.step < 0 ? progress.startedAt : progress.stepStartedAt;
  const readyDeadline = plus(readySince, policy.readyTimeoutSeconds);
  if (health !== 'READY') {
    if (now >= readyDeadline) return { kind: 'rollback', reason: `the new revision was not ready within ${policy.readyTimeoutSeconds} s (${health})` };
    return { kind: 'wait', until: readyDeadline };
  }
  if (progress.step < 0) {
    const first = policy.steps[0];
    return first ? { kind: 'setTraffic', step: 0, percent: first.percent } : { kind: 'complete' };
  }
  const step = policy.steps[progress.step];
  if (!step) return { kind: 'complete' };
  const dwellEnd = plus(progress.stepStartedAt, step.dwellSeconds);
  if (now < dwellEnd) return { kind: 'wait', until: dwellEnd };
  // A step held for no time has no window to measure: it moves on at once.
  if (step.dwellSeconds > 0 && gates.breach) return { kind: 'rollback', reason: `a gate was breached: ${gates.breach}` };
  const missing = step.dwellSeconds > 0 ? (gates.missing ?? []) : [];
  if (missing.length && (policy.noData ?? 'HOLD') !== 'PASS') {
    const what = `no observations of ${missing.join(', ')} for the new revision since step ${progress.step + 1} began`;
    if (policy.noData === 'ROLLBACK') return { kind: 'rollback', reason: `${what} (noData: ROLLBACK)` };
    const holdTimeout = policy.holdTimeoutSeconds ?? DEFAULT_HOLD_TIMEOUT_S;
    const stuckAt = plus(dwellEnd.toISOString(), holdTimeout);
    if (now >= stuckAt) return { kind: 'rollback', reason: `the rollout was stuck: ${what}, held ${holdTimeout} s past the step's dwell` };
    return { kind: 'wait', until: stuckAt, reason: `holding: ${what}` };
  }
  const next = policy.steps[progress.step + 1];
  return next ? { kind: 'setTraffic', step: progress.step + 1, percent: next.percent } : { kind: 'complete' };
}

/** Whether the gates should be measured now (a step held for some time has passed its dwell). */
export function gatesDue(policy: RolloutPolicy, progress: Progress, now: Date): boolean {
  const step = progress.step >= 0 ? policy.steps[progress.step] : undefined;
  return !!step && step.dwellSeconds > 0 && now >= plus(progress.stepStartedAt, step.dwellSeconds);
}

export type Split = Record<number, number>;

/** What the deployment stored says the split should be; null when nothing serves yet. */
export function desiredSplit(state: { failedOver: boolean; failoverRevision: number | null; rollout: Rollout | null; serving: number | null }): Split | null {
  if (state.failedOver && state.failoverRevision !== null) return { [state.failoverRevision]: 100 };
  const r = state.rollout;
  if (r && (r.state === 'RUNNING' || r.state === 'PAUSED') && r.from !== null && r.step >= 0) return twoWay(r.from, r.revision, r.percent);
  return state.serving !== null ? { [state.serving]: 100 } : null;
}

function twoWay(from: number, to: number, percent: number): Split {
  if (percent >= 100) return { [to]: 100 };
  if (percent <= 0) return { [from]: 100 };
  return { [from]: 100 - percent, [to]: percent };
}

/** Two splits are the same when they give the same revisions the same non-zero percents. */
export function sameSplit(a: Split, b: Split): boolean {
  const clean = (s: Split) =>
    Object.entries(s)
      .filter(([, p]) => p > 0)
      .map(([r, p]) => `${Number(r)}:${p}`)
      .sort()
      .join(',');
  return clean(a) === clean(b);
}
