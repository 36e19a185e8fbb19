// The iris model's server: what `examples/iris` model versions run when a deployment serves them (their
// `metadata.serve`, docs/deployments.md). It loads model.json (the softmax regression iris-train fitted) from its
// working directory, the version's files, and listens on $HOST:$PORT:
//   GET  /health                    200 once loaded
//   POST /predict                   {"features": [sepal length, sepal width, petal length, petal width]}
//                                   → {"class": "setosa", "probabilities": {...}, "version": "examples/iris/1"}
//   POST /v1/models/iris:predict    KServe's V1 protocol: {"instances": [[4 numbers], ...]} → {"predictions": ["setosa", ...]}
// Node only, no packages: copied into the version by iris-evaluate.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';

const model = JSON.parse(readFileSync('model.json', 'utf8'));
const { classes, mean, std, weights } = model;
const version = process.env.MODEL_VERSION ?? 'unknown';
const MAX_BODY = 1 << 20;

function probabilities(features) {
  const z = [...features.map((v, j) => (v - mean[j]) / std[j]), 1];
  const logits = weights.map((w) => w.reduce((s, wj, j) => s + wj * z[j], 0));
  const max = Math.max(...logits);
  const e = logits.map((l) => Math.exp(l - max));
  const sum = e.reduce((s, v) => s + v, 0);
  return e.map((v) => v / sum);
}

function classify(features) {
  if (!Array.isArray(features) || features.length !== mean.length || !features.every((v) => typeof v === 'number' && Number.isFinite(v)))
    throw new RangeError(`features must be ${mean.length} finite numbers (${(model.featureNames ?? []).join(', ')})`);
  const p = probabilities(features);
  const best = p.indexOf(Math.max(...p));
  return { class: classes[best], probabilities: Object.fromEntries(classes.map((c, k) => [c, Math.round(p[k] * 1e4) / 1e4])) };
}

const send = (res, status, body) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));

const server = createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/health') return send(res, 200, { ok: true, version });
  const kserve = req.url === '/v1/models/iris:predict';
  if (req.method !== 'POST' || (req.url !== '/predict' && !kserve))
    return send(res, 404, { error: 'POST /predict {"features": [...]} or /v1/models/iris:predict {"instances": [[...]]}; GET /health' });
  // A body over MAX_BODY is answered 413 at once and the rest read and dropped, never kept: cutting the connection
  // instead would be counted as the model's failure (the router's 502), so a client's mistake could fail a rollout.
  const tooLarge = () => send(res, 413, { error: `the body is over ${MAX_BODY} bytes: send fewer instances a request` });
  const chunks = [];
  let size = Number(req.headers['content-length'] ?? 0) > MAX_BODY ? Number.POSITIVE_INFINITY : 0;
  if (size > MAX_BODY) tooLarge();
  req.on('data', (chunk) => {
    if (size > MAX_BODY) return;
    size += chunk.length;
    if (size > MAX_BODY) tooLarge();
    else chunks.push(chunk);
  });
  req.on('end', () => {
    if (size > MAX_BODY) return;
    try {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      if (kserve) {
        if (!Array.isArray(body?.instances)) throw new RangeError('instances must be a list of feature lists');
        return send(res, 200, { predictions: body.instances.map((f) => classify(f).class) });
      }
      return send(res, 200, { ...classify(body?.features), version });
    } catch (error) {
      return send(res, 400, { error: error instanceof SyntaxError ? 'the body is not JSON' : error.message });
    }
  });
});
server.listen(Number(process.env.PORT ?? 8080), process.env.HOST ?? '127.0.0.1', () => {
  console.log(`iris ${version} serving on ${process.env.HOST ?? '127.0.0.1'}:${server.address().port}`);
});
