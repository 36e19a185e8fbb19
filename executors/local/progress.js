// Progress helper for `local` modules written for Node: reports progress, metrics and outputs to Atelier as
// JSON lines on the fd named by ATELIER_PROGRESS_FD (metric numbers as bytes after their line where the host reads
// frames). Plain ESM, no dependencies: copy it into your module.
import { writeSync, writevSync } from 'node:fs';

const fd = Number.parseInt(process.env.ATELIER_PROGRESS_FD ?? '', 10);
let warned = false;

function send(message) {
  write(`${JSON.stringify(message)}\n`);
}

/** Whether there is a channel to write to (warns once where there is none). */
function open() {
  if (Number.isInteger(fd) && fd >= 0) return true;
  if (!warned) console.warn('atelier progress: ATELIER_PROGRESS_FD is not set; progress, metrics and outputs are not reported');
  warned = true;
  return false;
}

/** Writes one line whole. Given as a string: a series line is ASCII, written without a copy into a buffer first. */
function write(line) {
  if (open()) writeRest(line);
}

/** Writes `data` (a string or bytes) whole. */
function writeRest(data) {
  // A synchronous write keeps reports in order with the module's own work and survives process.exit().
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

// Metric points are buffered and sent in batches (every FLUSH_POINTS points, at most FLUSH_MS after the first, before any
// other message and at exit), so a training loop may log every step without slowing down. A batch is one `series`
// line: per metric name its steps and values. Where the host reads them packed (it sets ATELIER_PROGRESS_PACKED), they
// go as little-endian float64 arrays in base64 (`stepsF64`, `valuesF64`; a step of NaN: none given): no number is
// formatted, and the host reads them back without parsing a digit; where it also sets ATELIER_PROGRESS_STEP_START, a
// metric's steps that count up by one from an integer go as that first one (`stepStart`), not as an array. Otherwise
// (an older host) as two JSON arrays, as before. Points of one name keep their order; across names a batch lists them
// name by name. A value that is no number is sent as it is, in plain columns, for the host to drop and name in the
// task's log. Where the host also sets ATELIER_PROGRESS_FRAMES, the packed numbers go as raw bytes instead of base64:
// a frame, one line `{"frame":BYTES,"series":[{"name","valuesAt","count", "stepsAt" or "stepStart"}]}` and then BYTES
// bytes, the float64s of each series at its byte offsets (one write straight from the buffers, nothing encoded).
const FLUSH_POINTS = 4096;
const FIRST_POINTS = 256;
const FLUSH_MS = 200;
const SPECIAL = { NaN: Number.NaN, Infinity: Number.POSITIVE_INFINITY, '-Infinity': Number.NEGATIVE_INFINITY };
// Packed only where the host reads it and this machine's float64 is little-endian (as the host reads it).
const packed = process.env.ATELIER_PROGRESS_PACKED === '1' && new Uint8Array(new Float64Array([1]).buffer)[7] === 0x3f;
const stepStarts = packed && process.env.ATELIER_PROGRESS_STEP_START === '1';
const frames = packed && process.env.ATELIER_PROGRESS_FRAMES === '1';

// The batch: its numbers in report order, all names together, in buffers kept from one batch to the next (a training
// loop allocates nothing per point or per batch). `runs` names them: [name, first index, name, first index, ...], a
// name for each stretch of points of one name (a loop logging one metric has one). `steady`: every step so far is the
// one before it plus one (a single stretch's steps can then go as their first). Values that are no number wait apart
// in `odd`. `metric` is called 100,000 times in a tight loop before V8 optimizes it, so its common path is kept to
// a few plain stores: no Map, no object per point. What it reads is declared with `var`: a module's `let` or `const`
// read from a function is checked for being initialized first, a bytecode per read that its unoptimized calls run
// (12 of them a call); `var` has no such check.
var steps = new Float64Array(FLUSH_POINTS);
var values = new Float64Array(FLUSH_POINTS);
var n = 0;
var current;
var nextStep = Number.NaN;
var steady = true;
// The points that fill this batch: the first batch sent is short (FIRST_POINTS), so that a loop's `metric` has called
// `flush` once before V8 optimizes it (Node 20: after ~1,800 calls); optimized without that call's type feedback, it
// would drop its optimized code at its first flush and run unoptimized until V8 compiled it again (a background
// compile, waiting for a core on a busy machine).
var limit = FIRST_POINTS;
let runs = [];
let odd = null;
// The flush timer: undefined (none), true (to be set once the module yields: `arm`), or the timer.
let timer;
let armedAt = 0;

/** `count` float64s of `array` from index `from` as base64 (a typed array may be a view into a larger buffer). */
const base64 = (array, count, from = 0) => Buffer.from(array.buffer, array.byteOffset + from * 8, count * 8).toString('base64');
/** Points per line of a series handed over whole: ~350 KB of base64 with its steps, under the host's 1 MiB a line. */
const SERIES_LINE_POINTS = 16384;
/** A value as JSON carries it: JSON has no NaN or Infinity, so they travel as strings and are stored as the numbers they are. */
const wire = (value) => (typeof value === 'number' && !Number.isFinite(value) ? String(value) : value);

/** Whether `count` steps from `from` count up by one from an integer (then they go as their first: `stepStart`). */
function counting(stepArray, count, from) {
  const first = stepArray[from];
  if (!Number.isSafeInteger(first) || !Number.isSafeInteger(first + count)) return false;
  for (let i = 1; i < count; i++) if (stepArray[from + i] !== first + i) return false;
  return true;
}

/** `count` float64s of `array` from index `from`, as bytes (a view: nothing copied). */
const bytesOf = (array, count, from) => new Uint8Array(array.buffer, array.byteOffset + from * 8, count * 8);

/**
 * One metric's packed series, spelled out rather than JSON.stringify'd: its base64 needs no escaping. Given a frame
 * (`{ parts, bytes }`), its numbers are added to the frame's bytes and the series names their offsets instead.
 */
function packedSeries(name, stepArray, valueArray, count, from, steadySteps, frame = null) {
  let stepsPart = '';
  if (stepArray === null) {
    // none: each point gets its index among the metric's points
  } else if (steadySteps && stepStarts && Number.isSafeInteger(stepArray[from]) && Number.isSafeInteger(stepArray[from] + count))
    stepsPart = `"stepStart":${stepArray[from]},`;
  else if (frame) stepsPart = `"stepsAt":${framed(frame, stepArray, count, from)},`;
  else stepsPart = `"stepsF64":"${base64(stepArray, count, from)}",`;
  if (frame) return `{"name":${JSON.stringify(name)},${stepsPart}"valuesAt":${framed(frame, valueArray, count, from)},"count":${count}}`;
  return `{"name":${JSON.stringify(name)},${stepsPart}"valuesF64":"${base64(valueArray, count, from)}"}`;
}

/** Adds `count` float64s of `array` from `from` to the frame's bytes; their offset in them. */
function framed(frame, array, count, from) {
  const at = frame.bytes;
  frame.parts.push(bytesOf(array, count, from));
  frame.bytes += count * 8;
  return at;
}

/** A frame only where the host reads frames (else null: base64 in the line). */
const newFrame = () => (frames ? { parts: [], bytes: 0 } : null);

/** Sends a batch's series: as a frame where it has bytes, else as one line. */
function sendSeries(batch, frame) {
  if (!frame || frame.bytes === 0) {
    write(`{"series":[${batch.join(',')}]}\n`);
    return;
  }
  if (!open()) return;
  // One write, the line and the numbers together: a grandchild writing to the same channel cannot come between them.
  const head = Buffer.from(`{"frame":${frame.bytes},"series":[${batch.join(',')}]}\n`);
  const parts = [head, ...frame.parts];
  let written;
  for (;;) {
    try {
      written = writevSync(fd, parts);
      break;
    } catch (err) {
      if (err?.code !== 'EAGAIN') throw err;
    }
  }
  // Rarely written in part (a pipe, for a warm worker): the rest as bytes.
  if (written < head.length + frame.bytes) writeRest(Buffer.concat(parts).subarray(written));
}

/** One metric's series in plain JSON columns (an older host, or values that are no number). */
const plainSeries = (name, stepList, valueList) =>
  JSON.stringify({ name, steps: Array.from(stepList, (step) => (Number.isNaN(step) ? null : step)), values: Array.from(valueList, wire) });

/** Sends the buffered metric points now. */
export function flush() {
  if (n === 0 && odd === null) return;
  limit = FLUSH_POINTS;
  const batch = [];
  const frame = newFrame();
  if (runs.length === 2) {
    // One stretch of one name: the loop's case, sent from the buffers as they are.
    batch.push(packed ? packedSeries(runs[0], steps, values, n, 0, steady, frame) : plainSeries(runs[0], steps.subarray(0, n), values.subarray(0, n)));
  } else if (n) {
    // Several names: each name's points gathered, in order, names in the order they first came.
    const byName = new Map();
    for (let r = 0; r < runs.length; r += 2) {
      const end = r + 2 < runs.length ? runs[r + 3] : n;
      let of = byName.get(runs[r]);
      if (!of) byName.set(runs[r], (of = { steps: [], values: [] }));
      for (let i = runs[r + 1]; i < end; i++) {
        of.steps.push(steps[i]);
        of.values.push(values[i]);
      }
    }
    for (const [name, of] of byName) {
      const [s, v] = [Float64Array.from(of.steps), Float64Array.from(of.values)];
      batch.push(packed ? packedSeries(name, s, v, v.length, 0, counting(s, v.length, 0), frame) : plainSeries(name, s, v));
    }
  }
  if (odd) for (const [name, o] of odd) batch.push(JSON.stringify({ name, steps: o.steps, values: o.values }));
  n = 0;
  runs = [];
  current = undefined;
  odd = null;
  sendSeries(batch, frame);
}
process.on('exit', flush);

/**
 * Reports metrics (name → number; NaN and ±Infinity are kept), optionally at a training step (any integer, in any
 * order). Every point is kept; a value that is not a number is dropped with a warning in the task's log.
 */
export function metric(metrics, step) {
  const at = typeof step === 'number' ? step : Number.NaN;
  for (const name in metrics) {
    const value = metrics[name];
    // `point`'s body, inline (a call per point costs, cold).
    if (typeof value !== 'number') other(name, value, at);
    else {
      if (name !== current) begin(name, at);
      if (at !== nextStep) steady = false;
      nextStep = at + 1;
      steps[n] = at;
      values[n] = value;
      if (++n === limit) flush();
    }
  }
}

/** Buffers one point (`at` NaN: no step given). */
function point(name, value, at) {
  if (typeof value !== 'number') other(name, value, at);
  else {
    if (name !== current) begin(name, at);
    if (at !== nextStep) steady = false;
    nextStep = at + 1;
    steps[n] = at;
    values[n] = value;
    if (++n === limit) flush();
  }
}

/** A stretch of points of `name` begins at the next index (the batch's first point arms the timer, if none is set). */
function begin(name, at) {
  if (n === 0) {
    steady = true;
    nextStep = at;
    if (!timer) arm();
  } else steady = false;
  runs.push(name, n);
  current = name;
}

/** A value that is no number: a special's name buffered as the number it names, anything else kept for the host to refuse. */
function other(name, raw, at) {
  const value = typeof raw === 'string' && raw in SPECIAL ? SPECIAL[raw] : raw;
  if (typeof value === 'number') {
    point(name, value, at);
    return;
  }
  odd ??= new Map();
  let o = odd.get(name);
  if (!o) odd.set(name, (o = { steps: [], values: [] }));
  o.steps.push(Number.isNaN(at) ? null : at);
  o.values.push(value);
  if (!timer) arm();
}

/**
 * Reports many points of one metric at once (a loop that has them in arrays): `values[i]` at training step
 * `steps[i]`, or at none when `steps` is null. Arrays or typed arrays; the same rules as `metric` for each point.
 */
export function metricSeries(name, stepList, valueList) {
  if (stepList != null && stepList.length !== valueList.length)
    throw new TypeError(`metricSeries("${name}"): ${stepList.length} steps for ${valueList.length} values`);
  if (packed && valueList instanceof Float64Array && (stepList == null || stepList instanceof Float64Array)) {
    // Numbers all, packed as they lie: written straight from the caller's arrays, a line per SERIES_LINE_POINTS
    // (after what is buffered, so a metric's points keep their order). Without steps, none is sent: each point then
    // gets its index among the metric's points, as `metric` without a step.
    flush();
    const steadySteps = stepList != null && stepStarts && counting(stepList, stepList.length, 0);
    for (let from = 0; from < valueList.length; from += SERIES_LINE_POINTS) {
      const count = Math.min(SERIES_LINE_POINTS, valueList.length - from);
      const frame = newFrame();
      sendSeries([packedSeries(name, stepList, valueList, count, from, steadySteps, frame)], frame);
    }
    return;
  }
  for (let i = 0; i < valueList.length; i++) {
    const step = stepList == null ? null : stepList[i];
    point(name, valueList[i], typeof step === 'number' ? step : Number.NaN);
  }
}

// Arming takes two steps. A timer cannot fire while the module's code runs without yielding, so the batch's first
// point only queues a microtask (a few ns), and the timer is set when it runs, once the module yields (an `await`, the
// end of its top level): for the time left of FLUSH_MS since that point. A tight loop that logs and ends without
// yielding has every point sent by its own flushes and the exit's, and never sets a timer (the first costs ~0.25 ms,
// Node's timers run cold). The timer is not cleared when a batch goes out before it fires (a loop filling batches
// would set and clear one per batch): it then sends what was buffered since, sooner than FLUSH_MS, never later.
function arm() {
  timer = true;
  armedAt = Date.now();
  Promise.resolve().then(setTimer);
}

function setTimer() {
  if (n === 0 && odd === null) {
    timer = undefined;
    return;
  }
  timer = setTimeout(due, Math.max(0, FLUSH_MS - (Date.now() - armedAt)));
  timer.unref?.();
}

function due() {
  timer = undefined;
  flush();
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
