// Progress lines from inside the container: a module prints `@@atelier {json}` on stdout (the pod has no fd 3), with
// the fields of the local executor's fd-3 protocol. Anything malformed becomes a note, never a failed attempt.
import { applyProgressLine } from '../../plugins/progress-lines';
import type { TaskContext } from '../../plugins/sdk';

/** Reads one `@@atelier {json}` line: progress, metrics, outputs or a log line; anything else is noted, never fatal. */
export function applyMarker(json: string, ctx: TaskContext, note: (message: string) => void) {
  applyProgressLine(json, ctx, (why) => note(`ignored a progress line (${why}): ${json.slice(0, 120)}`));
}
