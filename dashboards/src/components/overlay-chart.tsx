// One metric of several runs on one uPlot chart (the run page's chart library): the runs' series share the steps
// compareRuns bucketed them by, each drawn as its own line; a run without a point at a step spans the gap.
import { useLayoutEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { count } from '../lib/format';

export const runColors = ['#1d4ed8', '#dc2626', '#059669', '#d97706', '#7c3aed', '#0891b2', '#db2777', '#4b5563', '#65a30d', '#9333ea'];

export interface RunLine {
  runId: string;
  label: string;
  color: string;
  points: { step: number; value: unknown }[];
}

/** The runs' points on one x axis of every step any of them has (NaN and ±Infinity are not drawn). */
export function aligned(lines: readonly RunLine[]): uPlot.AlignedData {
  const steps = [...new Set(lines.flatMap((l) => l.points.map((p) => p.step)))].sort((a, b) => a - b);
  const index = new Map(steps.map((s, i) => [s, i]));
  const ys = lines.map((l) => {
    const y: (number | null)[] = steps.map(() => null);
    for (const p of l.points) {
      const v = typeof p.value === 'number' ? p.value : Number.NaN;
      if (Number.isFinite(v)) y[index.get(p.step)!] = v;
    }
    return y;
  });
  return [steps, ...ys];
}

export function OverlayChart({ metric, lines }: { metric: string; lines: RunLine[] }) {
  const holder = useRef<HTMLDivElement>(null);
  const key = `${metric}\u0000${lines.map((l) => `${l.runId}:${l.points.length}`).join(',')}`;
  useLayoutEffect(() => {
    const el = holder.current!;
    const plot = new uPlot(
      {
        width: Math.max(240, el.clientWidth),
        height: 200,
        legend: { show: true },
        cursor: { drag: { x: false, y: false } },
        scales: { x: { time: false } },
        axes: [
          { label: 'step', stroke: '#4b5563', grid: { stroke: '#e5e7eb' }, ticks: { stroke: '#e5e7eb' } },
          { stroke: '#4b5563', grid: { stroke: '#e5e7eb' }, ticks: { stroke: '#e5e7eb' }, size: 56 },
        ],
        series: [
          { label: 'step' },
          ...lines.map((l) => ({ label: l.label, stroke: l.color, width: 2, spanGaps: true, points: { show: l.points.length < 60 } })),
        ],
      },
      aligned(lines),
      el,
    );
    const observer = new ResizeObserver(() => plot.setSize({ width: Math.max(240, el.clientWidth), height: 200 }));
    observer.observe(el);
    return () => {
      observer.disconnect();
      plot.destroy();
    };
  }, [key]);
  const drawn = lines.filter((l) => l.points.length > 0);
  return (
    <figure class="chart" data-metric={metric} data-runs={drawn.length}>
      <figcaption>
        <strong>{metric}</strong> <span class="muted">· {count(drawn.length, 'run')}</span>
      </figcaption>
      <div ref={holder} class="chart-plot" role="img" aria-label={`Chart of ${metric} by step for ${drawn.map((l) => l.label).join(', ')}`} />
    </figure>
  );
}
