import { describe, expect, it } from 'vitest';
import type { Rollout, RolloutPolicy } from '../db/tables/deployments';
import { decideRollout, desiredSplit, gatesDue, sameSplit } from './rollout';

const t0 = new Date('2026-01-01T00:00:00Z');
const at = (s: number) => new Date(t0.getTime() + s * 1000);
const policy: RolloutPolicy = {
  steps: [
    { percent: 10, dwellSeconds: 60 },
    { percent: 50, dwellSeconds: 60 },
    { percent: 100, dwellSeconds: 0 },
  ],
  gates: [],
  readyTimeoutSeconds: 30,
};
const progress = (step: number, stepStartedAt = 0) => ({ step, startedAt: t0.toISOString(), stepStartedAt: at(stepStartedAt).toISOString() });
const ok = { breach: null };

describe('decideRollout', () => {
  it('waits for a new revision to be ready, then gives it the first step', () => {
    expect(decideRollout(policy, progress(-1), at(5), 'STARTING', ok)).toEqual({ kind: 'wait', until: at(30) });
    expect(decideRollout(policy, progress(-1), at(5), 'READY', ok)).toEqual({ kind: 'setTraffic', step: 0, percent: 10 });
  });
  it('rolls back a revision not ready in time, or FAILED at once', () => {
    expect(decideRollout(policy, progress(-1), at(30), 'STARTING', ok)).toMatchObject({
      kind: 'rollback',
      reason: expect.stringContaining('not ready within 30 s'),
    });
    expect(decideRollout(policy, progress(1, 100), at(101), 'FAILED', ok)).toMatchObject({ kind: 'rollback' });
    expect(decideRollout(policy, progress(1, 100), at(131), 'RESTARTING', ok)).toMatchObject({ kind: 'rollback' });
  });
  it('holds each step for its dwell, then lets the gates decide', () => {
    expect(decideRollout(policy, progress(0, 10), at(40), 'READY', ok)).toEqual({ kind: 'wait', until: at(70) });
    expect(decideRollout(policy, progress(0, 10), at(70), 'READY', ok)).toEqual({ kind: 'setTraffic', step: 1, percent: 50 });
    expect(decideRollout(policy, progress(0, 10), at(70), 'READY', { breach: 'mean 0.5 is below 0.9' })).toEqual({
      kind: 'rollback',
      reason: 'a gate was breached: mean 0.5 is below 0.9',
    });
    expect(decideRollout(policy, progress(2, 200), at(200), 'READY', ok)).toEqual({ kind: 'complete' });
  });
  it('holds a step whose gates have no observations until they come, then rolls back as stuck (or passes, or rolls back at once, by noData)', () => {
    const none = { breach: null, missing: ['error_rate'] };
    expect(decideRollout(policy, progress(0, 10), at(70), 'READY', none)).toEqual({
      kind: 'wait',
      until: at(70 + 3600),
      reason: 'holding: no observations of error_rate for the new revision since step 1 began',
    });
    expect(decideRollout({ ...policy, holdTimeoutSeconds: 30 }, progress(0, 10), at(100), 'READY', none)).toMatchObject({
      kind: 'rollback',
      reason: expect.stringMatching(/^the rollout was stuck: no observations of error_rate .*held 30 s past the step's dwell$/),
    });
    expect(decideRollout({ ...policy, noData: 'PASS' }, progress(0, 10), at(70), 'READY', none)).toEqual({ kind: 'setTraffic', step: 1, percent: 50 });
    expect(decideRollout({ ...policy, noData: 'ROLLBACK' }, progress(0, 10), at(70), 'READY', none)).toMatchObject({
      kind: 'rollback',
      reason: expect.stringContaining('(noData: ROLLBACK)'),
    });
    // A step with no dwell has no window: it is not gated.
    const instant = {
      ...policy,
      steps: [
        { percent: 50, dwellSeconds: 0 },
        { percent: 100, dwellSeconds: 0 },
      ],
    };
    expect(decideRollout(instant, progress(0, 10), at(10), 'READY', none)).toEqual({ kind: 'setTraffic', step: 1, percent: 100 });
    expect(gatesDue(instant, progress(0, 10), at(10))).toBe(false);
    // A breach still wins over missing gates.
    expect(decideRollout(policy, progress(0, 10), at(70), 'READY', { breach: 'x', missing: ['y'] })).toMatchObject({
      kind: 'rollback',
      reason: 'a gate was breached: x',
    });
  });
  it('with no steps, completes once ready', () => {
    expect(decideRollout({ ...policy, steps: [] }, progress(-1), at(1), 'READY', ok)).toEqual({ kind: 'complete' });
  });
  it('says when the gates are due', () => {
    expect(gatesDue(policy, progress(-1), at(100))).toBe(false);
    expect(gatesDue(policy, progress(0, 0), at(59))).toBe(false);
    expect(gatesDue(policy, progress(0, 0), at(60))).toBe(true);
  });
});

describe('desiredSplit', () => {
  const rollout = (step: number, percent: number, state: Rollout['state'] = 'RUNNING'): Rollout => ({
    revision: 2,
    from: 1,
    step,
    percent,
    startedAt: t0.toISOString(),
    stepStartedAt: t0.toISOString(),
    state,
    reason: null,
  });
  it('follows the stored state: failover first, then a running rollout, then the serving revision', () => {
    expect(desiredSplit({ failedOver: false, failoverRevision: null, rollout: null, serving: null })).toBeNull();
    expect(desiredSplit({ failedOver: false, failoverRevision: null, rollout: null, serving: 1 })).toEqual({ 1: 100 });
    expect(desiredSplit({ failedOver: false, failoverRevision: null, rollout: rollout(-1, 0), serving: 1 })).toEqual({ 1: 100 });
    expect(desiredSplit({ failedOver: false, failoverRevision: null, rollout: rollout(0, 10), serving: 1 })).toEqual({ 1: 90, 2: 10 });
    expect(desiredSplit({ failedOver: false, failoverRevision: null, rollout: rollout(2, 100), serving: 1 })).toEqual({ 2: 100 });
    expect(desiredSplit({ failedOver: true, failoverRevision: 1, rollout: rollout(0, 10), serving: 1 })).toEqual({ 1: 100 });
    expect(desiredSplit({ failedOver: false, failoverRevision: null, rollout: rollout(1, 50, 'COMPLETE'), serving: 2 })).toEqual({ 2: 100 });
  });
  it('compares splits by their non-zero shares', () => {
    expect(sameSplit({ 1: 100, 2: 0 }, { 1: 100 })).toBe(true);
    expect(sameSplit({ 1: 90, 2: 10 }, { 2: 10, 1: 90 })).toBe(true);
    expect(sameSplit({ 1: 90, 2: 10 }, { 1: 100 })).toBe(false);
  });
});
