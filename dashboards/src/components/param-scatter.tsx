// A param against a metric, one dot per run (SVG): numeric params on a linear axis (a log one when they are all
// positive and span 100× or more, as learning rates do), text ones as evenly spaced categories. Runs lacking either
// value are listed, not drawn.
import { count } from '../lib/format';

export interface ScatterRun {
  runId: string;
  label: string;
  color: string;
  param: string | null;
  metric: number | null;
}

const W = 560;
const H = 300;
const PAD = { left: 64, right: 16, top: 16, bottom: 48 };

const ticks = (values: number[]) => {
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  return lo === hi ? [lo] : [lo, lo + (hi - lo) / 2, hi];
};
const short = (v: number) => (Math.abs(v) >= 1000 || Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(3))));

export function ParamScatter({ param, metric, runs }: { param: string; metric: string; runs: ScatterRun[] }) {
  const drawn = runs.filter((r) => r.param !== null && r.metric !== null && Number.isFinite(r.metric));
  const numeric = drawn.every((r) => r.param !== null && r.param.trim() !== '' && Number.isFinite(Number(r.param)));
  const categories = numeric ? [] : [...new Set(drawn.map((r) => r.param!))].sort();
  const raw = drawn.map((r) => Number(r.param));
  const log = numeric && raw.length > 1 && Math.min(...raw) > 0 && Math.max(...raw) / Math.min(...raw) >= 100;
  const xs = drawn.map((r, i) => (!numeric ? categories.indexOf(r.param!) : log ? Math.log10(raw[i]!) : raw[i]!));
  const ys = drawn.map((r) => r.metric!);
  const span = (values: number[]) => {
    const lo = Math.min(...values);
    const hi = Math.max(...values);
    return lo === hi ? [lo - 1, hi + 1] : [lo - (hi - lo) * 0.05, hi + (hi - lo) * 0.05];
  };
  const [x0, x1] = numeric ? span(xs) : [-0.5, Math.max(0.5, categories.length - 0.5)];
  const [y0, y1] = span(ys);
  const sx = (v: number) => PAD.left + ((v - x0!) / (x1! - x0!)) * (W - PAD.left - PAD.right);
  const sy = (v: number) => H - PAD.bottom - ((v - y0!) / (y1! - y0!)) * (H - PAD.top - PAD.bottom);
  const left = runs.filter((r) => !drawn.includes(r));
  return (
    <figure class="scatter" data-param={param} data-metric={metric}>
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={`${metric} against ${param}, ${count(drawn.length, 'run')}`}>
        <line x1={PAD.left} y1={H - PAD.bottom} x2={W - PAD.right} y2={H - PAD.bottom} stroke="#9ca3af" />
        <line x1={PAD.left} y1={PAD.top} x2={PAD.left} y2={H - PAD.bottom} stroke="#9ca3af" />
        {drawn.length > 0 &&
          ticks(ys).map((v) => (
            <text key={`y${v}`} x={PAD.left - 6} y={sy(v)} text-anchor="end" dominant-baseline="middle" class="tick">
              {short(v)}
            </text>
          ))}
        {drawn.length > 0 &&
          (numeric
            ? log
              ? [...new Set(raw)].map((v) => ({ v: Math.log10(v), label: short(v) }))
              : ticks(xs).map((v) => ({ v, label: short(v) }))
            : categories.map((c, i) => ({ v: i, label: c }))
          ).map((t) => (
            <text key={`x${t.label}`} x={sx(t.v)} y={H - PAD.bottom + 16} text-anchor="middle" class="tick">
              {t.label}
            </text>
          ))}
        <text x={(W + PAD.left) / 2} y={H - 8} text-anchor="middle" class="axis-label">
          params.{param}
          {log ? ' (log scale)' : ''}
        </text>
        <text
          x={12}
          y={PAD.top + (H - PAD.top - PAD.bottom) / 2}
          transform={`rotate(-90 12 ${PAD.top + (H - PAD.top - PAD.bottom) / 2})`}
          text-anchor="middle"
          class="axis-label"
        >
          {metric} (last)
        </text>
        {drawn.map((r, i) => (
          <circle key={r.runId} data-run-id={r.runId} cx={sx(xs[i]!)} cy={sy(ys[i]!)} r={6} fill={r.color} fill-opacity={0.85} stroke="#fff">
            <title>
              {r.label}: {param} = {r.param}, {metric} = {short(r.metric!)}
            </title>
          </circle>
        ))}
      </svg>
      {left.length > 0 && <figcaption class="muted">Not drawn (no value): {left.map((r) => r.label).join(', ')}</figcaption>}
    </figure>
  );
}
