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

/** Reports progress: a fraction in [0, 1] (or null when unknown) and an optional message. */
export function progress(fraction, message = null) {
  send({ progress: fraction, message });
}

/** Reports numeric metrics, optionally at a training step. */
export function metric(metrics, step = null) {
  send({ metrics, step });
}

/** Records a named output (any JSON value); it flows to downstream tasks as an input. */
export function output(name, value) {
  send({ output: { name, value } });
}
