import { writeFileSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import { afterAll } from 'vitest';

const counts = new Map<string, { n: number; rows: number; ms: number }>();
for (const m of ['query'] as const) {
  const orig = (PGlite.prototype as any)[m];
  (PGlite.prototype as any)[m] = async function (this: any, sql: string, ...rest: any[]) {
    const t0 = performance.now();
    const r = await orig.call(this, sql, ...rest);
    const k = String(sql).replace(/\s+/g, ' ').slice(0, 160);
    const c = counts.get(k) ?? { n: 0, rows: 0, ms: 0 };
    c.n++;
    c.rows += r?.rows?.length ?? 0;
    c.ms += performance.now() - t0;
    counts.set(k, c);
    return r;
  };
}
afterAll(() => {
  const list = [...counts]
    .sort((a, b) => b[1].ms - a[1].ms)
    .slice(0, 30)
    .map(([k, v]) => `${v.n}\t${v.rows}\t${v.ms.toFixed(0)}ms\t${k}`);
  const tot = [...counts.values()].reduce((a, v) => ({ n: a.n + v.n, rows: a.rows + v.rows, ms: a.ms + v.ms }), { n: 0, rows: 0, ms: 0 });
  writeFileSync('/tmp/rows.txt', `total ${tot.n} queries ${tot.rows} rows ${tot.ms.toFixed(0)} ms\n${list.join('\n')}\n`);
});
