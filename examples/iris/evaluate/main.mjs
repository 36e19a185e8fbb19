// iris-evaluate: scores the trained model on the held-out `test` split (accuracy, macro F1, confusion matrix)
// and fails the task when accuracy is below `minAccuracy`, so a bad model stops the workflow here. A model that
// passes is registered as a version of `registerAs` (default examples/iris) once the task succeeds: its files are
// model.json and serve.mjs, the server a deployment runs (metadata.serve), left in ATELIER_ARTIFACTS_DIR.
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { metric, output, progress, registerModel } from './atelier-progress.mjs';

const params = { minAccuracy: 0.9, registerAs: 'examples/iris', ...JSON.parse(process.env.ATELIER_PARAMS || '{}') };

// Outputs are looked up by name rather than by upstream node, so the workflow may name its nodes freely.
const inputs = JSON.parse(process.env.ATELIER_INPUTS || '{}');
const input = (name) => Object.values(inputs).find((outputs) => outputs && name in outputs)?.[name];
const model = input('model');
const test = input('test');
if (!model || !Array.isArray(test)) {
  fail('needs `model` (from iris-train) and `test` (from iris-prepare) in ATELIER_INPUTS: run it in the iris workflow, or see examples/iris/run-local.sh');
}

const { classes, mean, std, weights } = model;
const K = classes.length;
const D = mean.length;
const confusion = classes.map(() => classes.map(() => 0)); // rows: actual class, columns: predicted class
for (const [i, row] of test.entries()) {
  const z = [...row.slice(0, D).map((v, j) => (v - mean[j]) / std[j]), 1];
  const scores = weights.map((w) => w.reduce((s, wj, j) => s + wj * z[j], 0));
  const predicted = scores.indexOf(Math.max(...scores));
  confusion[row.at(-1)][predicted]++;
  if ((i + 1) % 10 === 0) progress((i + 1) / test.length, `scored ${i + 1}/${test.length}`);
}

const correct = classes.reduce((s, _, k) => s + confusion[k][k], 0);
const accuracy = correct / test.length;
const f1s = classes.map((_, k) => {
  const tp = confusion[k][k];
  const predicted = confusion.reduce((s, row) => s + row[k], 0);
  const actual = confusion[k].reduce((s, v) => s + v, 0);
  const precision = predicted ? tp / predicted : 0;
  const recall = actual ? tp / actual : 0;
  return precision + recall ? (2 * precision * recall) / (precision + recall) : 0;
});
const macroF1 = f1s.reduce((s, v) => s + v, 0) / K;

const width = Math.max(...classes.map((c) => c.length), 9);
console.log(`confusion matrix (rows: actual, columns: predicted), ${test.length} test rows:`);
console.log(`${''.padEnd(width)}  ${classes.map((c) => c.padStart(width)).join('  ')}`);
for (const [k, row] of confusion.entries()) console.log(`${classes[k].padEnd(width)}  ${row.map((v) => String(v).padStart(width)).join('  ')}`);
console.log(`accuracy ${(accuracy * 100).toFixed(1)}% (${correct}/${test.length}), macro F1 ${macroF1.toFixed(3)}`);

metric({ accuracy: round(accuracy), macroF1: round(macroF1) });
output('accuracy', round(accuracy));
output('confusionMatrix', { labels: classes, matrix: confusion });
if (process.env.ATELIER_OUTPUT_DIR) {
  mkdirSync(process.env.ATELIER_OUTPUT_DIR, { recursive: true });
  writeFileSync(
    path.join(process.env.ATELIER_OUTPUT_DIR, 'outputs.json'),
    JSON.stringify({ accuracy: round(accuracy), confusionMatrix: { labels: classes, matrix: confusion } }),
  );
}
progress(1, `accuracy ${(accuracy * 100).toFixed(1)}%`);
if (accuracy < params.minAccuracy) {
  fail(
    `accuracy ${(accuracy * 100).toFixed(1)}% is below minAccuracy ${(params.minAccuracy * 100).toFixed(1)}%: the model is not good enough (train longer or change learningRate)`,
  );
}

// Registered only from inside Atelier (the control plane uploads the folder, then registers it once the task has
// succeeded); the same model trained again is the version already there.
if (params.registerAs && process.env.ATELIER_ARTIFACTS_DIR) {
  const dir = path.join(process.env.ATELIER_ARTIFACTS_DIR, 'model');
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'model.json'), JSON.stringify(model));
  copyFileSync(new URL('./serve.mjs', import.meta.url), path.join(dir, 'serve.mjs'));
  registerModel(params.registerAs, 'model', {
    flavor: 'iris-softmax',
    signature: { inputs: model.featureNames ?? [], outputs: classes },
    metadata: { serve: { command: ['node', 'serve.mjs'], healthPath: '/health' }, testAccuracy: round(accuracy), macroF1: round(macroF1) },
  });
  console.log(`iris-evaluate: registering this model as a version of ${params.registerAs} (its server: serve.mjs)`);
}

function round(x) {
  return Math.round(x * 1e6) / 1e6;
}

function fail(message) {
  console.error(`iris-evaluate: ${message}`);
  process.exit(1);
}
