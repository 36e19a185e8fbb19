// A module that logs metrics through the Node progress helper (executors/local/progress.js, copied in as a module
// author would), packed for publishing: `count` points of `loss` in a tight loop (the same loop without logging when `log` is false), or the special cases.
import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { packDirectory } from '../../server/artifacts/archive';

const helper = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'executors', 'local', 'progress.js');

const main = `import { metric, output } from './progress.js';
const params = JSON.parse(process.env.ATELIER_PARAMS ?? '{}');
const count = params.count ?? 0;
const log = params.log !== false;
const loopBegan = Date.now();
let sum = 0;
for (let i = 0; i < count; i++) {
  const loss = 1 / (i + 1);
  sum += loss;
  if (log) metric({ loss }, i);
}
if (params.special) {
  metric({ odd: 5 }, 10);
  metric({ odd: Number.NaN }, 3);
  metric({ odd: Number.POSITIVE_INFINITY }, 7);
  metric({ odd: Number.NEGATIVE_INFINITY }, 1);
  metric({ odd: 'not a number', acc: 0.5 }, 2);
  metric({ odd: -2 }, 2);
}
output('done', sum);
// The module's own view of its time (bench/tracking-split.ts): when its process began and ended (wall clock) and its CPU.
if (params.timing) {
  const cpu = process.cpuUsage();
  output('timing', { began: performance.timeOrigin, loopBegan: loopBegan, ended: Date.now(), cpuMs: (cpu.user + cpu.system) / 1000 });
}
`;

const manifest = `namespace: test
name: metrics
description: Logs metric points in a tight loop through the progress helper.
entrypoint: main.mjs
runtime: node
parameters:
  type: object
  additionalProperties: false
  properties:
    count: { type: integer, minimum: 0 }
    special: { type: boolean }
    log: { type: boolean }
    timing: { type: boolean }
    salt: { type: string }
`;

// The same loop with its points in arrays, handed over at once through the bulk API (metricSeries): a module of its
// own (test/metrics-bulk), so test/metrics stays the per-point loop the bench's ratio is about.
const bulkMain = `import { metricSeries, output } from './progress.js';
const params = JSON.parse(process.env.ATELIER_PARAMS ?? '{}');
const count = params.count ?? 0;
const loopBegan = Date.now();
const steps = new Float64Array(count);
const losses = new Float64Array(count);
let sum = 0;
for (let i = 0; i < count; i++) {
  const loss = 1 / (i + 1);
  sum += loss;
  steps[i] = i;
  losses[i] = loss;
}
metricSeries('loss', steps, losses);
output('done', sum);
// Its own view of its time, as the per-point module's (bench/tracking-split.ts).
if (params.timing) {
  const cpu = process.cpuUsage();
  output('timing', { began: performance.timeOrigin, loopBegan: loopBegan, ended: Date.now(), cpuMs: (cpu.user + cpu.system) / 1000 });
}
`;

async function archive(name: string, code: string): Promise<Buffer> {
  const dir = await mkdtemp(path.join(tmpdir(), 'atelier-metrics-module-'));
  try {
    await copyFile(helper, path.join(dir, 'progress.js'));
    await writeFile(path.join(dir, 'main.mjs'), code);
    await writeFile(path.join(dir, 'atelier.module.yaml'), manifest.replace('name: metrics', `name: ${name}`));
    return await packDirectory(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The packed module archive (test/metrics). */
export const metricsModuleArchive = (): Promise<Buffer> => archive('metrics', main);

/** The bulk variant's archive (test/metrics-bulk): `count` points of `loss` in one metricSeries call. */
export const metricsBulkModuleArchive = (): Promise<Buffer> => archive('metrics-bulk', bulkMain);
