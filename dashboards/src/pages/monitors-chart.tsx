// A monitor's metric over time (uPlot): the bucket means as a line, the buckets beyond a threshold rule's bound as
// red points (breaches), alert openings as red ticks, and annotated one-off windows shaded.
import { useLayoutEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

export interface ChartInput {
  metric: string;
  /** Bucket starts, epoch seconds, and their means. */
  x: number[];
  y: number[];
  bounds: { above: number | null; below: number | null }[];
  /** Epoch seconds. */
  alertsAt: number[];
  windows: { from: number; to: number }[];
}

export const breachesOf = (c: Pick<ChartInput, 'y' | 'bounds'>): (number | null)[] =>
  c.y.map((v) => (c.bounds.some((b) => (b.above !== null && v > b.above) || (b.below !== null && v < b.below)) ? v : null));

export function MonitorChart({ input }: { input: ChartInput }) {
  const holder = useRef<HTMLDivElement>(null);
  const breaches = breachesOf(input);
  const breachCount = breaches.filter((b) => b !== null).length;
  useLayoutEffect(() => {
    const el = holder.current!;
    const shade = (u: uPlot) => {
      const { ctx, bbox } = u;
      ctx.save();
      ctx.fillStyle = 'rgba(250, 204, 21, 0.25)';
      for (const w of input.windows) {
        const left = u.valToPos(w.from, 'x', true);
        const right = u.valToPos(w.to, 'x', true);
        ctx.fillRect(left, bbox.top, Math.max(2, right - left), bbox.height);
      }
      ctx.fillStyle = '#b91c1c';
      for (const at of input.alertsAt) ctx.fillRect(u.valToPos(at, 'x', true) - 1, bbox.top, 2, 8);
      ctx.restore();
    };
    const plot = new uPlot(
      {
        width: Math.max(240, el.clientWidth),
        height: 220,
        legend: { show: false },
        cursor: { drag: { x: false, y: false } },
        axes: [
          { stroke: '#4b5563', grid: { stroke: '#e5e7eb' } },
          { stroke: '#4b5563', grid: { stroke: '#e5e7eb' }, size: 56 },
        ],
        series: [
          {},
          { label: input.metric, stroke: '#1d4ed8', width: 2, points: { show: input.x.length < 60 } },
          { label: 'breach', stroke: '#b91c1c', width: 0, paths: () => null, points: { show: true, size: 9, fill: '#b91c1c', stroke: '#b91c1c' } },
        ],
        hooks: { drawClear: [shade] },
      },
      [input.x, input.y, breaches],
      el,
    );
    const observer = new ResizeObserver(() => plot.setSize({ width: Math.max(240, el.clientWidth), height: 220 }));
    observer.observe(el);
    return () => {
      observer.disconnect();
      plot.destroy();
    };
  }, [input]);
  return (
    <figure class="chart" data-metric={input.metric} data-breaches={breachCount} data-windows={input.windows.length}>
      <figcaption>
        <strong>{input.metric}</strong>{' '}
        <span class="muted">
          {input.x.length} buckets · <span data-testid="breach-count">{breachCount} breaching</span> · {input.alertsAt.length} alert(s) opened ·{' '}
          {input.windows.length} annotated window(s) shaded
        </span>
      </figcaption>
      <div ref={holder} role="img" aria-label={`${input.metric} over time: ${breachCount} breaching bucket(s)`} />
    </figure>
  );
}
