// Metrics of a task, one series per name: stored history (downsampled by the server) and live points merged by
// their place in the task's report order (`seq`), so a point seen in both counts once. Charted by step (steps may
// arrive in any order); NaN and ±Infinity (sent as strings) are not drawn.

export interface Series {
  x: number[];
  y: number[];
}

export interface PointIn {
  name: string;
  step: number;
  value: unknown;
  /** The point's place in its attempt's order; absent for an old-style event (then arrival order). */
  seq?: number | null;
}

export class MetricSeries {
  version = 0;
  private points = new Map<string, Map<number, { step: number; value: number }>>();
  private built = new Map<string, Series>();
  private builtVersion = -1;
  private arrivals = 0;

  /** Points of a live event or of the stored history. */
  addPoints(points: readonly PointIn[]) {
    for (const p of points) {
      const value = typeof p.value === 'number' ? p.value : Number.NaN;
      let byName = this.points.get(p.name);
      if (!byName) this.points.set(p.name, (byName = new Map()));
      // old-style events carry no seq: number them after anything stored
      byName.set(typeof p.seq === 'number' ? p.seq : Number.MAX_SAFE_INTEGER / 2 + this.arrivals++, { step: p.step, value });
    }
    this.version++;
  }

  /** An old-style live event: `{ name: value }` at one step. */
  add(metrics: unknown, step: number | null | undefined) {
    if (!metrics || typeof metrics !== 'object') return;
    const at = typeof step === 'number' ? step : this.arrivals;
    this.addPoints(Object.entries(metrics as Record<string, unknown>).map(([name, value]) => ({ name, value, step: at })));
  }

  /** One chartable series per name: finite values, ascending step (a step reported twice keeps its later value). */
  get series(): Map<string, Series> {
    if (this.builtVersion === this.version) return this.built;
    const out = new Map<string, Series>();
    for (const [name, byName] of this.points) {
      const byStep = new Map<number, number>();
      for (const seq of [...byName.keys()].sort((a, b) => a - b)) {
        const p = byName.get(seq)!;
        if (Number.isFinite(p.value)) byStep.set(p.step, p.value);
      }
      const x = [...byStep.keys()].sort((a, b) => a - b);
      if (x.length) out.set(name, { x, y: x.map((s) => byStep.get(s)!) });
    }
    this.built = out;
    this.builtVersion = this.version;
    return out;
  }
}
