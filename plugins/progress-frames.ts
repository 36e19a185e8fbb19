// Frames of the progress protocol (plugins/progress-lines.ts), where the host sets ATELIER_PROGRESS_FRAMES (the local
// executor, whose fd 3 carries bytes): a line `{"frame": BYTES, "series": [...]}` and then exactly BYTES raw bytes.
// A series of a frame names where its numbers lie in those bytes instead of carrying them as base64: `valuesAt` (a
// byte offset) and `count` (points), its steps as `stepStart` (counting up by one from it), `stepsAt` (float64s at
// that offset; NaN: none given) or neither (each point its index). Numbers are little-endian float64s, as packed.
// A series of a frame without `valuesAt` is an ordinary one (values that are no number travel so).
import { applySeries, LITTLE_ENDIAN, type ProgressFrame } from './progress-lines';
import { reportMetricSeries, type TaskContext } from './sdk';

/** Applies a frame's series once its bytes are in. Anything malformed is reported through `ignored`, never thrown. */
export function applyProgressFrame(frame: ProgressFrame, bytes: Buffer, ctx: TaskContext, ignored: (why: string) => void): void {
  // What its series may read of the bytes in all: each byte once, as the helpers pack them. Offsets alone would let a
  // line of many series name the same megabyte again and again (a million points each: gigabytes on the host).
  const budget = { left: bytes.length, told: false };
  for (const s of frame.series ?? []) {
    const series = s as { name?: unknown; valuesAt?: unknown } | null;
    if (series && typeof series === 'object' && 'valuesAt' in series) applyFramed(series, bytes, ctx, ignored, budget);
    else applySeries(s, ctx, ignored);
  }
}

function applyFramed(
  series: { name?: unknown; valuesAt?: unknown; count?: unknown; stepsAt?: unknown; stepStart?: unknown },
  bytes: Buffer,
  ctx: TaskContext,
  ignored: (why: string) => void,
  budget: { left: number; told: boolean },
): void {
  const { name, count, stepStart } = series;
  if (typeof name !== 'string') {
    ignored('a metric series without a name');
    return;
  }
  const given = (v: unknown) => v !== undefined && v !== null;
  const within = (at: unknown) => Number.isSafeInteger(at) && (at as number) >= 0 && (at as number) + (count as number) * 8 <= bytes.length;
  const countOk = Number.isSafeInteger(count) && (count as number) >= 0;
  const stepsOk = given(stepStart)
    ? !given(series.stepsAt) && Number.isSafeInteger(stepStart) && Number.isSafeInteger((stepStart as number) + (count as number))
    : !given(series.stepsAt) || within(series.stepsAt);
  if (!countOk || !within(series.valuesAt) || !stepsOk) {
    ignored(
      `metric series "${name}" of a frame needs "count", "valuesAt" (a byte offset) within the frame's ${bytes.length} bytes, and at most one of "stepStart" (an integer) and "stepsAt"`,
    );
    return;
  }
  const reads = (count as number) * 8 * (given(series.stepsAt) ? 2 : 1);
  if (reads > budget.left) {
    if (!budget.told)
      ignored(`metric series from "${name}" on read bytes of the frame that its other series read already (a frame's ${bytes.length} bytes are read once)`);
    budget.told = true;
    return;
  }
  budget.left -= reads;
  const values = float64sAt(bytes, series.valuesAt as number, count as number);
  let steps: Float64Array | null = null;
  if (given(stepStart)) {
    steps = new Float64Array(values.length);
    for (let i = 0; i < steps.length; i++) steps[i] = (stepStart as number) + i;
  } else if (given(series.stepsAt)) steps = float64sAt(bytes, series.stepsAt as number, count as number);
  reportMetricSeries(ctx, name, steps, values);
}

/** `count` little-endian float64s at byte `at` (one aligned copy). */
function float64sAt(bytes: Buffer, at: number, count: number): Float64Array {
  const out = new Float64Array(count);
  if (LITTLE_ENDIAN) new Uint8Array(out.buffer).set(bytes.subarray(at, at + count * 8));
  else for (let i = 0; i < count; i++) out[i] = bytes.readDoubleLE(at + i * 8);
  return out;
}
