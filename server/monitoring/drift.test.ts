// Edge cases of the drift statistics (the values themselves are checked against SciPy in test/drift/scipy.test.ts).
import { describe, expect, it } from 'vitest';
import { type CategoricalProfile, type NumericProfile, profileValues } from '../governance/profiles';
import { breachesOf, columnDrift, gammaQ, kolmogorovSf, numericDrift, PSI_EPSILON } from './drift';

const numeric = (xs: unknown[]) => profileValues(xs) as NumericProfile;
const categorical = (xs: unknown[]) => profileValues(xs) as CategoricalProfile;
const finite = (x: number) => Number.isFinite(x);

describe('numeric drift', () => {
  it('is zero between identical profiles', () => {
    const p = numeric([1, 2, 2, 3, 7, 9]);
    const d = numericDrift(p, p);
    expect(d.psi).toBeCloseTo(0, 14);
    expect(d.ks).toEqual({ statistic: 0, pValue: 1, exact: true });
  });

  it('an empty bin on either side adds a large, finite term (epsilon), never Infinity', () => {
    // The baseline's middle bins are empty; the current side sits in them.
    const d = numericDrift(numeric([0, 0, 0, 10, 10, 10]), numeric([5, 5, 5, 5]));
    expect(finite(d.psi)).toBe(true);
    const share = 1 - 0; // all of the current side in one bin the baseline left empty
    expect(d.psi).toBeGreaterThan((share - PSI_EPSILON) * Math.log(share / PSI_EPSILON));
    expect(d.ks.statistic).toBe(0.5);
  });

  it('a constant baseline still sees a shift (values past its max fall in the open bin above)', () => {
    const d = numericDrift(numeric([5, 5, 5, 5]), numeric([6, 6, 6]));
    expect(d.psi).toBeGreaterThan(10);
    expect(d.ks.statistic).toBe(1);
    const same = numericDrift(numeric([5, 5]), numeric([5, 5, 5]));
    expect(same.psi).toBe(0);
    expect(same.ks.statistic).toBe(0);
  });

  it('NaN, Infinity and null count as nulls, not values, and no statistic is NaN', () => {
    const p = numeric([1, Number.NaN, 2, null, Number.POSITIVE_INFINITY, 3]);
    expect(p).toMatchObject({ count: 3, nulls: 3, min: 1, max: 3 });
    const d = columnDrift(p, numeric([2, 3, 4, Number.NaN]));
    expect(d.kind).toBe('numeric');
    if (d.kind === 'numeric') expect([d.psi, d.ks.statistic, d.ks.pValue].every(finite)).toBe(true);
  });

  it('a side with no values, or of another kind, gives no statistic and says why', () => {
    expect(columnDrift(numeric([null, Number.NaN]), numeric([1]))).toEqual({ kind: 'none', reason: 'the baseline has no values' });
    expect(columnDrift(numeric([1]), numeric([]))).toEqual({ kind: 'none', reason: 'the current version has no values' });
    expect(columnDrift(numeric([1]), categorical(['a']))).toMatchObject({ kind: 'none' });
  });

  it('histogram-only profiles give an approximate KS (exact: false) and a PSI from interpolated shares', () => {
    const b = { ...numeric([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]), values: null };
    const c = { ...numeric([5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]), values: null };
    const d = numericDrift(b, c);
    expect(d.ks.exact).toBe(false);
    expect(d.ks.statistic).toBeGreaterThan(0.3);
    expect(d.ks.statistic).toBeLessThanOrEqual(1);
    expect(d.psi).toBeGreaterThan(1);
    expect(numericDrift(b, b).psi).toBeCloseTo(0, 12);
  });
});

describe('categorical drift', () => {
  it('a category on one side only counts zero on the other', () => {
    const d = columnDrift(categorical(['a', 'a', 'b']), categorical(['a', 'c']));
    expect(d).toMatchObject({ kind: 'categorical', exact: true, chiSquare: { dof: 2 } });
    if (d.kind === 'categorical') expect(d.jensenShannon).toBeGreaterThan(0.3);
    const disjoint = columnDrift(categorical(['a']), categorical(['b']));
    if (disjoint.kind === 'categorical') expect(disjoint.jensenShannon).toBe(1);
  });

  it('one category on both sides: nothing to test (statistic 0, p-value 1), distance 0', () => {
    const d = columnDrift(categorical(['x', 'x']), categorical(['x']));
    expect(d).toEqual({ kind: 'categorical', chiSquare: { statistic: 0, pValue: 1, dof: 0 }, jensenShannon: 0, exact: true });
  });

  it('values lumped in `other` are one more cell, and the result says it is not exact', () => {
    const b: CategoricalProfile = { kind: 'categorical', count: 10, nulls: 0, top: [['a', 6]], other: 4 };
    const c: CategoricalProfile = { kind: 'categorical', count: 10, nulls: 2, top: [['a', 5]], other: 5 };
    expect(columnDrift(b, c)).toMatchObject({ kind: 'categorical', exact: false, chiSquare: { dof: 1 } });
  });
});

describe('breaches', () => {
  it('default thresholds: PSI above 0.2, Jensen–Shannon above 0.1; the others only when given', () => {
    const shift = columnDrift(numeric([1, 2, 3, 4]), numeric([10, 11, 12]));
    expect(breachesOf(shift)).toHaveLength(1);
    expect(breachesOf(shift, { psi: undefined, ks: 0.5 })).toHaveLength(2);
    expect(breachesOf(shift, { psi: 100, ks: 0.5 })).toEqual(['KS 1.000 > 0.5']);
    const cats = columnDrift(categorical(['a', 'b']), categorical(['a', 'b']));
    expect(breachesOf(cats, { chiSquarePValue: 0.05 })).toEqual([]);
    expect(breachesOf({ kind: 'none', reason: 'x' })).toEqual([]);
  });
});

describe('distributions', () => {
  it('are bounded and monotone where their series meet', () => {
    expect(kolmogorovSf(0)).toBe(1);
    expect(kolmogorovSf(10)).toBeLessThan(1e-80);
    expect(kolmogorovSf(1.179)).toBeGreaterThan(kolmogorovSf(1.181));
    expect(gammaQ(2, 0)).toBe(1);
    expect(gammaQ(1, 1)).toBeCloseTo(Math.exp(-1), 14);
  });
});
