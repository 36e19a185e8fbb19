// Metric charts for a task, one uPlot chart per metric name: its stored history, redrawn as live points stream in.
import { useEffect, useLayoutEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { count } from '../lib/format';
import type { MetricSeries, Series } from '../lib/metric-series';

export function MetricCharts({
  metrics,
  version,
  running,
  loading,
}: {
  metrics: MetricSeries | undefined;
  version: number;
  running: boolean;
  loading: boolean;
}) {
  const names = metrics ? [...metrics.series.keys()].sort() : [];
  if (!metrics || names.length === 0) {
    return (
      <p class="muted empty-inline">
        {loading ? 'Loading metrics…' : running ? 'No metrics reported yet; charts appear here as the task reports them.' : 'This task reported no metrics.'}
      </p>
    );
  }
  return (
    <div class="charts">
      {names.map((name) => (
        <Chart key={name} name={name} series={metrics.series.get(name)!} version={version} />
      ))}
    </div>
  );
}

function Chart({ name, series, version }: { name: string; series: Series; version: number }) {
  const holder = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);

  useLayoutEffect(() => {
    const el = holder.current!;
    const width = Math.max(240, el.clientWidth);
    plot.current = new uPlot(
      {
        width,
        height: 180,
        legend: { show: false },
        cursor: { drag: { x: false, y: false } },
        scales: { x: { time: false } },
        axes: [
          { label: 'step', stroke: '#4b5563', grid: { stroke: '#e5e7eb' }, ticks: { stroke: '#e5e7eb' } },
          { stroke: '#4b5563', grid: { stroke: '#e5e7eb' }, ticks: { stroke: '#e5e7eb' }, size: 56 },
        ],
        series: [{}, { label: name, stroke: '#1d4ed8', width: 2, points: { show: series.x.length < 60 } }],
      },
      [series.x, series.y],
      el,
    );
    const observer = new ResizeObserver(() => plot.current?.setSize({ width: Math.max(240, el.clientWidth), height: 180 }));
    observer.observe(el);
    return () => {
      observer.disconnect();
      plot.current?.destroy();
      plot.current = null;
    };
  }, [name]);

  useEffect(() => {
    plot.current?.setData([series.x.slice(), series.y.slice()]);
  }, [version]);

  const latest = series.y.at(-1);
  return (
    <figure class="chart" data-metric={name}>
      <figcaption>
        <strong>{name}</strong>{' '}
        <span class="muted">
          {latest === undefined ? '' : `latest ${formatValue(latest)} at step ${series.x.at(-1)}`} · {count(series.x.length, 'point')}
        </span>
      </figcaption>
      <div
        ref={holder}
        class="chart-plot"
        role="img"
        aria-label={`Chart of ${name} by step, ${count(series.x.length, 'point')}${latest === undefined ? '' : `, latest ${formatValue(latest)}`}`}
      />
    </figure>
  );
}

const formatValue = (v: number) => (Math.abs(v) >= 1000 || Number.isInteger(v) ? String(v) : v.toPrecision(4));
