// The Node progress helper has one source, executors/local/progress.js. Example modules carry a copy because each
// module directory is packed and shipped on its own (an import reaching outside it would not be in the archive);
// this check keeps every copy the source to the byte, under its one-line note.
import { execFileSync } from 'node:child_process';
import { closeSync, copyFileSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { progressSplitter } from '../../executors/local/pipes';
import type { TaskContext } from '../../plugins/sdk';

const root = path.resolve(import.meta.dirname, '../..');
const SOURCE = 'executors/local/progress.js';
const COPY_NAME = 'atelier-progress.mjs';
const NOTE = `// Copied verbatim from ${SOURCE}: each module is packed on its own, so it carries its copy.\n`;

/** Runs `dir/main.mjs` as the local executor runs a module (packed, steps by their first, numbers in frames), its
 * progress written to `out`; returns what it printed. */
function runHelperModule(dir: string, out: string, nodeFlags: string[] = []): string {
  const fd = openSync(out, 'w');
  try {
    return execFileSync(process.execPath, [...nodeFlags, 'main.mjs'], {
      cwd: dir,
      env: { ...process.env, ATELIER_PROGRESS_FD: '3', ATELIER_PROGRESS_PACKED: '1', ATELIER_PROGRESS_STEP_START: '1', ATELIER_PROGRESS_FRAMES: '1' },
      stdio: ['ignore', 'pipe', 'inherit', fd],
      encoding: 'utf8',
    });
  } finally {
    closeSync(fd);
  }
}

async function copiesUnder(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory() && entry.name !== 'node_modules') found.push(...(await copiesUnder(full)));
    else if (entry.name === COPY_NAME) found.push(full);
  }
  return found;
}

describe('the progress helper', () => {
  it('ships in example modules as exact copies of its one source', async () => {
    const source = await readFile(path.join(root, SOURCE), 'utf8');
    const copies = await copiesUnder(path.join(root, 'examples'));
    expect(copies.length, `copies of ${SOURCE} named ${COPY_NAME} under examples/`).toBeGreaterThan(0);
    for (const copy of copies) {
      const text = await readFile(copy, 'utf8');
      expect(text, `${path.relative(root, copy)} drifted from ${SOURCE}: copy it again (with its first-line note)`).toBe(NOTE + source);
    }
  });
});

describe("the progress helper's metric() in a tight loop", () => {
  // `metric` runs its first calls unoptimized; V8 optimizes it after ~1,800 calls (Node 20). Optimized before it had
  // ever called `flush`, it would drop that code at its first flush (no type feedback for the call) and run
  // unoptimized again until recompiled: the first batch is short so that the flush has run by then. Compiled on the
  // main thread here (--no-concurrent-recompilation), so when V8 optimizes it does not depend on the machine's load.
  it('keeps its optimized code through its flushes, every point sent in order', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'atelier-helper-jit-'));
    try {
      copyFileSync(path.join(root, SOURCE), path.join(dir, 'progress.js'));
      writeFileSync(path.join(dir, 'main.mjs'), `import { metric } from './progress.js';\nfor (let i = 0; i < 20000; i++) metric({ loss: 1 / (i + 1) }, i);\n`);
      const out = path.join(dir, 'progress.out');
      const trace = runHelperModule(dir, out, ['--trace-opt', '--trace-deopt', '--no-concurrent-recompilation']);
      const optimized = trace.split('\n').filter((line) => /completed (compiling|optimizing) .*<JSFunction metric /.test(line));
      const dropped = trace.split('\n').filter((line) => /bailout .*deoptimizing .*<JSFunction metric /.test(line));
      expect(optimized.length, 'V8 optimized metric()').toBeGreaterThan(0);
      expect(dropped, 'metric() deoptimized').toEqual([]);
      // Read back by the host's own reader: every step once, in order, each value the one logged there.
      const steps: number[] = [];
      let wrong = 0;
      const ctx = {
        metricSeries(name: string, at: ArrayLike<number>, values: ArrayLike<number>) {
          for (let i = 0; i < values.length; i++) {
            steps.push(at[i]!);
            if (name !== 'loss' || values[i] !== 1 / (at[i]! + 1)) wrong++;
          }
        },
        log: (_stream: string, line: string) => expect.fail(line),
      } as unknown as TaskContext;
      const reader = progressSplitter(() => ctx);
      reader.push(readFileSync(out));
      reader.end();
      expect(wrong).toBe(0);
      expect(steps).toEqual(Array.from({ length: 20000 }, (_, i) => i));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("the progress helper's flush timer", () => {
  // The timer is set only once the module yields (it could not fire before): points logged before an `await` still
  // go out within FLUSH_MS (200 ms) of the first, while the module runs, though no batch filled.
  it('sends what a module buffered before it yields while it waits, not at its exit', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'atelier-helper-timer-'));
    try {
      copyFileSync(path.join(root, SOURCE), path.join(dir, 'progress.js'));
      writeFileSync(
        path.join(dir, 'main.mjs'),
        `import { fstatSync } from 'node:fs';
import { metric } from './progress.js';
const sizes = [];
for (let i = 0; i < 3; i++) metric({ loss: i }, i);
sizes.push(fstatSync(3).size);
await new Promise((resolve) => setTimeout(resolve, 600));
sizes.push(fstatSync(3).size);
metric({ loss: 3 }, 3);
await new Promise((resolve) => setTimeout(resolve, 600));
sizes.push(fstatSync(3).size);
console.log(JSON.stringify(sizes));
`,
      );
      const out = path.join(dir, 'progress.out');
      const printed = runHelperModule(dir, out);
      const [before, afterFirstWait, afterSecondWait] = JSON.parse(printed) as number[];
      expect(before).toBe(0);
      expect(afterFirstWait).toBeGreaterThan(0);
      expect(afterSecondWait).toBeGreaterThan(afterFirstWait!);
      expect(readFileSync(out).length).toBe(afterSecondWait);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
