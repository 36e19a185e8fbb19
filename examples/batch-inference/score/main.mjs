// iris-score: one task of a batch-inference map. The model is a task input pinned at run start (ATELIER_MODELS;
// its files under ATELIER_MODELS_DIR/iris/), the partition a map item ({ dataset, version, partition, digest }).
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { output, progress } from './atelier-progress.mjs';

const params = JSON.parse(process.env.ATELIER_PARAMS || '{}');
const models = JSON.parse(process.env.ATELIER_MODELS || '{}');
const modelDir = path.join(process.env.ATELIER_MODELS_DIR || 'models', 'iris');
const file = readdirSync(modelDir).find((f) => f.endsWith('.json'));
if (!models.iris || !file) {
  console.error('needs the model input `iris` (models: { iris: ns/model@alias } in the workflow) with a .json file of centroids');
  process.exit(2);
}
// weights: { features: [...], centroids: { class: [means...] } } (test/fixtures/iris-model/weights.json's shape)
const { centroids } = JSON.parse(readFileSync(path.join(modelDir, file), 'utf8'));
const { partition } = params.part ?? {};
const rows = JSON.parse(readFileSync(path.join(params.dataRoot || path.join(import.meta.dirname, 'data'), `${partition}.json`), 'utf8'));

const counts = Object.fromEntries(Object.keys(centroids).map((c) => [c, 0]));
for (const [i, row] of rows.entries()) {
  let best = null;
  let bestDistance = Infinity;
  for (const [cls, centre] of Object.entries(centroids)) {
    const d = centre.reduce((s, m, j) => s + (row[j] - m) ** 2, 0);
    if (d < bestDistance) [best, bestDistance] = [cls, d];
  }
  counts[best]++;
  progress((i + 1) / rows.length, `scored ${i + 1}/${rows.length}`);
}
output('scored', { partition, model: `${models.iris.model}/${models.iris.version}`, rows: rows.length, counts });
