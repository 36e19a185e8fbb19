// What the control plane's log caps (log-cap.ts) count, in the words they share with the early trim of a delivery
// (log-trim.ts): a log event as a host makes it, a line's bytes as a host counts them, a set of sequence numbers.
import type { ExecutorEvent } from '../../plugins/protocol';

export type Log = Extract<ExecutorEvent, { kind: 'log' }>;

/** A line's bytes as a host counts them: its UTF-8 bytes and one for its end. */
export const lineBytes = (line: string) => Buffer.byteLength(line) + 1;

/** What was let go of a log event as it arrived (log-trim.ts): its last lines, so many bytes. */
const trimmed = new WeakMap<Log, { bytes: number; lines: number }>();

/** Bytes and lines let go of `e` on arrival (none: undefined). */
export const trimmedOf = (e: Log) => trimmed.get(e);

/** Lets go of `e`'s lines from `keep` on, remembering their count (log-trim.ts). */
export function trimLines(e: Log, keep: number): void {
  const gone = e.lines.slice(keep);
  trimmed.set(e, { bytes: gone.reduce((n, line) => n + lineBytes(line), 0), lines: gone.length });
  e.lines = e.lines.slice(0, keep);
}

/**
 * A log event as a host makes it: some lines, all text, on stdout or stderr. Any other (no lines: a row each for
 * nothing; lines or a stream of another shape, whose size the count would miss) is not stored. One whose lines were
 * all let go on arrival is still counted.
 */
export const wellFormed = (e: Log) =>
  Array.isArray(e.lines) &&
  (e.lines.length > 0 || trimmed.has(e)) &&
  e.lines.every((line) => typeof line === 'string') &&
  (e.stream === 'stdout' || e.stream === 'stderr');

/** Whether an attempt's log was cut already (its count of dropped bytes or lines is not zero). */
export const droppedBefore = (row: { dropped: string | number; dropped_lines: string | number }) => Number(row.dropped) > 0 || Number(row.dropped_lines) > 0;

/** `seqs` as a Postgres int8multirange literal: `{[0,3),[5,6)}` for 0, 1, 2, 5. */
export function seqSet(seqs: readonly number[]): string {
  const sorted = [...new Set(seqs)].sort((a, b) => a - b);
  const ranges: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    ranges.push(`[${sorted[i]},${sorted[j]! + 1})`);
    i = j + 1;
  }
  return `{${ranges.join(',')}}`;
}
