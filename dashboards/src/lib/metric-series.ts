// Metrics a task reports, one series per name, x = the reported step (or the arrival order).

export interface Series {
  x: number[];
  y: number[];
}

export class MetricSeries {
  series = new Map<string, Series>();
  version = 0;
  private count = 0;

  add(metrics: unknown, step: number | null | undefined) {
    if (!metrics || typeof metrics !== 'object') return;
    this.count++;
    const x = typeof step === 'number' ? step : this.count;
    for (const [name, value] of Object.entries(metrics as Record<string, unknown>)) {
      if (typeof value !== 'number' || !Number.isFinite(value)) continue;
      let s = this.series.get(name);
      if (!s) this.series.set(name, (s = { x: [], y: [] }));
      // keep x ascending (uPlot needs it): a step reported again replaces its value
      const last = s.x.length - 1;
      if (last >= 0 && x <= s.x[last]!) {
        const i = s.x.indexOf(x);
        if (i >= 0) s.y[i] = value;
        continue;
      }
      s.x.push(x);
      s.y.push(value);
    }
    this.version++;
  }
}
