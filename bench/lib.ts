// Shared benchmark helpers: percentiles, a table printer, and the result file.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export interface Row {
  bench: string;
  metric: string;
  value: number;
  unit: string;
  floor?: number;
  /** How many times the floor's cost the measured path costs (floor/value for rates, value/floor for times). */
  ratio?: number;
  note?: string;
}

export function percentile(samples: number[], p: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index] ?? NaN;
}

/** The median wall time of `request` over `samples` calls, after 3 warm-up calls. */
export async function p50(request: () => Promise<unknown>, samples: number): Promise<number> {
  for (let i = 0; i < 3; i++) await request();
  const times: number[] = [];
  for (let i = 0; i < samples; i++) {
    const start = performance.now();
    await request();
    times.push(performance.now() - start);
  }
  return percentile(times, 50);
}

export const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits;

export function printTable(rows: Row[]) {
  const header = ['bench', 'metric', 'value', 'unit', 'floor', 'cost vs floor', 'note'];
  const cells = rows.map((r) => [
    r.bench,
    r.metric,
    String(round(r.value)),
    r.unit,
    r.floor === undefined ? '' : String(round(r.floor)),
    r.ratio === undefined ? '' : `${round(r.ratio)}×`,
    r.note ?? '',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) => c.map((x, i) => x.padEnd(widths[i]!)).join('  ');
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const c of cells) console.log(line(c));
}

export async function writeResults(rows: Row[], meta: Record<string, unknown>) {
  const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'results');
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, 'latest.json');
  await writeFile(file, `${JSON.stringify({ at: new Date().toISOString(), ...meta, rows }, null, 2)}\n`);
  return file;
}

/** `npx tsx bench/FILE.ts`: when that file is the entry point (`url` is its import.meta.url), runs its bench alone and prints it. */
export function runWhenMain(url: string, bench: () => Promise<Row[]>): void {
  if (!process.argv[1] || url !== pathToFileURL(process.argv[1]).href) return;
  bench().then(
    (rows) => {
      printTable(rows);
      process.exit(0);
    },
    (error) => {
      console.error(error);
      process.exit(1);
    },
  );
}
