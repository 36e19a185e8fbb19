// Copied verbatim from executors/local/progress.js: each module is packed on its own, so it carries its copy.
// Progress helper for `local` modules written for Node: reports progress, metrics and outputs to Atelier as
// JSON lines on the fd named by ATELIER_PROGRESS_FD. Plain ESM, no dependencies: copy it into your module.
import { writeSync } from 'node:fs';

const fd = Number.parseInt(process.env.ATELIER_PROGRESS_FD ?? '', 10);
let warned = false;

function send(message) {
  write(`${JSON.stringify(message)}\n`);
}

/** Writes one line whole. Given as a string: a series line is ASCII, written without a copy into a buffer first. */
function write(line) {
  if (!Number.isInteger(fd) || fd < 0) {
    if (!warned) console.warn('atelier progress: ATELIER_PROGRESS_FD is not set; progress, metrics and outputs are not reported');
    warned = true;
    return;
  }
  // A synchronous write keeps reports in order with the module's own work and survives process.exit().
  let data = line;
  for (;;) {
    let written;
    try {
      written = writeSync(fd, data);
    } catch (err) {
      if (err && err.code === 'EAGAIN') continue;
      throw err;
    }
    // Rarely written in part (a pipe, for a warm worker): the rest as bytes.
    if (typeof data === 'string') {
      if (written >= Buffer.byteLength(data, 'utf8')) return;
      data = Buffer.from(data, 'utf8');
    } else if (written >= data.length) return;
    data = data.subarray(written);
  }
}

// Metric points are buffered and sent in batches (every FLUSH_POINTS points, FLUSH_MS after the first, before any
// other message and at exit), so a training loop may log every step without slowing down. A batch is one `series`
// line: per metric name its steps and values. Where the host reads them packed (it sets ATELIER_PROGRESS_PACKED), they
// go as two little-endian float64 arrays in base64 (`stepsF64`, `valuesF64`; a step of NaN: none given): no number is
// formatted, 100,000 points cost the module ~6 ms of CPU instead of ~29 ms as JSON numbers, and the host reads them
// back without parsing a digit. Otherwise (an older host) as two JSON arrays, as before. Points of one name keep their
// order; across names a batch lists them name by name. A value that is no number is sent as it is, in plain columns,
// for the host to drop and name in the task's log.
const FLUSH_POINTS = 1000;
const FLUSH_MS = 200;
const SPECIAL = { NaN: Number.NaN, Infinity: Number.POSITIVE_INFINITY, '-Infinity': Number.NEGATIVE_INFINITY };
// Packed only where the host reads it and this machine's float64 is little-endian (as the host reads it).
const packed = process.env.ATELIER_PROGRESS_PACKED === '1' && new Uint8Array(new Float64Array([1]).buffer)[7] === 0x3f;
let series = new Map();
let buffered = 0;
let timer;

/** One metric's buffered points: packed steps and values (a batch's worth, grown as needed; kept from one batch to
 * the next, so a training loop allocates nothing per point or per batch), and the values that are no number. */
function newSeries() {
  return { n: 0, steps: new Float64Array(FLUSH_POINTS), values: new Float64Array(FLUSH_POINTS), odd: null };
}

/** `n` float64s of `array` from index `from` as base64 (a typed array may be a view into a larger buffer). */
const base64 = (array, n, from = 0) => Buffer.from(array.buffer, array.byteOffset + from * 8, n * 8).toString('base64');
/** Points per line of a series handed over whole: ~350 KB of base64 with its steps, under the host's 1 MiB a line. */
const SERIES_LINE_POINTS = 16384;
/** A value as JSON carries it: JSON has no NaN or Infinity, so they travel as strings and are stored as the numbers they are. */
const wire = (value) => (typeof value === 'number' && !Number.isFinite(value) ? String(value) : value);

/** Sends the buffered metric points now. */
export function flush() {
  if (timer) clearTimeout(timer);
  timer = undefined;
  if (buffered === 0) return;
  const batch = [];
  for (const [name, s] of series) {
    // Packed, the line is spelled out rather than JSON.stringify'd: its base64 needs no escaping, and stringify
    // scanned every character of it again (a third of the helper's cost per point, cold).
    if (s.n && packed) batch.push(`{"name":${JSON.stringify(name)},"stepsF64":"${base64(s.steps, s.n)}","valuesF64":"${base64(s.values, s.n)}"}`);
    else if (s.n) {
      const steps = Array.from(s.steps.subarray(0, s.n), (step) => (Number.isNaN(step) ? null : step));
      batch.push(JSON.stringify({ name, steps, values: Array.from(s.values.subarray(0, s.n), wire) }));
    }
    if (s.odd) batch.push(JSON.stringify({ name, steps: s.odd.steps, values: s.odd.values }));
    s.n = 0;
    s.odd = null;
  }
  // A batch's series are kept for the next one while few (a loop's handful of names); many names start afresh.
  if (series.size > 64) series = new Map();
  buffered = 0;
  write(`{"series":[${batch.join(',')}]}\n`);
}
process.on('exit', flush);

/**
 * Reports metrics (name → number; NaN and ±Infinity are kept), optionally at a training step (any integer, in any
 * order). Every point is kept; a value that is not a number is dropped with a warning in the task's log.
 */
export function metric(metrics, step = null) {
  const at = typeof step === 'number' ? step : Number.NaN;
  for (const name in metrics) {
    const value = metrics[name];
    let s = series.get(name);
    if (!s) series.set(name, (s = newSeries()));
    // Inline for a number (the loop's case: called 100,000 times before V8 optimizes it, each call counts).
    if (typeof value === 'number' && s.n < s.steps.length) {
      s.steps[s.n] = at;
      s.values[s.n++] = value;
      buffered++;
    } else add(s, value, at);
  }
  if (buffered >= FLUSH_POINTS) flush();
  else if (!timer && buffered) arm();
}

/**
 * Reports many points of one metric at once (a loop that has them in arrays): `values[i]` at training step
 * `steps[i]`, or at none when `steps` is null. Arrays or typed arrays; the same rules as `metric` for each point.
 */
export function metricSeries(name, steps, values) {
  if (steps != null && steps.length !== values.length) throw new TypeError(`metricSeries("${name}"): ${steps.length} steps for ${values.length} values`);
  if (packed && values instanceof Float64Array && (steps == null || steps instanceof Float64Array)) {
    // Numbers all, packed as they lie: written straight from the caller's arrays, a line per SERIES_LINE_POINTS
    // (after what is buffered, so a metric's points keep their order). Without steps, none is sent: each point then
    // gets its index among the metric's points, as `metric` without a step.
    flush();
    const label = JSON.stringify(name);
    for (let from = 0; from < values.length; from += SERIES_LINE_POINTS) {
      const n = Math.min(SERIES_LINE_POINTS, values.length - from);
      const stepsPart = steps == null ? '' : `"stepsF64":"${base64(steps, n, from)}",`;
      write(`{"series":[{"name":${label},${stepsPart}"valuesF64":"${base64(values, n, from)}"}]}\n`);
    }
    return;
  }
  const s = seriesOf(name);
  for (let i = 0; i < values.length; i++) {
    const step = steps == null ? null : steps[i];
    add(s, values[i], typeof step === 'number' ? step : Number.NaN);
    if (buffered >= FLUSH_POINTS) flush();
  }
  if (!timer && buffered) arm();
}

function seriesOf(name) {
  let s = series.get(name);
  if (!s) series.set(name, (s = newSeries()));
  return s;
}

/** Buffers one point: packed where it is a number (or a special's name), else as it is for the host to refuse. */
function add(s, raw, at) {
  const value = typeof raw === 'string' && raw in SPECIAL ? SPECIAL[raw] : raw;
  if (typeof value !== 'number') {
    s.odd ??= { steps: [], values: [] };
    s.odd.steps.push(Number.isNaN(at) ? null : at);
    s.odd.values.push(value);
  } else {
    if (s.n === s.steps.length) {
      const [steps, values] = [new Float64Array(s.n * 2), new Float64Array(s.n * 2)];
      steps.set(s.steps);
      values.set(s.values);
      s.steps = steps;
      s.values = values;
    }
    s.steps[s.n] = at;
    s.values[s.n++] = value;
  }
  buffered++;
}

function arm() {
  timer = setTimeout(flush, FLUSH_MS);
  timer.unref?.();
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
