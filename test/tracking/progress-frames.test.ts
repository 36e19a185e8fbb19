// Frames (ATELIER_PROGRESS_FRAMES, what the local executor sets): the helpers send packed numbers as raw bytes after
// their line rather than base64 in it. Read by the host's own reader (executors/local/pipes.ts), they are the same
// points in the same order as the base64 lines, from the Node and the Python helper alike, whatever the reads' sizes;
// a malformed frame is reported and the lines after it are still read.
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { progressSplitter } from '../../executors/local/pipes';
import type { TaskContext } from '../../plugins/sdk';

const root = path.resolve(import.meta.dirname, '../..');
const FRAMES = { ATELIER_PROGRESS_PACKED: '1', ATELIER_PROGRESS_STEP_START: '1', ATELIER_PROGRESS_FRAMES: '1' };
const BASE64 = { ATELIER_PROGRESS_PACKED: '1', ATELIER_PROGRESS_STEP_START: '1' };

/** What the host's reader hands a task context from `bytes`, pushed in pieces of `piece` bytes. */
function read(bytes: Buffer, piece = bytes.length || 1) {
  const points: [string, number, number | null][] = [];
  const logs: string[] = [];
  const outputs: [string, unknown][] = [];
  let seriesCalls = 0;
  const ctx = {
    metric: (m: Record<string, number>, step?: number | null) => {
      for (const [name, v] of Object.entries(m)) points.push([name, v, step ?? null]);
    },
    metricSeries(name: string, steps: ArrayLike<number> | null, values: ArrayLike<number>) {
      seriesCalls++;
      for (let i = 0; i < values.length; i++) points.push([name, values[i]!, steps && !Number.isNaN(steps[i]) ? steps[i]! : null]);
    },
    output: (name: string, value: unknown) => outputs.push([name, value]),
    log: (_stream: string, line: string) => logs.push(line),
    progress: () => undefined,
  } as unknown as TaskContext;
  const splitter = progressSplitter(() => ctx);
  for (let at = 0; at < bytes.length; at += piece) splitter.push(bytes.subarray(at, at + piece));
  splitter.end();
  return { points, logs, outputs, seriesCalls };
}

/** Runs `code` with the helper copied beside it and fd 3 a file; the bytes it wrote there. */
function helperBytes(runtime: 'node' | 'python3', code: string, env: Record<string, string>): Buffer {
  const helper = runtime === 'node' ? 'progress.js' : 'atelier_progress.py';
  const dir = mkdtempSync(path.join(tmpdir(), 'atelier-frames-'));
  try {
    writeFileSync(path.join(dir, helper), readFileSync(path.join(root, 'executors/local', helper)));
    const main = runtime === 'node' ? 'main.mjs' : 'main.py';
    writeFileSync(path.join(dir, main), code);
    const fd = openSync(path.join(dir, 'progress.out'), 'w');
    try {
      execFileSync(runtime === 'node' ? process.execPath : 'python3', [main], {
        cwd: dir,
        env: { ...process.env, ATELIER_PROGRESS_FD: '3', ...env },
        stdio: ['ignore', 'ignore', 'inherit', fd],
      });
    } finally {
      closeSync(fd);
    }
    return readFileSync(path.join(dir, 'progress.out'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const nodeMixed = `import { flush, metric, metricSeries, output } from './progress.js';
metric({ loss: 1, acc: 0.5 }, 0); metric({ loss: NaN, acc: Infinity }, 1); metric({ loss: -Infinity }); metric({ odd: 'two' }, 2);
for (let i = 0; i < 5000; i++) metric({ loss: 1 / (i + 1) }, 10 + i);
flush();
metric({ h: 1 }, 0.5); metric({ h: 2 }, 1.5); metric({ n: 3 });
metricSeries('s', new Float64Array([5, 6, 7]), new Float64Array([1, 2, 3]));
metricSeries('u', null, new Float64Array([4, 5]));
output('done', 1);`;

const pythonMixed = `import atelier_progress as a
a.metric({"loss": 1, "acc": 0.5}, 0)
a.metric({"loss": float("nan"), "acc": float("inf")}, 1)
a.metric({"loss": float("-inf")})
a.metric({"odd": "two"}, 2)
for i in range(2500):
    a.metric({"loss": 1 / (i + 1)}, 10 + i)
a.metric_series("s", [5, 6, 7], [1, 2, 3])
a.output("done", 1)
`;

describe('frames from the helpers', () => {
  for (const [runtime, code] of [
    ['node', nodeMixed],
    ['python3', pythonMixed],
  ] as const) {
    it(`from the ${runtime === 'node' ? 'Node' : 'Python'} helper are the base64 lines' points, in order, read in any pieces`, () => {
      const framed = helperBytes(runtime, code, FRAMES);
      const base64 = helperBytes(runtime, code, BASE64);
      expect(framed.length).toBeLessThan(base64.length);
      expect(framed.includes('"frame"')).toBe(true);
      expect(base64.includes('"frame"')).toBe(false);
      const want = read(base64);
      expect(want.points.length).toBeGreaterThan(2500);
      expect(want.logs).toEqual([expect.stringMatching(/metric "odd" is not a number in 1 of its values/)]);
      const why = (logs: string[]) => logs.map((log) => log.replace(/\): .*/s, ')'));
      for (const piece of [framed.length, 4096, 1000, 7]) {
        const got = read(framed, piece);
        expect(got.points).toEqual(want.points);
        expect(why(got.logs)).toEqual(why(want.logs));
        expect(got.outputs).toEqual([['done', 1]]);
      }
    });
  }

  it('carry a large typed series from the Node helper in frames under the host’s limit, in order', () => {
    const bytes = helperBytes(
      'node',
      `import { metric, metricSeries, output } from './progress.js';
metric({ big: -1 }, 100);
const values = new Float64Array(40_005).map((_, i) => i);
metricSeries('big', null, values.subarray(5));
metricSeries('big', new Float64Array([7, 8]), new Float64Array([Number.NaN, 1.5]));
output('done', 1);`,
      FRAMES,
    );
    // A frame's line follows the bytes of the frame before it: found by its start, not after a newline.
    const sizes = [...bytes.toString('latin1').matchAll(/\{"frame":(\d+),/g)].map((m) => Number(m[1]));
    expect(sizes.length).toBeGreaterThan(3);
    for (const size of sizes) expect(size).toBeLessThan(1 << 20);
    const got = read(bytes, 65536);
    expect(got.logs).toEqual([]);
    expect(got.points.length).toBe(40_003);
    expect(got.points[0]).toEqual(['big', -1, 100]);
    expect(got.points.slice(1, -2).every(([, v, step], i) => v === i + 5 && step === null)).toBe(true);
    expect(got.points.slice(-2)).toEqual([
      ['big', Number.NaN, 7],
      ['big', 1.5, 8],
    ]);
  });
});

describe("the host's frame reader", () => {
  const f64 = (...xs: number[]) => Buffer.from(new Float64Array(xs).buffer);
  const frame = (head: object, bytes: Buffer) => Buffer.concat([Buffer.from(`${JSON.stringify(head)}\n`), bytes]);
  const line = (o: object) => Buffer.from(`${JSON.stringify(o)}\n`);
  const after = line({ output: { name: 'after', value: 1 } });

  it('skips a frame larger than a frame may hold, saying so, and reads on after it', () => {
    const big = 2 << 20;
    const got = read(Buffer.concat([frame({ frame: big, series: [{ name: 'x', valuesAt: 0, count: 1 }] }, Buffer.alloc(big, 10)), after]), 65536);
    expect(got.points).toEqual([]);
    expect(got.logs).toEqual([expect.stringMatching(/a frame of 2097152 bytes, over the 1048576 one may hold: skipped/)]);
    expect(got.outputs).toEqual([['after', 1]]);
  });

  it('refuses a series whose numbers lie outside its frame, or with two kinds of steps, and applies nothing of it', () => {
    const got = read(
      Buffer.concat([
        frame(
          {
            frame: 16,
            series: [
              { name: 'out', valuesAt: 8, count: 2 },
              { name: 'both', valuesAt: 0, count: 1, stepStart: 0, stepsAt: 8 },
              { name: 'neg', valuesAt: -8, count: 1 },
              { name: 'ok', valuesAt: 0, stepsAt: 8, count: 1 },
            ],
          },
          f64(2.5, 7),
        ),
        after,
      ]),
    );
    expect(got.points).toEqual([['ok', 2.5, 7]]);
    expect(got.logs).toHaveLength(3);
    for (const [i, name] of ['out', 'both', 'neg'].entries()) expect(got.logs[i]).toMatch(new RegExp(`metric series "${name}" of a frame needs`));
    expect(got.outputs).toEqual([['after', 1]]);
  });

  it('reports a frame cut short at the end of the stream, and one without a size as an ignored line', () => {
    const short = read(frame({ frame: 24, series: [{ name: 'x', valuesAt: 0, count: 3 }] }, f64(1)));
    expect(short.points).toEqual([]);
    expect(short.logs).toEqual([expect.stringMatching(/a progress frame cut short \(8 of its 24 bytes\)/)]);
    const sizeless = read(Buffer.concat([line({ frame: 'many', series: [] }), after]));
    expect(sizeless.logs).toEqual([expect.stringMatching(/a frame needs "frame"/)]);
    expect(sizeless.outputs).toEqual([['after', 1]]);
  });
});

describe('a hostile frame', () => {
  it('has its bytes read once: series naming the same bytes again are ignored, not multiplied', () => {
    const bytes = Buffer.alloc(1 << 20); // a megabyte: 131,072 float64s
    const count = bytes.length / 8;
    const series = Array.from({ length: 20 }, (_, i) => ({ name: `m${i}`, valuesAt: 0, count }));
    const { points, logs } = read(Buffer.concat([Buffer.from(`${JSON.stringify({ frame: bytes.length, series })}\n`), bytes]));
    expect(points.length).toBe(count); // the first series only (20 ×: 2.6 million; a 1 MB line can name ~20,000 such series)
    expect(logs.filter((l) => /read already/.test(l))).toHaveLength(1);
  });

  it('claiming a size that is no size, or past the limit, is reported and the lines after it still read', () => {
    const lines = [
      { frame: 'NaN', series: [] },
      { frame: -1, series: [] },
      { frame: 1e300, series: [] },
      { frame: 2.5, series: [] },
      { metrics: { after: 1 } },
    ];
    const { points, logs } = read(Buffer.from(lines.map((l) => `${JSON.stringify(l)}\n`).join('')));
    expect(points).toEqual([['after', 1, null]]);
    expect(logs.filter((l) => /frame/.test(l))).toHaveLength(4);
  });
});
