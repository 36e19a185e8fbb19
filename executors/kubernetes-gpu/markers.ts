// Progress lines from inside the container: a module prints `@@atelier {json}` on stdout (the pod has no fd 3), with
// the fields of the local executor's fd-3 protocol. Anything malformed becomes a note, never a failed attempt.
import type { TaskContext } from '../../plugins/sdk';

/** Reads one `@@atelier {json}` line: progress, metrics, outputs or a log line; anything else is noted, never fatal. */
export function applyMarker(json: string, ctx: TaskContext, note: (message: string) => void) {
  let message: unknown;
  try {
    message = JSON.parse(json);
  } catch {
    note(`ignored a progress line that is not JSON: ${json.slice(0, 120)}`);
    return;
  }
  if (!message || typeof message !== 'object' || Array.isArray(message)) {
    note(`ignored a progress line that is not a JSON object: ${json.slice(0, 120)}`);
    return;
  }
  const m = message as Record<string, unknown>;
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
  if (!understood) note(`ignored a progress line with no progress, metrics, output(s) or log field: ${json.slice(0, 120)}`);
}

