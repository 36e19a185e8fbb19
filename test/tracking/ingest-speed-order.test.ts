// The fast logging path keeps its promises: the helpers send points as `series` columns (Node and Python alike), the
// host reads them back as the same points in the same order, every point is stored before the task's result is
// applied (the run is over only once its points are in), and the attempt's duration ends at the module's exit, not
// after the host has read and sent the points it left behind.
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { eq, sum } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyProgressLine } from '../../plugins/progress-lines';
import type { TaskContext } from '../../plugins/sdk';
import { runs, tasks } from '../../server/db/tables/runs';
import { metricBlocks } from '../../server/db/tables/tracking';
import { startTestApp, type TestApp } from '../harness/app';
import { PUBLISH } from '../harness/client';
import { metricsModuleArchive } from './metric-module';

const root = path.resolve(import.meta.dirname, '../..');

/** What the protocol lines hand a task context: each metric point and each ignored line (and, for a context that
 * takes series, how many series calls brought them). */
function recorder(options: { series?: boolean } = {}) {
  const calls: [string, number, number | null][] = [];
  const ignored: string[] = [];
  let seriesCalls = 0;
  const ctx = {
    metric: (m: Record<string, number>, step?: number | null) => calls.push([Object.keys(m)[0]!, Object.values(m)[0]!, step ?? null]),
    ...(options.series
      ? {
          metricSeries(name: string, steps: ArrayLike<number> | null, values: ArrayLike<number>) {
            seriesCalls++;
            for (let i = 0; i < values.length; i++) calls.push([name, values[i]!, steps && !Number.isNaN(steps[i]) ? steps[i]! : null]);
          },
        }
      : {}),
    output: () => undefined,
  };
  return {
    calls,
    ignored,
    seriesCalls: () => seriesCalls,
    apply: (line: string) => applyProgressLine(line, ctx as unknown as TaskContext, (why) => ignored.push(why)),
  };
}

/** Runs `code` (a module using the helper copied next to it as `helper`) with fd 3 a file; its protocol lines. */
function helperLines(runtime: 'node' | 'python3', helper: string, code: string, env: Record<string, string> = {}): string[] {
  const dir = mkdtempSync(path.join(tmpdir(), 'atelier-series-'));
  try {
    const source = path.join(root, 'executors/local', helper);
    writeFileSync(path.join(dir, helper), readFileSync(source));
    writeFileSync(path.join(dir, runtime === 'node' ? 'main.mjs' : 'main.py'), code);
    const out = path.join(dir, 'progress.out');
    const fd = openSync(out, 'w');
    try {
      execFileSync(runtime === 'node' ? process.execPath : 'python3', [runtime === 'node' ? 'main.mjs' : 'main.py'], {
        cwd: dir,
        env: { ...process.env, ATELIER_PROGRESS_FD: '3', ...env },
        stdio: ['ignore', 'ignore', 'inherit', fd],
      });
    } finally {
      closeSync(fd);
    }
    return readFileSync(out, 'utf8').trim().split('\n');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('series lines', () => {
  const expected = [
    ['loss', 1, 0],
    ['acc', 0.5, 0],
    ['loss', Number.NaN, 1],
    ['acc', Number.POSITIVE_INFINITY, 1],
    ['loss', Number.NEGATIVE_INFINITY, null],
  ];
  const sorted = (calls: unknown[][]) => [...calls].sort((a, b) => String(a[0]).localeCompare(String(b[0])));

  /** Both helpers' lines: one batch as per-metric columns, read back as the expected points with nothing ignored. */
  const expectColumnsAndPoints = (lines: string[]) => {
    expect(JSON.parse(lines[0]!)).toEqual({
      series: [
        { name: 'loss', steps: [0, 1, null], values: [1, 'NaN', '-Infinity'] },
        { name: 'acc', steps: [0, 1], values: [0.5, 'Infinity'] },
      ],
    });
    const r = recorder();
    for (const line of lines) r.apply(line);
    expect(r.ignored).toEqual([]);
    expect(sorted(r.calls)).toEqual(sorted(expected));
  };

  it('come from the Node helper as columns and read back as the same points, in order per metric', () => {
    const lines = helperLines(
      'node',
      'progress.js',
      `import { metric, output } from './progress.js';
metric({ loss: 1, acc: 0.5 }, 0); metric({ loss: NaN, acc: Infinity }, 1); metric({ loss: -Infinity }); output('done', 1);`,
    );
    expectColumnsAndPoints(lines);
  });

  it('come from the Python helper the same way', () => {
    const lines = helperLines(
      'python3',
      'atelier_progress.py',
      `import atelier_progress as a
a.metric({"loss": 1, "acc": 0.5}, 0)
a.metric({"loss": float("nan"), "acc": float("inf")}, 1)
a.metric({"loss": float("-inf")})
a.output("done", 1)
`,
    );
    expectColumnsAndPoints(lines);
  });

  /** Both helpers' lines where the host reads packed series: floats as base64 bytes, read back as the same points. */
  const expectPackedPoints = (lines: string[]) => {
    const f64 = (...xs: number[]) => Buffer.from(new Float64Array(xs).buffer).toString('base64');
    const series = lines.flatMap((line) => JSON.parse(line).series ?? []);
    expect(series).toEqual([
      { name: 'loss', stepsF64: f64(0, 1, Number.NaN), valuesF64: f64(1, Number.NaN, Number.NEGATIVE_INFINITY) },
      { name: 'acc', stepsF64: f64(0, 1), valuesF64: f64(0.5, Number.POSITIVE_INFINITY) },
      { name: 'odd', steps: [2], values: ['two'] },
    ]);
    const r = recorder();
    for (const line of lines) r.apply(line);
    expect(r.ignored).toEqual([expect.stringMatching(/metric "odd" is not a number in 1 of its values/)]);
    expect(sorted(r.calls)).toEqual(sorted(expected));
  };
  const PACKED = { ATELIER_PROGRESS_PACKED: '1' };

  it('come packed from the Node helper where the host reads them so, as the same points', () => {
    const lines = helperLines(
      'node',
      'progress.js',
      `import { metric, output } from './progress.js';
metric({ loss: 1, acc: 0.5 }, 0); metric({ loss: NaN, acc: Infinity }, 1); metric({ loss: -Infinity }); metric({ odd: 'two' }, 2); output('done', 1);`,
      PACKED,
    );
    expectPackedPoints(lines);
  });

  it('come packed from the Python helper the same way', () => {
    const lines = helperLines(
      'python3',
      'atelier_progress.py',
      `import atelier_progress as a
a.metric({"loss": 1, "acc": 0.5}, 0)
a.metric({"loss": float("nan"), "acc": float("inf")}, 1)
a.metric({"loss": float("-inf")})
a.metric({"odd": "two"}, 2)
a.output("done", 1)
`,
      PACKED,
    );
    expectPackedPoints(lines);
  });

  it('take a whole series at once from the Node helper (metricSeries), as the same points', () => {
    const lines = helperLines(
      'node',
      'progress.js',
      `import { metricSeries, output } from './progress.js';
metricSeries('loss', [0, 1, null], [1, NaN, -Infinity]); metricSeries('acc', new Float64Array([0, 1]), new Float64Array([0.5, Infinity]));
metricSeries('odd', [2], ['two']); let refused = '';
try { metricSeries('bad', [1], [1, 2]); } catch (err) { refused = err.message; }
output('refused', refused);`,
      PACKED,
    );
    expectPackedPoints(lines);
    expect(JSON.parse(lines.at(-1)!)).toEqual({ output: { name: 'refused', value: 'metricSeries("bad"): 1 steps for 2 values' } });
  });

  it('write a large typed series from the Node helper straight from its arrays, in lines the host takes, in order', () => {
    const lines = helperLines(
      'node',
      'progress.js',
      `import { metric, metricSeries, output } from './progress.js';
metric({ big: -1 }, 100); // buffered first: it goes out before the series
const values = new Float64Array(40_005).map((_, i) => i);
metricSeries('big', null, values.subarray(5)); // a view into a larger buffer, no steps
metricSeries('big', new Float64Array([7, 8]), new Float64Array([Number.NaN, 1.5]));
output('done', 1);`,
      PACKED,
    );
    expect(lines.length).toBeGreaterThan(3); // the 40,000 points in more than one line…
    expect(lines.length).toBeLessThan(10); // …but a few large ones, not one per 1,000 buffered points
    for (const line of lines) expect(Buffer.byteLength(line)).toBeLessThan(1 << 20);
    const r = recorder({ series: true });
    for (const line of lines) r.apply(line);
    expect(r.ignored).toEqual([]);
    expect(r.calls.length).toBe(40_003);
    expect(r.calls[0]).toEqual(['big', -1, 100]);
    expect(r.calls.slice(1, -2).every(([, v, step], i) => v === i + 5 && step === null)).toBe(true);
    expect(r.calls.slice(-2)).toEqual([
      ['big', Number.NaN, 7],
      ['big', 1.5, 8],
    ]);
  });

  it('send steps that count up by one as their first (stepStart) from the Node helper where the host reads them so', () => {
    const lines = helperLines(
      'node',
      'progress.js',
      `import { flush, metric, metricSeries, output } from './progress.js';
for (let i = 0; i < 5; i++) metric({ loss: i / 2 }, 10 + i);
flush();
metric({ loss: 1 }, 3); metric({ loss: 2 }, 9); flush();
metric({ a: 1, b: 2 }, 0); metric({ a: 3, b: 4 }, 1); flush();
metric({ h: 1 }, 0.5); metric({ h: 2 }, 1.5); flush();
metricSeries('s', new Float64Array([5, 6, 7]), new Float64Array([1, 2, 3]));
metricSeries('u', new Float64Array([5, 7]), new Float64Array([1, 2]));
output('done', 1);`,
      { ...PACKED, ATELIER_PROGRESS_STEP_START: '1' },
    );
    const f64 = (...xs: number[]) => Buffer.from(new Float64Array(xs).buffer).toString('base64');
    expect(lines.flatMap((line) => JSON.parse(line).series ?? [])).toEqual([
      { name: 'loss', stepStart: 10, valuesF64: f64(0, 0.5, 1, 1.5, 2) },
      { name: 'loss', stepsF64: f64(3, 9), valuesF64: f64(1, 2) },
      { name: 'a', stepStart: 0, valuesF64: f64(1, 3) },
      { name: 'b', stepStart: 0, valuesF64: f64(2, 4) },
      { name: 'h', stepsF64: f64(0.5, 1.5), valuesF64: f64(1, 2) },
      { name: 's', stepStart: 5, valuesF64: f64(1, 2, 3) },
      { name: 'u', stepsF64: f64(5, 7), valuesF64: f64(1, 2) },
    ]);
    const [columns, single] = [recorder({ series: true }), recorder()];
    for (const line of lines) {
      columns.apply(line);
      single.apply(line);
    }
    expect(columns.ignored).toEqual([]);
    expect(columns.calls).toEqual(single.calls);
    expect(columns.calls).toEqual([
      ...[0, 0.5, 1, 1.5, 2].map((v, i) => ['loss', v, 10 + i]),
      ['loss', 1, 3],
      ['loss', 2, 9],
      ['a', 1, 0],
      ['a', 3, 1],
      ['b', 2, 0],
      ['b', 4, 1],
      ['h', 1, 0.5],
      ['h', 2, 1.5],
      ['s', 1, 5],
      ['s', 2, 6],
      ['s', 3, 7],
      ['u', 1, 5],
      ['u', 2, 7],
    ]);
  });

  it('take a whole series at once from the Python helper (metric_series) the same way', () => {
    const lines = helperLines(
      'python3',
      'atelier_progress.py',
      `import array, atelier_progress as a
a.metric_series("loss", [0, 1, None], [1, float("nan"), float("-inf")])
a.metric_series("acc", array.array("d", [0, 1]), array.array("d", [0.5, float("inf")]))
a.metric_series("odd", [2], ["two"])
try:
    a.metric_series("bad", [1], [1, 2])
except ValueError as err:
    a.output("refused", str(err))
`,
      PACKED,
    );
    expectPackedPoints(lines);
    expect(JSON.parse(lines.at(-1)!)).toEqual({ output: { name: 'refused', value: "metric_series('bad'): 1 steps for 2 values" } });
  });

  it('reach a context that takes series as one call per series, as the same points', () => {
    const f64 = (...xs: number[]) => Buffer.from(new Float64Array(xs).buffer).toString('base64');
    const lines = [
      JSON.stringify({ series: [{ name: 'loss', stepsF64: f64(0, 1, Number.NaN), valuesF64: f64(1, Number.NaN, Number.NEGATIVE_INFINITY) }] }),
      JSON.stringify({ series: [{ name: 'acc', steps: [0, 1, 2], values: [0.5, 'Infinity', 'two'] }] }),
    ];
    const [columns, single] = [recorder({ series: true }), recorder()];
    for (const line of lines) {
      columns.apply(line);
      single.apply(line);
    }
    expect(columns.seriesCalls()).toBe(2);
    expect(columns.calls).toEqual([
      ['loss', 1, 0],
      ['loss', Number.NaN, 1],
      ['loss', Number.NEGATIVE_INFINITY, null],
      ['acc', 0.5, 0],
      ['acc', Number.POSITIVE_INFINITY, 1],
    ]);
    expect(columns.calls).toEqual(single.calls);
    expect(columns.ignored).toEqual([expect.stringMatching(/metric "acc" is not a number in 1 of its values/)]);
  });

  it('refuse a malformed packed series, saying why', () => {
    const r = recorder();
    const f64 = (...xs: number[]) => Buffer.from(new Float64Array(xs).buffer).toString('base64');
    r.apply(JSON.stringify({ series: [{ name: 'a', stepsF64: f64(1), valuesF64: f64(1, 2) }] }));
    r.apply(JSON.stringify({ series: [{ name: 'b', valuesF64: 'AAAA' }] }));
    r.apply(JSON.stringify({ series: [{ name: 'c', valuesF64: f64(3, 4) }] }));
    expect(r.calls).toEqual([
      ['c', 3, null],
      ['c', 4, null],
    ]);
    expect(r.ignored).toEqual([expect.stringMatching(/metric series "a" needs "valuesF64"/), expect.stringMatching(/metric series "b" needs "valuesF64"/)]);
  });

  it('read a packed series whose steps are given by their first, and refuse a malformed one, saying why', () => {
    const r = recorder();
    const f64 = (...xs: number[]) => Buffer.from(new Float64Array(xs).buffer).toString('base64');
    r.apply(JSON.stringify({ series: [{ name: 'd', stepStart: 1.5, valuesF64: f64(1) }] }));
    r.apply(JSON.stringify({ series: [{ name: 'e', stepStart: 1, stepsF64: f64(1), valuesF64: f64(1) }] }));
    r.apply(JSON.stringify({ series: [{ name: 'g', stepStart: '1', valuesF64: f64(1) }] }));
    r.apply(JSON.stringify({ series: [{ name: 'f', stepStart: -2, valuesF64: f64(1, Number.NaN) }] }));
    expect(r.calls).toEqual([
      ['f', 1, -2],
      ['f', Number.NaN, -1],
    ]);
    expect(r.ignored).toEqual(
      ['d', 'e', 'g'].map((name) => expect.stringMatching(new RegExp(`metric series "${name}" needs "valuesF64".*"stepStart" \\(an integer\\)`))),
    );
  });

  it('drop what is no number and refuse malformed columns, saying why', () => {
    const r = recorder();
    r.apply(JSON.stringify({ series: [{ name: 'x', steps: [1, 2], values: [3, 'three'] }] }));
    r.apply(JSON.stringify({ series: [{ name: 'y', steps: [1], values: [1, 2] }] }));
    r.apply(JSON.stringify({ series: [{ steps: [1], values: [1] }] }));
    r.apply(JSON.stringify({ series: [{ name: 'z', values: [7, 8] }] }));
    expect(r.calls).toEqual([
      ['x', 3, 1],
      ['z', 7, null],
      ['z', 8, null],
    ]);
    expect(r.ignored).toEqual([
      expect.stringMatching(/metric "x" is not a number in 1 of its values/),
      expect.stringMatching(/metric series "y" needs "values" \(an array\) and "steps" of the same length/),
      'a metric series without a name',
    ]);
  });
});

describe('a task logging in a tight loop, end to end', () => {
  let t: TestApp;
  const COUNT = 10_000;

  beforeAll(async () => {
    t = await startTestApp();
    const published = await t.api.upload(PUBLISH, { tags: ['latest'] }, 'artifact', await metricsModuleArchive());
    expect(published.errors).toBeUndefined();
    await t.createWorkflow({ name: 'ingest-order', tasks: [{ name: 'train', module: 'test/metrics', parameters: { count: COUNT } }] });
  }, 120_000);
  afterAll(async () => t?.stop());

  it('has every point stored when its result is applied, and its duration ends at the module’s exit', async () => {
    const { db } = t.app.database;
    const run = await t.app.services.orchestrator.startRun({ workflow: 'ingest-order', trigger: 'API', refreshCache: true }, null);
    let status = '';
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      const [row] = await db.select({ status: runs.status }).from(runs).where(eq(runs.id, run.id));
      status = row?.status ?? '';
      if (['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(status)) break;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    // Read at once: the result was applied after the last metric event, so nothing is still on its way.
    const [task] = await db.select().from(tasks).where(eq(tasks.runId, run.id));
    const [stored] = await db
      .select({ n: sum(metricBlocks.n) })
      .from(metricBlocks)
      .where(eq(metricBlocks.taskId, task!.id));
    expect(status).toBe('SUCCEEDED');
    expect(Number(stored!.n)).toBe(COUNT);
    expect(task!.outputs).toMatchObject({ done: expect.any(Number) });
    // The execution time is recorded; that it ends at the module's exit (not after the host has read the points) is
    // checked where the clocks are one: test/plugins/host-claims.test.ts. Here the stored started/finished times come
    // from events, and the claim's round trip before the module starts made a comparison with them flaky under load.
    expect(task!.executionMs).not.toBeNull();
  }, 90_000);
});
