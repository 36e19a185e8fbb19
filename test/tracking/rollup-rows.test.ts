// rollupRows (the rollup rows a batch of points contributes, folded in JavaScript) against a plain reference: per level
// and bucket, the count, the lowest and highest number by [value, seq, step] and the first and last point by
// [key, seq], with ties of equal values, NaN (never an extreme; a bucket of NaN alone has none) and ±Infinity.
import { expect, it } from 'vitest';
import { ROLLUP_SHIFTS, rollupRows } from '../../server/tracking/rollups';

type P = { seq: number; step: number; value: number };
const lexLess = (a: number[], b: number[]) => {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! < b[i]!;
  return false;
};

function reference(points: P[]) {
  const rows: unknown[] = [];
  for (const axis of ['seq', 'step'] as const)
    for (const shift of ROLLUP_SHIFTS[axis]) {
      const byBucket = new Map<number, P[]>();
      for (const p of points) {
        const bucket = Math.floor((axis === 'seq' ? p.seq : p.step) / 2 ** shift);
        byBucket.set(bucket, [...(byBucket.get(bucket) ?? []), p]);
      }
      for (const [bucket, ps] of byBucket) {
        const numbers = ps.filter((p) => !Number.isNaN(p.value)).map((p) => [p.value, p.seq, p.step]);
        const keyed = ps.map((p) => [axis === 'seq' ? p.seq : p.step, p.seq, p.step, p.value]);
        const pick = (xs: number[][], less: boolean) => xs.reduce((m, x) => ((less ? lexLess(x, m) : lexLess(m, x)) ? x : m));
        rows.push({
          axis,
          shift,
          bucket,
          n: ps.length,
          lo: numbers.length ? pick(numbers, true) : null,
          hi: numbers.length ? pick(numbers, false) : null,
          first: pick(keyed, true),
          last: pick(keyed, false),
        });
      }
    }
  return rows;
}

it('folds a batch as a plain reference does: ties, NaN and ±Infinity, negative steps, any order', () => {
  const values = [0, 1, -1, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY];
  let seed = 7;
  const random = () => (seed = (seed * 48271) % 2147483647) / 2147483647;
  for (let trial = 0; trial < 20; trial++) {
    const n = 1 + Math.floor(random() * 600);
    const points: P[] = Array.from({ length: n }, (_, i) => ({
      seq: trial % 2 ? i * 3 : n - i,
      step: Math.floor(random() * 400) - 150,
      value: random() < 0.7 ? values[Math.floor(random() * values.length)]! : random(),
    }));
    const got = rollupRows([{ taskId: 't', name: 'm', attempt: 1, points }]).map(({ axis, shift, bucket, n: count, lo, hi, first, last }) => ({
      axis,
      shift,
      bucket,
      n: count,
      lo,
      hi,
      first,
      last,
    }));
    const key = (r: any) => `${r.axis}:${r.shift}:${r.bucket}`;
    const sorted = (rows: any[]) => [...rows].sort((a, b) => (key(a) < key(b) ? -1 : 1));
    expect(sorted(got)).toEqual(sorted(reference(points)));
  }
});
