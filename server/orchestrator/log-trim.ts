// The recorder's first look at a delivery's log lines, as it arrives and before it waits for a batch: lines that no
// recording could keep are let go at once, leaving only their count, so a host that does not cap its log costs the
// control plane the caps' worth of memory per bus message rather than the message's worth (and, once an attempt's log
// has been cut, next to nothing). log-cap.ts counts what was let go here as dropped, once, as it counts the rest.
import type { ExecutorEvent } from '../../plugins/protocol';
import { LOG_CAP_SLACK_BYTES, LOG_CAP_SLACK_LINES, type LogCaps } from './log-cap';
import { lineBytes, trimLines, wellFormed } from './log-lines';

/** Most attempts whose log is known to be cut that one process remembers. */
const REMEMBERED_CUTS = 10_000;

/** The attempts (`taskId:attempt`) whose log was cut by a recording that committed: nothing more of them is kept. */
export class CutLogs {
  private readonly cut = new Set<string>();
  add(pair: string) {
    if (this.cut.size >= REMEMBERED_CUTS) this.cut.clear();
    this.cut.add(pair);
  }
  has(pair: string) {
    return this.cut.has(pair);
  }
}

/**
 * Lets go of the log lines of one bus message's `events` (a bundle is one attempt's, in sequence order) that no
 * recording could keep: those of an attempt whose log is cut, and those past the caps counting from the message's
 * first line. (Whatever was recorded before, an attempt keeps at most the caps' worth of these events' lines, as a
 * prefix of them in sequence order; so a line past the caps counting from the first is never kept.) Changes the events
 * in place: they are the delivery's own, parsed from it.
 */
export function trimDelivery(events: ExecutorEvent[], caps: LogCaps, cut: CutLogs): void {
  const seen = new Map<string, { bytes: number; lines: number }>();
  for (const e of events) {
    if (e.kind !== 'log' || !wellFormed(e)) continue;
    const pair = `${e.taskId}:${e.attempt}`;
    const sum = seen.get(pair) ?? { bytes: 0, lines: 0 };
    seen.set(pair, sum);
    let keep = cut.has(pair) ? 0 : e.lines.length;
    if (keep) {
      for (let i = 0; i < e.lines.length; i++) {
        sum.bytes += lineBytes(e.lines[i]!);
        sum.lines += 1;
        if (sum.bytes > caps.maxBytes + LOG_CAP_SLACK_BYTES || sum.lines > caps.maxLines + LOG_CAP_SLACK_LINES) {
          keep = i;
          break;
        }
      }
    }
    if (keep === e.lines.length) continue;
    trimLines(e, keep);
    // Past the caps in this message: every later line of the attempt in it goes too.
    sum.bytes = Number.POSITIVE_INFINITY;
  }
}
