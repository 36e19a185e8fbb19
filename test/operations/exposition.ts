// A small reader of Prometheus' text exposition format for the metrics tests: every sample line as a series key
// (`name{a="x",b="y"}`, labels sorted) and its value; `# HELP` and `# TYPE` lines kept by metric name.
export interface Exposition {
  samples: Map<string, number>;
  help: Map<string, string>;
  types: Map<string, string>;
  /** A sample's value (0 when absent): `value('atelier_runs', { status: 'QUEUED' })`. */
  value(name: string, labels?: Record<string, string>): number;
  /** Every label set of the series called `name`. */
  series(name: string): Record<string, string>[];
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

export const seriesKey = (name: string, labels: Record<string, string> = {}) => {
  const keys = Object.keys(labels).sort();
  return keys.length ? `${name}{${keys.map((k) => `${k}="${labels[k]}"`).join(',')}}` : name;
};

export function parseExposition(text: string): Exposition {
  const samples = new Map<string, number>();
  const help = new Map<string, string>();
  const types = new Map<string, string>();
  const labelSets = new Map<string, Record<string, string>[]>();
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const meta = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line);
    if (meta) {
      (meta[1] === 'HELP' ? help : types).set(meta[2]!, meta[3]!);
      continue;
    }
    if (line.startsWith('#')) continue;
    const m = LINE.exec(line);
    if (!m) throw new Error(`not an exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(LABEL)) labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    // As Prometheus reads them (Go's ParseFloat): NaN and Inf in any case (prom-client writes an empty mean as "Nan").
    const raw = m[3]!.toLowerCase();
    const value = raw === 'nan' ? Number.NaN : /^[+-]?inf$/.test(raw) ? (raw.startsWith('-') ? -Infinity : Infinity) : Number(raw);
    if (Number.isNaN(value) && raw !== 'nan') throw new Error(`not a sample value: ${line}`);
    samples.set(seriesKey(m[1]!, labels), value);
    labelSets.set(m[1]!, [...(labelSets.get(m[1]!) ?? []), labels]);
  }
  return {
    samples,
    help,
    types,
    value: (name, labels) => samples.get(seriesKey(name, labels)) ?? 0,
    series: (name) => labelSets.get(name) ?? [],
  };
}
