// Drift statistics between two stored column profiles (governance/profiles.ts), never raw rows: PSI and
// two-sample Kolmogorov–Smirnov for numeric columns, chi-square and Jensen–Shannon distance for categorical ones.
// The statistics are pure; `driftOf` at the end reads the two profiles (only columns the reader may preview) and
// is what the API and the monitors' DRIFT rule call. docs/drift.md gives the binning, the epsilon and when a
// statistic is exact. The incomplete gamma and the
// Kolmogorov distribution are written here (a few lines each, checked against SciPy in test/drift/scipy.test.ts)
// rather than pulling a statistics library for two functions.
import { audit } from '../audit/audit';
import type { Db } from '../db/client';
import { badInput } from '../errors';
import { columnsRead } from '../governance/model-labels';
import { type CategoricalProfile, type ColumnProfile, type NumericProfile, type ProfileReader, readProfile } from '../governance/profiles';
import { findModelVersion } from '../registry/models';

/** What an empty PSI bin's proportion counts as (so a bin empty on one side adds a large, finite term). */
export const PSI_EPSILON = 1e-4;

export interface NumericDrift {
  kind: 'numeric';
  /** Population stability index over the baseline's bins plus one open bin below its min and one above its max. */
  psi: number;
  /** Two-sample KS: the largest gap between the two empirical CDFs, and its asymptotic p-value. */
  ks: { statistic: number; pValue: number; exact: boolean };
}

export interface CategoricalDrift {
  kind: 'categorical';
  /** Chi-square test of homogeneity on the 2×K table of counts (no continuity correction). */
  chiSquare: { statistic: number; pValue: number; dof: number };
  /** Jensen–Shannon distance (square root of the divergence, base 2): 0 same, 1 disjoint. */
  jensenShannon: number;
  /** False when either side lumps values into `other` (the table then has one `other` cell). */
  exact: boolean;
}

/** No statistic: a side has no values, or the two sides are not the same kind. */
export interface NoDrift {
  kind: 'none';
  reason: string;
}

export type ColumnDrift = NumericDrift | CategoricalDrift | NoDrift;

/** The statistics for one column between a baseline profile and a current one. */
export function columnDrift(baseline: ColumnProfile, current: ColumnProfile): ColumnDrift {
  if (baseline.count === 0) return { kind: 'none', reason: 'the baseline has no values' };
  if (current.count === 0) return { kind: 'none', reason: 'the current version has no values' };
  if (baseline.kind !== current.kind) return { kind: 'none', reason: `the baseline is ${baseline.kind} and the current version ${current.kind}` };
  return baseline.kind === 'numeric' ? numericDrift(baseline, current as NumericProfile) : categoricalDrift(baseline, current as CategoricalProfile);
}

export function numericDrift(baseline: NumericProfile, current: NumericProfile): NumericDrift {
  return { kind: 'numeric', psi: psi(baseline, current), ks: ks(baseline, current) };
}

/** Share of a numeric profile's values ≤ x (`strict`: < x): a step function over exact values, else linear within bins. */
function cdfOf(p: NumericProfile): (x: number, strict?: boolean) => number {
  if (p.values) {
    const xs = p.values.map((v) => v[0]);
    const cum: number[] = [];
    let acc = 0;
    for (const [, c] of p.values) cum.push((acc += c));
    return (x, strict = false) => {
      let lo = 0;
      let hi = xs.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (strict ? xs[mid]! < x : xs[mid]! <= x) lo = mid + 1;
        else hi = mid;
      }
      return lo === 0 ? 0 : cum[lo - 1]! / p.count;
    };
  }
  const { edges, counts } = p.histogram;
  return (x) => {
    if (x < edges[0]!) return 0;
    if (x >= edges[edges.length - 1]!) return 1;
    let acc = 0;
    for (let i = 0; i < counts.length; i++) {
      const a = edges[i]!;
      const b = edges[i + 1]!;
      if (x >= b) acc += counts[i]!;
      else return (acc + (counts[i]! * (x - a)) / (b - a)) / p.count;
    }
    return 1;
  };
}

/**
 * PSI = Σ (c_i − b_i) · ln(c_i / b_i) over bins: (−∞, min), the baseline's histogram bins (`[e_i, e_i+1)`,
 * the last closed), and (max, +∞). b_i and c_i are the shares of each side in a bin, PSI_EPSILON when zero.
 */
function psi(baseline: NumericProfile, current: NumericProfile): number {
  const { edges, counts } = baseline.histogram;
  const f = cdfOf(current);
  const b = [0, ...counts.map((c) => c / baseline.count), 0];
  // Cumulative share of the current side below each bin's lower edge, then at or below the max.
  const cuts = [...edges.slice(0, -1).map((e) => f(e, true)), f(edges[edges.length - 1]!)];
  const c = [cuts[0]!, ...counts.map((_, i) => cuts[i + 1]! - cuts[i]!), 1 - cuts[cuts.length - 1]!];
  let total = 0;
  for (let i = 0; i < b.length; i++) {
    const bi = Math.max(b[i]!, PSI_EPSILON);
    const ci = Math.max(c[i]!, PSI_EPSILON);
    total += (ci - bi) * Math.log(ci / bi);
  }
  return total;
}

/** KS over exact values when both sides list them (exact), else over the union of bin edges and values. */
function ks(baseline: NumericProfile, current: NumericProfile): NumericDrift['ks'] {
  const fb = cdfOf(baseline);
  const fc = cdfOf(current);
  const points = new Set<number>();
  for (const p of [baseline, current]) for (const x of p.values ? p.values.map((v) => v[0]) : p.histogram.edges) points.add(x);
  let d = 0;
  for (const x of points) d = Math.max(d, Math.abs(fb(x) - fc(x)));
  const en = (baseline.count * current.count) / (baseline.count + current.count);
  return { statistic: d, pValue: kolmogorovSf(Math.sqrt(en) * d), exact: baseline.values !== null && current.values !== null };
}

/** P(K > λ) for the Kolmogorov distribution (SciPy's kstwobign.sf). */
export function kolmogorovSf(lambda: number): number {
  if (lambda <= 0) return 1;
  if (lambda < 1.18) {
    // The theta-function form converges fast for small λ: P(K ≤ λ) = √(2π)/λ · Σ exp(−(2k−1)²π²/(8λ²)).
    let s = 0;
    for (let k = 1; k <= 10; k++) s += Math.exp((-((2 * k - 1) ** 2) * Math.PI ** 2) / (8 * lambda * lambda));
    return clamp01(1 - (Math.sqrt(2 * Math.PI) / lambda) * s);
  }
  let s = 0;
  for (let k = 1; k <= 100; k++) s += (k % 2 ? 1 : -1) * Math.exp(-2 * k * k * lambda * lambda);
  return clamp01(2 * s);
}

const clamp01 = (x: number) => Math.min(1, Math.max(0, x));

export function categoricalDrift(baseline: CategoricalProfile, current: CategoricalProfile): CategoricalDrift {
  const b = new Map(baseline.top);
  const c = new Map(current.top);
  const keys = [...new Set([...b.keys(), ...c.keys()])];
  const rows: [number[], number[]] = [keys.map((k) => b.get(k) ?? 0), keys.map((k) => c.get(k) ?? 0)];
  const exact = baseline.other === 0 && current.other === 0;
  if (!exact) {
    rows[0].push(baseline.other);
    rows[1].push(current.other);
  }
  // Cells empty on both sides carry no information (and would divide by zero): dropped.
  const keep = rows[0].map((x, i) => x + rows[1][i]! > 0);
  const bs = rows[0].filter((_, i) => keep[i]);
  const cs = rows[1].filter((_, i) => keep[i]);
  return { kind: 'categorical', chiSquare: chiSquare(bs, cs), jensenShannon: jensenShannon(bs, cs), exact };
}

function chiSquare(b: number[], c: number[]): CategoricalDrift['chiSquare'] {
  const nb = b.reduce((x, y) => x + y, 0);
  const nc = c.reduce((x, y) => x + y, 0);
  const n = nb + nc;
  const dof = b.length - 1;
  if (dof < 1) return { statistic: 0, pValue: 1, dof: 0 };
  let stat = 0;
  for (let i = 0; i < b.length; i++) {
    const col = b[i]! + c[i]!;
    const eb = (nb * col) / n;
    const ec = (nc * col) / n;
    stat += (b[i]! - eb) ** 2 / eb + (c[i]! - ec) ** 2 / ec;
  }
  return { statistic: stat, pValue: gammaQ(dof / 2, stat / 2), dof };
}

function jensenShannon(b: number[], c: number[]): number {
  const nb = b.reduce((x, y) => x + y, 0);
  const nc = c.reduce((x, y) => x + y, 0);
  let div = 0;
  for (let i = 0; i < b.length; i++) {
    const p = b[i]! / nb;
    const q = c[i]! / nc;
    const m = (p + q) / 2;
    if (p > 0) div += (p * Math.log2(p / m)) / 2;
    if (q > 0) div += (q * Math.log2(q / m)) / 2;
  }
  return Math.sqrt(clamp01(div));
}

/** ln Γ(x), Lanczos (g = 7, n = 9). */
function lnGamma(x: number): number {
  const g = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905, -0.13857109526572012,
    9.9843695780195716e-6, 1.5056327351493116e-7,
  ];
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - lnGamma(1 - x);
  const y = x - 1;
  let a = g[0]!;
  const t = y + 7.5;
  for (let i = 1; i < 9; i++) a += g[i]! / (y + i);
  return 0.5 * Math.log(2 * Math.PI) + (y + 0.5) * Math.log(t) - t + Math.log(a);
}

/** The regularized upper incomplete gamma Q(a, x): a series below a + 1, a continued fraction above. */
export function gammaQ(a: number, x: number): number {
  if (x <= 0) return 1;
  const lead = -x + a * Math.log(x) - lnGamma(a);
  if (x < a + 1) {
    let term = 1 / a;
    let s = term;
    for (let n = 1; n < 1000 && Math.abs(term) > Math.abs(s) * 1e-15; n++) s += term *= x / (a + n);
    return clamp01(1 - s * Math.exp(lead));
  }
  const tiny = 1e-300;
  let bq = x + 1 - a;
  let cq = 1 / tiny;
  let dq = 1 / bq;
  let h = dq;
  for (let i = 1; i < 1000; i++) {
    const an = -i * (i - a);
    bq += 2;
    dq = an * dq + bq;
    if (Math.abs(dq) < tiny) dq = tiny;
    cq = bq + an / cq;
    if (Math.abs(cq) < tiny) cq = tiny;
    dq = 1 / dq;
    const delta = dq * cq;
    h *= delta;
    if (Math.abs(delta - 1) < 1e-15) break;
  }
  return clamp01(Math.exp(lead) * h);
}

export interface DriftThresholds {
  /** Breach when PSI is above (default 0.2, the usual "significant shift"). */
  psi?: number;
  /** Breach when the KS statistic is above (no default). */
  ks?: number;
  /** Breach when the chi-square p-value is below (no default: with large counts every p-value is tiny). */
  chiSquarePValue?: number;
  /** Breach when the Jensen–Shannon distance is above (default 0.1). */
  jensenShannon?: number;
}

export const defaultThresholds: Required<Pick<DriftThresholds, 'psi' | 'jensenShannon'>> = { psi: 0.2, jensenShannon: 0.1 };

/** Which thresholds a column's statistics cross (empty: no breach). */
export function breachesOf(drift: ColumnDrift, given: DriftThresholds = {}): string[] {
  // A threshold given as undefined (an input field left out) keeps its default.
  const t = {
    psi: given.psi ?? defaultThresholds.psi,
    jensenShannon: given.jensenShannon ?? defaultThresholds.jensenShannon,
    ks: given.ks,
    chiSquarePValue: given.chiSquarePValue,
  };
  const out: string[] = [];
  if (drift.kind === 'numeric') {
    if (drift.psi > t.psi) out.push(`PSI ${drift.psi.toFixed(3)} > ${t.psi}`);
    if (t.ks !== undefined && drift.ks.statistic > t.ks) out.push(`KS ${drift.ks.statistic.toFixed(3)} > ${t.ks}`);
  } else if (drift.kind === 'categorical') {
    if (drift.jensenShannon > t.jensenShannon) out.push(`Jensen–Shannon ${drift.jensenShannon.toFixed(3)} > ${t.jensenShannon}`);
    if (t.chiSquarePValue !== undefined && drift.chiSquare.pValue < t.chiSquarePValue)
      out.push(`chi-square p ${drift.chiSquare.pValue.toExponential(2)} < ${t.chiSquarePValue}`);
  }
  return out;
}

export interface DriftQuery {
  /** namespace/name */
  dataset: string;
  version: number;
  baselineVersion: number;
  /** Only these columns (default: every column); unknown, unreadable and unprofiled ones are all simply absent. */
  columns?: string[];
  thresholds?: DriftThresholds;
}

export interface ColumnDriftResult {
  column: string;
  drift: ColumnDrift;
  /** The thresholds crossed, in words (empty: none). */
  breaches: string[];
}

export interface DatasetDrift {
  dataset: string;
  version: number;
  baselineVersion: number;
  columns: ColumnDriftResult[];
}

/**
 * Drift of a dataset version against a baseline version, per column that both profiles have and the reader may
 * preview (the monitors' DRIFT rule passes the monitor owner as the reader, so nothing is computed over a column
 * the owner may not read). A column withheld answers exactly like one without a profile: absent. One audit record
 * (`data.drift`) with the columns compared; `audit: false` for callers that audit the evaluation themselves.
 */
export async function driftOf(db: Db, reader: ProfileReader, query: DriftQuery, options: { audit?: boolean } = {}): Promise<DatasetDrift> {
  for (const [what, v] of [
    ['version', query.version],
    ['baselineVersion', query.baselineVersion],
  ] as const)
    if (!Number.isSafeInteger(v) || v < 1) throw badInput(`${what} must be a version number (1, 2, …).`);
  const quiet = { audit: false };
  const [current, baseline] = await Promise.all([
    readProfile(db, reader, query.dataset, query.version, quiet),
    readProfile(db, reader, query.dataset, query.baselineVersion, quiet),
  ]);
  const wanted = query.columns ? new Set(query.columns) : null;
  const base = new Map(baseline.columns.map((c) => [c.column, c.profile]));
  const columns = current.columns.flatMap(({ column, profile }) => {
    const b = base.get(column);
    if (!b || (wanted && !wanted.has(column))) return [];
    const drift = columnDrift(b, profile);
    return [{ column, drift, breaches: breachesOf(drift, query.thresholds) }];
  });
  if (options.audit !== false)
    await audit(db, {
      identity: reader.identity,
      action: 'data.drift',
      decision: 'allow',
      subject: `dataset:${query.dataset}`,
      rule: 'profiles of columns within the reader’s preview policy',
      details: { version: query.version, baseline: query.baselineVersion, columns: columns.map((c) => c.column) },
    });
  return { dataset: query.dataset, version: query.version, baselineVersion: query.baselineVersion, columns };
}

/**
 * The version of `dataset` a model version was trained on, as its lineage names it (the newest, if it read
 * several). Null when the model version read no version of that dataset.
 */
export async function trainingVersionOf(
  db: Db,
  modelVersionRef: string,
  dataset: string,
): Promise<{ modelVersion: Awaited<ReturnType<typeof findModelVersion>>['version']; baselineVersion: number | null }> {
  const { version } = await findModelVersion(db, modelVersionRef);
  const read = (await columnsRead(db, [version.id])).get(version.id) ?? [];
  const versions = read.filter((r) => r.dataset === dataset).map((r) => r.version);
  return { modelVersion: version, baselineVersion: versions.length ? Math.max(...versions) : null };
}
