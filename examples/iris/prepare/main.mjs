// iris-prepare: reads the iris CSV shipped in this module, shuffles it with a seeded PRNG and splits it into
// stratified train and test sets, which downstream tasks receive as the `train` and `test` outputs.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { metric, output, progress } from './atelier-progress.mjs';

// Atelier checks parameters against the manifest's schema but does not fill in its defaults; standalone runs
// get no checks at all, so both are repeated here.
const params = { seed: 42, testFraction: 0.3, ...JSON.parse(process.env.ATELIER_PARAMS || '{}') };
if (!(params.testFraction > 0 && params.testFraction < 1)) fail(`testFraction must be between 0 and 1 (got ${params.testFraction})`);

const here = path.dirname(fileURLToPath(import.meta.url));
const [header, ...lines] = readFileSync(path.join(here, 'iris.csv'), 'utf8').trim().split(/\r?\n/);
const columns = header.split(',');
const featureNames = columns.slice(0, -1);
const classes = [];
const rows = lines.map((line, i) => {
  const cells = line.split(',');
  const features = cells.slice(0, -1).map(Number);
  if (cells.length !== columns.length || features.some((x) => !Number.isFinite(x))) fail(`iris.csv line ${i + 2} is malformed: ${line}`);
  const label = cells.at(-1);
  if (!classes.includes(label)) classes.push(label);
  return [...features, classes.indexOf(label)];
});
progress(0.3, `read ${rows.length} rows, ${classes.length} classes`);

const random = mulberry32(params.seed);
const train = [];
const test = [];
// Stratified: each class keeps the same share in both sets, which matters with 50 rows per class.
for (let c = 0; c < classes.length; c++) {
  const ofClass = shuffle(
    rows.filter((r) => r.at(-1) === c),
    random,
  );
  const nTest = Math.round(ofClass.length * params.testFraction);
  test.push(...ofClass.slice(0, nTest));
  train.push(...ofClass.slice(nTest));
}
shuffle(train, random);
shuffle(test, random);
progress(0.8, `split ${train.length} train / ${test.length} test rows`);

console.log(`iris-prepare: ${rows.length} rows → ${train.length} train, ${test.length} test (seed ${params.seed}, testFraction ${params.testFraction})`);
metric({ trainRows: train.length, testRows: test.length });
const outputs = { featureNames, classes, train, test };
for (const [name, value] of Object.entries(outputs)) output(name, value);
if (process.env.ATELIER_OUTPUT_DIR) {
  // Lets the modules be chained without Atelier (see ../run-local.sh).
  mkdirSync(process.env.ATELIER_OUTPUT_DIR, { recursive: true });
  writeFileSync(path.join(process.env.ATELIER_OUTPUT_DIR, 'outputs.json'), JSON.stringify(outputs));
}
progress(1, 'done');

/** Mulberry32: a tiny, well-mixed 32-bit PRNG, so the same seed gives the same split everywhere. */
function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Fisher–Yates, in place. */
function shuffle(items, rand) {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [items[i], items[j]] = [items[j], items[i]];
  }
  return items;
}

function fail(message) {
  console.error(`iris-prepare: ${message}`);
  process.exit(1);
}
