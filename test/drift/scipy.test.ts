// Drift statistics checked against an independent implementation: SciPy and NumPy (Debian's python3-scipy) compute
// the same statistics on the same fixed data from the raw values, while ours see only the profiles.
import { execFileSync } from 'node:child_process';
import { beforeAll, describe, expect, it } from 'vitest';
import { type NumericProfile, profileValues } from '../../server/governance/profiles';
import { categoricalDrift, gammaQ, kolmogorovSf, numericDrift, PSI_EPSILON } from '../../server/monitoring/drift';

/** A fixed pseudo-random stream (mulberry32), so the data is the same on every run. */
function rng(seed: number) {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const normal = (r: () => number, mean: number, sd: number) => mean + sd * Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());

const r = rng(19);
const numericCases = {
  shifted: [Array.from({ length: 400 }, () => normal(r, 0, 1)), Array.from({ length: 300 }, () => normal(r, 0.4, 1.2))],
  same: [Array.from({ length: 500 }, () => normal(r, 5, 2)), Array.from({ length: 450 }, () => normal(r, 5, 2))],
  // Integers with ties, the current side reaching past both ends of the baseline.
  ties: [Array.from({ length: 300 }, () => Math.floor(r() * 10)), Array.from({ length: 200 }, () => Math.floor(r() * 14) - 2)],
} satisfies Record<string, [number[], number[]]>;
const categoricalCases = {
  // One category only in the baseline, one only in the current version.
  oneSided: [
    { a: 120, b: 80, c: 40, gone: 10 },
    { a: 90, b: 95, c: 30, new: 25 },
  ],
  near: [
    { x: 500, y: 300, z: 200 },
    { x: 480, y: 310, z: 210 },
  ],
} satisfies Record<string, [Record<string, number>, Record<string, number>]>;
const lambdas = [0.05, 0.3, 0.6, 0.9, 1.1, 1.17, 1.19, 1.5, 2, 3];
const gammas = [
  [0.5, 0.1],
  [0.5, 3],
  [1, 1],
  [2.5, 1],
  [3, 10],
  [10, 8],
  [25, 40],
];

const python = `
import json, sys
import numpy as np
from scipy import stats, special
from scipy.spatial.distance import jensenshannon
data = json.load(sys.stdin)
eps = data["eps"]
out = {"numeric": {}, "categorical": {}}
for name, (b, c) in data["numeric"].items():
    b = np.array(b); c = np.array(c)
    ks = stats.ks_2samp(b, c)
    en = len(b) * len(c) / (len(b) + len(c))
    edges = np.linspace(b.min(), b.max(), 11) if b.min() < b.max() else np.array([b.min(), b.max()])
    inside = lambda x: x[(x >= edges[0]) & (x <= edges[-1])]
    hb = np.concatenate([[0], np.histogram(b, edges)[0], [0]]) / len(b)
    hc = np.concatenate([[(c < edges[0]).sum()], np.histogram(inside(c), edges)[0], [(c > edges[-1]).sum()]]) / len(c)
    pb = np.maximum(hb, eps); pc = np.maximum(hc, eps)
    out["numeric"][name] = {"ks": float(ks.statistic), "ksP": float(stats.kstwobign.sf(np.sqrt(en) * ks.statistic)), "psi": float(np.sum((pc - pb) * np.log(pc / pb)))}
for name, (b, c) in data["categorical"].items():
    keys = sorted(set(b) | set(c))
    table = np.array([[b.get(k, 0) for k in keys], [c.get(k, 0) for k in keys]])
    chi2, p, dof, _ = stats.chi2_contingency(table, correction=False)
    out["categorical"][name] = {"chi2": float(chi2), "p": float(p), "dof": int(dof), "js": float(jensenshannon(table[0], table[1], base=2))}
out["kolmogorov"] = [float(stats.kstwobign.sf(x)) for x in data["lambdas"]]
out["gammaQ"] = [float(special.gammaincc(a, x)) for a, x in data["gammas"]]
print(json.dumps(out))
`;

interface Reference {
  numeric: Record<string, { ks: number; ksP: number; psi: number }>;
  categorical: Record<string, { chi2: number; p: number; dof: number; js: number }>;
  kolmogorov: number[];
  gammaQ: number[];
}

const expand = (counts: Record<string, number>) => Object.entries(counts).flatMap(([k, n]) => Array<string>(n).fill(k));

describe('drift statistics agree with SciPy', () => {
  let ref: Reference;
  beforeAll(() => {
    const input = JSON.stringify({ eps: PSI_EPSILON, numeric: numericCases, categorical: categoricalCases, lambdas, gammas });
    ref = JSON.parse(execFileSync('python3', ['-c', python], { input, encoding: 'utf8' }));
  });

  for (const [name, [b, c]] of Object.entries(numericCases)) {
    it(`numeric "${name}": KS exactly, its asymptotic p-value and PSI to 1e-9`, () => {
      const drift = numericDrift(profileValues(b) as NumericProfile, profileValues(c) as NumericProfile);
      const want = ref.numeric[name]!;
      expect(drift.ks.exact).toBe(true);
      expect(drift.ks.statistic).toBeCloseTo(want.ks, 12);
      expect(drift.ks.pValue).toBeCloseTo(want.ksP, 9);
      expect(drift.psi).toBeCloseTo(want.psi, 9);
    });
  }

  for (const [name, [b, c]] of Object.entries(categoricalCases)) {
    it(`categorical "${name}": chi-square statistic, p-value, dof and Jensen–Shannon distance`, () => {
      const drift = categoricalDrift(profileValues(expand(b)) as never, profileValues(expand(c)) as never);
      const want = ref.categorical[name]!;
      expect(drift.exact).toBe(true);
      expect(drift.chiSquare.statistic).toBeCloseTo(want.chi2, 9);
      expect(drift.chiSquare.dof).toBe(want.dof);
      expect(Math.abs(drift.chiSquare.pValue - want.p)).toBeLessThan(1e-12 + want.p * 1e-8);
      expect(drift.jensenShannon).toBeCloseTo(want.js, 12);
    });
  }

  it('the Kolmogorov distribution and the incomplete gamma match kstwobign.sf and gammaincc', () => {
    for (const [i, l] of lambdas.entries()) expect(kolmogorovSf(l)).toBeCloseTo(ref.kolmogorov[i]!, 10);
    for (const [i, [a, x]] of gammas.entries()) expect(Math.abs(gammaQ(a!, x!) - ref.gammaQ[i]!)).toBeLessThan(1e-12 + ref.gammaQ[i]! * 1e-9);
  });
});
