// Copied verbatim from executors/local/progress.js: each module is packed on its own, so it carries its copy.
// Progress helper for `local` modules written for Node: reports progress, metrics and outputs to Atelier as
// JSON lines on the fd named by ATELIER_PROGRESS_FD. Plain ESM, no dependencies: copy it into your module.
import { writeSync } from 'node:fs';

const fd = Number.parseInt(process.env.ATELIER_PROGRESS_FD ?? '', 10);
let warned = false;

function send(message) {
  if (!Number.isInteger(fd) || fd < 0) {
    if (!warned) console.warn('atelier progress: ATELIER_PROGRESS_FD is not set; progress, metrics and outputs are not reported');
    warned = true;
    return;
  }
  let data = Buffer.from(`${JSON.stringify(message)}\n`, 'utf8');
  // A synchronous write keeps reports in order with the module's own work and survives process.exit().
  while (data.length > 0) {
    try {
      data = data.subarray(writeSync(fd, data));
    } catch (err) {
      if (err && err.code === 'EAGAIN') continue;
      throw err;
    }
  }
}

// Metric points are buffered and sent in batches (every FLUSH_POINTS points, FLUSH_MS after the first, before any
// other message and at exit), so a training loop may log every step without slowing down. A batch is one `series`
// line: per metric name its steps and values as two arrays (about 25 bytes a point, against 60 for an object per
// point; building and writing it cost a third of the objects' CPU time for 100,000 points, and the host parses
// arrays of numbers faster too). Points of one name keep their order; across names a batch lists them name by name.
const FLUSH_POINTS = 1000;
const FLUSH_MS = 200;
let series = new Map();
let buffered = 0;
let timer;

/** Sends the buffered metric points now. */
export function flush() {
  if (timer) clearTimeout(timer);
  timer = undefined;
  if (buffered === 0) return;
  const batch = [];
  for (const [name, s] of series) batch.push({ name, steps: s.steps, values: s.values });
  series = new Map();
  buffered = 0;
  send({ series: batch });
}
process.on('exit', flush);

/**
 * Reports metrics (name → number; NaN and ±Infinity are kept), optionally at a training step (any integer, in any
 * order). Every point is kept; a value that is not a number is dropped with a warning in the task's log.
 */
export function metric(metrics, step = null) {
  for (const name in metrics) {
    let value = metrics[name];
    // JSON has no NaN or Infinity: they travel as strings and are stored as the numbers they are.
    if (typeof value === 'number' && !Number.isFinite(value)) value = String(value);
    let s = series.get(name);
    if (!s) series.set(name, (s = { steps: [], values: [] }));
    s.steps.push(step);
    s.values.push(value);
    buffered++;
  }
  if (buffered >= FLUSH_POINTS) flush();
  else if (!timer && buffered) {
    timer = setTimeout(flush, FLUSH_MS);
    timer.unref?.();
  }
}

/** Reports progress: a fraction in [0, 1] (or null when unknown) and an optional message. */
export function progress(fraction, message = null) {
  flush();
  send({ progress: fraction, message });
}

/** Records a named output (any JSON value); it flows to downstream tasks as an input. */
export function output(name, value) {
  flush();
  send({ output: { name, value } });
}

/**
 * Asks Atelier to register an output (or a folder of logged artifacts) as a version of `model` ("namespace/name")
 * once the task has succeeded, as the run's creator. Options: flavor (e.g. "sklearn"), signature and metadata (JSON
 * objects). The same content registered again is the version already there; a refusal is written to the task's log.
 */
export function registerModel(model, output, { flavor = null, signature = null, metadata = null } = {}) {
  flush();
  send({ register: { model, output, flavor, signature, metadata } });
}
