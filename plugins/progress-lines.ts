// The progress protocol modules speak, whatever carries it (fd 3 for local processes, `@@atelier` stdout lines in a
// Kubernetes pod): one JSON object per line with `progress`/`message`, `metrics`/`step`, `points` (a batch of
// `{name, value, step}`), `series` (a batch as columns: `[{name, steps: [...], values: [...]}]`, or packed where the
// host sets ATELIER_PROGRESS_PACKED: `[{name, stepsF64, valuesF64}]`, each base64 of little-endian float64s, a step of
// NaN none given, or `stepStart` for steps counting up by one from it where it also sets ATELIER_PROGRESS_STEP_START;
// what the helpers send), `output`/`outputs`, `log`, `register` (`{model, output, flavor?, signature?,
// metadata?}`: a model version registered from the output once the task has succeeded). Metric values are numbers or
// "NaN", "Infinity", "-Infinity". Where the host reads frames (`frames`), a line may announce raw bytes that follow it
// (plugins/progress-frames.ts).
import { decodeMetricValue } from './metric-values';
import { reportMetricSeries, type TaskContext } from './sdk';

/**
 * Applies one protocol line to the task context. Anything malformed is reported through `ignored`, never thrown.
 * Where `frames` is given (the channel carries bytes), a frame's line is not applied but returned: its bytes follow
 * (at most `frames.maxBytes`), and the caller applies it with them (`applyProgressFrame`).
 */
export function applyProgressLine(line: string, ctx: TaskContext, ignored: (why: string) => void, frames?: { maxBytes: number }): ProgressFrame | null {
  let msg: unknown;
  try {
    msg = JSON.parse(line);
  } catch {
    ignored('not JSON');
    return null;
  }
  if (!msg || typeof msg !== 'object' || Array.isArray(msg)) {
    ignored('not a JSON object');
    return null;
  }
  const m = msg as Record<string, unknown>;
  if (frames && 'frame' in m) return frameOf(m, frames.maxBytes, ignored);
  let understood = false;
  if ('progress' in m && (m.progress === null || typeof m.progress === 'number')) {
    ctx.progress(m.progress as number | null, typeof m.message === 'string' ? m.message : null);
    understood = true;
  }
  const step = (s: unknown) => (typeof s === 'number' ? s : null);
  if (m.metrics && typeof m.metrics === 'object' && !Array.isArray(m.metrics)) {
    ctx.metric(decodedMetrics(m.metrics as Record<string, unknown>, ignored), step(m.step));
    understood = true;
  }
  if (Array.isArray(m.points)) {
    for (const p of m.points as unknown[]) {
      const point = p as { name?: unknown; value?: unknown; step?: unknown } | null;
      if (!point || typeof point !== 'object' || typeof point.name !== 'string') ignored('a metric point without a name');
      else ctx.metric(decodedMetrics({ [point.name]: point.value }, ignored), step(point.step));
    }
    understood = true;
  }
  if (Array.isArray(m.series)) {
    for (const s of m.series as unknown[]) applySeries(s, ctx, ignored);
    understood = true;
  }
  const output = m.output as { name?: unknown; value?: unknown } | undefined;
  if (output && typeof output === 'object' && typeof output.name === 'string' && 'value' in output) {
    ctx.output(output.name, output.value);
    understood = true;
  }
  if (m.outputs && typeof m.outputs === 'object' && !Array.isArray(m.outputs)) {
    for (const [name, value] of Object.entries(m.outputs)) ctx.output(name, value);
    understood = true;
  }
  if ('register' in m) {
    const r = m.register as Record<string, unknown> | null;
    const object = (v: unknown) => v === undefined || v === null || (typeof v === 'object' && !Array.isArray(v));
    if (!r || typeof r !== 'object' || typeof r.model !== 'string' || typeof r.output !== 'string')
      ignored('a register request needs "model" (namespace/name) and "output" (an output name or artifact folder)');
    else if (!object(r.signature) || !object(r.metadata) || (r.flavor != null && typeof r.flavor !== 'string'))
      ignored("a register request's flavor is a string, its signature and metadata JSON objects");
    else if (!ctx.registerModel) ignored('this executor host does not take model registrations');
    else
      ctx.registerModel({
        model: r.model,
        output: r.output,
        flavor: (r.flavor as string | undefined) ?? null,
        signature: (r.signature as Record<string, unknown> | undefined) ?? null,
        metadata: (r.metadata as Record<string, unknown> | undefined) ?? null,
      });
    understood = true;
  }
  if (typeof m.log === 'string') {
    ctx.log(m.stream === 'stderr' ? 'stderr' : 'stdout', m.log);
    understood = true;
  }
  if (!understood) ignored('no progress, metrics, output(s), register or log field');
  return null;
}

/** A frame's line, read: its bytes follow it on the channel. */
export interface ProgressFrame {
  /** How many bytes follow the line. */
  bytes: number;
  /** Its series, applied once the bytes are in; null: too large, its bytes are skipped unread. */
  series: unknown[] | null;
}

/** The frame a protocol message with `frame` announces, or null where its size is no size. */
function frameOf(m: Record<string, unknown>, maxBytes: number, ignored: (why: string) => void): ProgressFrame | null {
  const bytes = m.frame;
  if (typeof bytes !== 'number' || !Number.isSafeInteger(bytes) || bytes < 0) {
    // Where its bytes end is unknown: they are read as lines, each ignored.
    ignored('a frame needs "frame": how many bytes follow its line');
    return null;
  }
  if (bytes > maxBytes) {
    ignored(`a frame of ${bytes} bytes, over the ${maxBytes} one may hold: skipped`);
    return { bytes, series: null };
  }
  if (!Array.isArray(m.series)) {
    ignored('a frame without "series": its bytes are skipped');
    return { bytes, series: null };
  }
  return { bytes, series: m.series };
}

/** Metric values as numbers (specials decoded); a value that is no number is reported through `ignored` and left out. */
function decodedMetrics(metrics: Record<string, unknown>, ignored: (why: string) => void): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, raw] of Object.entries(metrics)) {
    const value = decodeMetricValue(raw);
    if (value === undefined) ignored(`metric "${name}" is not a number (NaN and ±Infinity are written "NaN", "Infinity", "-Infinity")`);
    else out[name] = value;
  }
  return out;
}

/** One metric's points of a `series` batch: `steps[i]` (null: none) and `values[i]`, in the order reported; or packed. */
export function applySeries(s: unknown, ctx: TaskContext, ignored: (why: string) => void): void {
  const series = s as { name?: unknown; steps?: unknown; values?: unknown; stepsF64?: unknown; stepStart?: unknown; valuesF64?: unknown } | null;
  if (!series || typeof series !== 'object' || typeof series.name !== 'string') {
    ignored('a metric series without a name');
    return;
  }
  const { name, steps, values } = series as { name: string; steps: unknown; values: unknown };
  if (typeof series.valuesF64 === 'string') {
    applyPacked(name, series, series.valuesF64, ctx, ignored);
    return;
  }
  if (!Array.isArray(values) || (steps !== undefined && steps !== null && (!Array.isArray(steps) || steps.length !== values.length))) {
    ignored(`metric series "${name}" needs "values" (an array) and "steps" of the same length`);
    return;
  }
  // The numbers as columns (what is no number left out and counted), handed over at once.
  const kept = { steps: new Float64Array(values.length), values: new Float64Array(values.length) };
  let k = 0;
  for (let i = 0; i < values.length; i++) {
    const value = decodeMetricValue(values[i]);
    if (value === undefined) continue;
    const step = Array.isArray(steps) ? steps[i] : null;
    kept.steps[k] = typeof step === 'number' ? step : Number.NaN;
    kept.values[k++] = value;
  }
  if (k) reportMetricSeries(ctx, name, kept.steps.subarray(0, k), kept.values.subarray(0, k));
  const dropped = values.length - k;
  if (dropped) ignored(`metric "${name}" is not a number in ${dropped} of its values (NaN and ±Infinity are written "NaN", "Infinity", "-Infinity")`);
}

export const LITTLE_ENDIAN = new Uint8Array(new Float64Array([1]).buffer)[7] === 0x3f;

/** A base64 string of little-endian float64s as numbers, or null where it is not one. */
function float64s(text: unknown): Float64Array | null {
  if (typeof text !== 'string') return null;
  const bytes = Buffer.from(text, 'base64');
  // Buffer.from skips what is no base64: a length short of the text's says the text was not all base64.
  const padding = text.endsWith('==') ? 2 : text.endsWith('=') ? 1 : 0;
  if (bytes.length % 8 !== 0 || bytes.length !== Math.floor(((text.length - padding) * 3) / 4)) return null;
  const out = new Float64Array(bytes.length / 8);
  if (LITTLE_ENDIAN)
    new Uint8Array(out.buffer).set(bytes); // one copy, aligned (a pooled Buffer may not be)
  else for (let i = 0; i < out.length; i++) out[i] = bytes.readDoubleLE(i * 8);
  return out;
}

/**
 * A packed series (what the helpers send where the host sets ATELIER_PROGRESS_PACKED): a step of NaN is none given;
 * `stepStart` (where the host also sets ATELIER_PROGRESS_STEP_START) instead of `stepsF64`: the steps count up by one
 * from that integer.
 */
function applyPacked(
  name: string,
  series: { stepsF64?: unknown; stepStart?: unknown },
  valuesF64: string,
  ctx: TaskContext,
  ignored: (why: string) => void,
): void {
  const { stepsF64, stepStart } = series;
  const values = float64s(valuesF64);
  const given = (v: unknown) => v !== undefined && v !== null;
  if (given(stepStart)) {
    if (!values || given(stepsF64) || !Number.isSafeInteger(stepStart) || !Number.isSafeInteger((stepStart as number) + values.length)) {
      ignored(`metric series "${name}" needs "valuesF64" (base64 of little-endian float64s) and at most one of "stepStart" (an integer) and "stepsF64"`);
      return;
    }
    const steps = new Float64Array(values.length);
    for (let i = 0; i < steps.length; i++) steps[i] = (stepStart as number) + i;
    reportMetricSeries(ctx, name, steps, values);
    return;
  }
  const steps = given(stepsF64) ? float64s(stepsF64) : null;
  if (!values || (given(stepsF64) && steps?.length !== values.length)) {
    ignored(`metric series "${name}" needs "valuesF64" (base64 of little-endian float64s) and "stepsF64" of the same length`);
    return;
  }
  reportMetricSeries(ctx, name, steps, values);
}
