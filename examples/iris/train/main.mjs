// iris-train: fits a multinomial logistic regression (softmax, L2-regularised) to the `train` split by full-batch
// gradient descent, reporting progress and loss/accuracy each epoch, and outputs the model.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { metric, output, progress } from './atelier-progress.mjs';

// Atelier checks parameters against the manifest's schema but does not fill in its defaults.
const params = { epochs: 200, learningRate: 0.5, l2: 0.001, seed: 42, ...JSON.parse(process.env.ATELIER_PARAMS || '{}') };
if (!Number.isInteger(params.epochs) || params.epochs < 1) fail(`epochs must be a whole number ≥ 1 (got ${params.epochs})`);
if (!(params.learningRate > 0)) fail(`learningRate must be > 0 (got ${params.learningRate})`);

// Outputs are looked up by name rather than by upstream node, so the workflow may name its nodes freely.
const inputs = JSON.parse(process.env.ATELIER_INPUTS || '{}');
const input = (name) => Object.values(inputs).find((outputs) => outputs && name in outputs)?.[name];
const train = input('train');
const classes = input('classes');
const featureNames = input('featureNames');
if (!Array.isArray(train) || !Array.isArray(classes)) {
  fail('needs the `train` and `classes` outputs of iris-prepare in ATELIER_INPUTS: run it in the iris workflow, or see examples/iris/run-local.sh');
}

const D = train[0].length - 1;
const K = classes.length;
const X = train.map((r) => r.slice(0, D));
const y = train.map((r) => r.at(-1));
// Standardising makes one learning rate suit every feature; the statistics travel with the model.
const mean = Array.from({ length: D }, (_, j) => X.reduce((s, x) => s + x[j], 0) / X.length);
const std = Array.from({ length: D }, (_, j) => Math.sqrt(X.reduce((s, x) => s + (x[j] - mean[j]) ** 2, 0) / X.length) || 1);
const Z = X.map((x) => [...x.map((v, j) => (v - mean[j]) / std[j]), 1]); // trailing 1: the bias term

const random = mulberry32(params.seed);
const W = Array.from({ length: K }, () => Array.from({ length: D + 1 }, () => (random() - 0.5) * 0.02));
const metricEvery = Math.max(1, Math.floor(params.epochs / 200)); // at most ~200 metric points per run

let loss = Infinity;
let accuracy = 0;
for (let epoch = 1; epoch <= params.epochs; epoch++) {
  const grad = W.map((row) => row.map(() => 0));
  loss = 0;
  let correct = 0;
  for (let i = 0; i < Z.length; i++) {
    const p = softmax(W.map((w) => dot(w, Z[i])));
    loss -= Math.log(Math.max(p[y[i]], 1e-12));
    if (argmax(p) === y[i]) correct++;
    for (let k = 0; k < K; k++) {
      const err = p[k] - (k === y[i] ? 1 : 0);
      for (let j = 0; j <= D; j++) grad[k][j] += err * Z[i][j];
    }
  }
  loss /= Z.length;
  accuracy = correct / Z.length;
  for (let k = 0; k < K; k++) {
    for (let j = 0; j <= D; j++) {
      const decay = j < D ? params.l2 * W[k][j] : 0; // the bias is not regularised
      W[k][j] -= params.learningRate * (grad[k][j] / Z.length + decay);
    }
    loss += (params.l2 / 2) * W[k].slice(0, D).reduce((s, w) => s + w * w, 0);
  }
  progress(epoch / params.epochs, `epoch ${epoch}/${params.epochs} loss ${loss.toFixed(4)}`);
  if (epoch % metricEvery === 0 || epoch === params.epochs) metric({ loss: round(loss), accuracy: round(accuracy) }, epoch);
}
if (!Number.isFinite(loss)) fail(`training diverged (loss ${loss}); lower learningRate (now ${params.learningRate})`);

console.log(
  `iris-train: ${params.epochs} epochs, learningRate ${params.learningRate}: loss ${loss.toFixed(4)}, train accuracy ${(accuracy * 100).toFixed(1)}%`,
);
const model = { kind: 'softmax-regression', classes, featureNames, mean, std, weights: W.map((row) => row.map(round)) };
output('model', model);
output('trainAccuracy', round(accuracy));
if (process.env.ATELIER_OUTPUT_DIR) {
  // Lets the modules be chained without Atelier (see ../run-local.sh).
  mkdirSync(process.env.ATELIER_OUTPUT_DIR, { recursive: true });
  writeFileSync(path.join(process.env.ATELIER_OUTPUT_DIR, 'outputs.json'), JSON.stringify({ model, trainAccuracy: round(accuracy) }));
}

function softmax(logits) {
  const max = Math.max(...logits); // shifting by the max keeps exp() from overflowing
  const e = logits.map((l) => Math.exp(l - max));
  const sum = e.reduce((s, v) => s + v, 0);
  return e.map((v) => v / sum);
}

function dot(a, b) {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

function argmax(values) {
  return values.reduce((best, v, i) => (v > values[best] ? i : best), 0);
}

function round(x) {
  return Math.round(x * 1e6) / 1e6;
}

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

function fail(message) {
  console.error(`iris-train: ${message}`);
  process.exit(1);
}
