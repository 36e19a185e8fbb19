// The progress protocol modules speak, whatever carries it (fd 3 for local processes, `@@atelier` stdout lines in a
// Kubernetes pod): one JSON object per line with `progress`/`message`, `metrics`/`step`, `output`/`outputs`, `log`.
import type { TaskContext } from './sdk';

/** Applies one protocol line to the task context. Anything malformed is reported through `ignored`, never thrown. */
export function applyProgressLine(line: string, ctx: TaskContext, ignored: (why: string) => void): void {
  let msg: unknown;
  try {
    msg = JSON.parse(line);
  } catch {
    ignored('not JSON');
    return;
  }
  if (!msg || typeof msg !== 'object' || Array.isArray(msg)) {
    ignored('not a JSON object');
    return;
  }
  const m = msg as Record<string, unknown>;
  let understood = false;
  if ('progress' in m && (m.progress === null || typeof m.progress === 'number')) {
    ctx.progress(m.progress as number | null, typeof m.message === 'string' ? m.message : null);
    understood = true;
  }
  if (m.metrics && typeof m.metrics === 'object' && !Array.isArray(m.metrics)) {
    const metrics: Record<string, number> = {};
    for (const [name, value] of Object.entries(m.metrics)) if (typeof value === 'number' && Number.isFinite(value)) metrics[name] = value;
    ctx.metric(metrics, typeof m.step === 'number' ? m.step : null);
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
  if (typeof m.log === 'string') {
    ctx.log(m.stream === 'stderr' ? 'stderr' : 'stdout', m.log);
    understood = true;
  }
  if (!understood) ignored('no progress, metrics, output(s) or log field');
}
