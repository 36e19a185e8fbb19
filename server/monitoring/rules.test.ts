import { describe, expect, it } from 'vitest';
import { checkRules, evaluateRule, type MonitorRule, type RuleState } from './rules';

const [threshold] = checkRules([{ kind: 'THRESHOLD', above: 0.2, consecutive: 2, windowSeconds: 600 }]) as [MonitorRule];
const [regression] = checkRules([{ id: 'acc', kind: 'REGRESSION', baseline: 'EVALUATION', maxDrop: 0.05 }]) as [MonitorRule];

describe('checkRules', () => {
  it('numbers rules and fills defaults', () => {
    expect(threshold).toEqual({ id: 'r1', kind: 'THRESHOLD', aggregate: 'MEAN', windowSeconds: 600, consecutive: 2, above: 0.2, below: null });
    expect(regression).toMatchObject({ id: 'acc', kind: 'REGRESSION', higherIsBetter: true, trailingSeconds: null });
    expect(checkRules([{ kind: 'REGRESSION', maxDrop: 0.1, windowSeconds: 60 }])[0]).toMatchObject({ baseline: 'TRAILING', trailingSeconds: 1440 });
  });

  it('refuses bad rules, naming where', () => {
    expect(() => checkRules([])).toThrow(/at least one rule/);
    expect(() => checkRules([{ kind: 'DRIFTY' }])).toThrow(/rules.0.kind must be one of THRESHOLD, REGRESSION/);
    expect(() => checkRules([{ kind: 'THRESHOLD' }])).toThrow(/rules.0: a THRESHOLD rule needs above, below/);
    expect(() => checkRules([{ kind: 'THRESHOLD', above: Number.NaN }])).toThrow(/rules.0.above must be a finite/);
    expect(() => checkRules([{ kind: 'REGRESSION', maxDrop: 0 }])).toThrow(/maxDrop/);
    expect(() => checkRules([{ kind: 'THRESHOLD', above: 1, consecutive: 0 }])).toThrow(/consecutive/);
    expect(() =>
      checkRules([
        { id: 'a', kind: 'THRESHOLD', above: 1 },
        { id: 'a', kind: 'THRESHOLD', below: 0 },
      ]),
    ).toThrow(/"a" is used twice/);
  });
});

describe('evaluateRule', () => {
  it('opens only after N breaches in a row, and a pass resets the count', () => {
    let state: RuleState | undefined;
    const step = (current: number | null) => {
      const verdict = evaluateRule(threshold, { current, baseline: null }, state);
      state = verdict.state;
      return verdict;
    };
    expect(step(0.3)).toMatchObject({ status: 'BREACH', alert: false, bound: 0.2 });
    expect(step(0.1)).toMatchObject({ status: 'OK' });
    expect(step(0.3)).toMatchObject({ status: 'BREACH', alert: false });
    expect(step(null)).toMatchObject({ status: 'NO_DATA' });
    expect(step(0.4)).toMatchObject({ status: 'BREACH', alert: true, message: 'mean 0.4 is above 0.2 (2 evaluations in a row)' });
    expect(state?.consecutive).toBe(2);
  });

  it('measures regression relative to the baseline, in the direction that is better', () => {
    expect(evaluateRule(regression, { current: 0.9, baseline: 0.92 }, undefined).status).toBe('OK');
    const v = evaluateRule(regression, { current: 0.8, baseline: 0.92 }, undefined);
    expect(v).toMatchObject({ status: 'BREACH', alert: true });
    if (v.status === 'BREACH') expect(v.bound).toBeCloseTo(0.874);
    const [lower] = checkRules([{ kind: 'REGRESSION', baseline: 'TRAILING', maxDrop: 0.5, higherIsBetter: false }]) as [MonitorRule];
    expect(evaluateRule(lower, { current: 140, baseline: 100 }, undefined).status).toBe('OK');
    expect(evaluateRule(lower, { current: 160, baseline: 100 }, undefined).status).toBe('BREACH');
    expect(evaluateRule(lower, { current: 160, baseline: null }, undefined).status).toBe('OK');
  });

  it("uses a person's re-baseline instead of the rule's own", () => {
    const state = { consecutive: 0, lastValue: null, lastBaseline: null, baseline: { value: 0.8, at: '2026-01-01T00:00:00Z' } };
    expect(evaluateRule(regression, { current: 0.79, baseline: 0.92 }, state)).toMatchObject({ status: 'OK', state: { lastBaseline: 0.8 } });
  });
});

describe('DRIFT rule', () => {
  const [drift] = checkRules([{ id: 'd', kind: 'DRIFT', psi: 0.3, columns: ['age', 'age'] }]) as [MonitorRule];
  const measured = (breaching: number) => ({
    current: breaching,
    baseline: null,
    drift: {
      dataset: 'shop/orders',
      version: 3,
      baselineVersion: 1,
      columns: [
        { column: 'age', breaches: breaching ? ['PSI 0.512 > 0.3'] : [] },
        { column: 'plan', breaches: [] },
      ],
    },
  });

  it('checks thresholds and keeps per-statistic limits (null: the statistic’s default)', () => {
    expect(drift).toMatchObject({
      kind: 'DRIFT',
      columns: ['age'],
      dataset: null,
      baselineVersion: null,
      thresholds: { psi: 0.3, ks: null, chiSquarePValue: null, jensenShannon: null },
    });
    expect(() => checkRules([{ kind: 'DRIFT', jensenShannon: 1.5 }])).toThrow(/rules.0.jensenShannon must be a number above 0 and below 1/);
    expect(() => checkRules([{ kind: 'DRIFT', psi: -1 }])).toThrow(/rules.0.psi/);
    expect(() => checkRules([{ kind: 'DRIFT', dataset: 'nope' }])).toThrow(/namespace\/name/);
    expect(() => checkRules([{ kind: 'DRIFT', baselineVersion: 0 }])).toThrow(/baselineVersion/);
    expect(() => checkRules([{ kind: 'DRIFT', columns: [] }])).toThrow(/columns lists 1–500/);
  });

  it('breaches when any watched column crosses, naming the columns and values; counts consecutive breaches', () => {
    const [twice] = checkRules([{ kind: 'DRIFT', consecutive: 2 }]) as [MonitorRule];
    const first = evaluateRule(twice, measured(1), undefined);
    expect(first).toMatchObject({ status: 'BREACH', alert: false, value: 1, bound: 0 });
    const second = evaluateRule(twice, measured(1), first.state);
    expect(second).toMatchObject({ status: 'BREACH', alert: true });
    if (second.status === 'BREACH')
      expect(second.message).toBe('drift in 1 column of shop/orders v3 against v1: age (PSI 0.512 > 0.3) (2 evaluations in a row)');
    expect(evaluateRule(twice, measured(0), second.state)).toMatchObject({ status: 'OK', state: { consecutive: 0 } });
    expect(evaluateRule(twice, { current: null, baseline: null }, second.state)).toMatchObject({ status: 'NO_DATA', state: { consecutive: 2 } });
  });
});
