// The early trim of a delivery's log lines (log-trim.ts): what no recording could keep is let go as a message arrives,
// and counted, so log-cap.ts can count it as dropped.
import { describe, expect, it } from 'vitest';
import type { ExecutorEvent } from '../../plugins/protocol';
import { LOG_CAP_SLACK_BYTES, LOG_CAP_SLACK_LINES } from './log-cap';
import { type Log, trimmedOf, wellFormed } from './log-lines';
import { CutLogs, trimDelivery } from './log-trim';

const caps = { maxBytes: 1024, maxLines: 100 };
const base = {
  taskId: '00000000-0000-4000-8000-000000000001',
  runId: '00000000-0000-4000-8000-000000000002',
  attempt: 1,
  host: 'h',
  at: '2026-01-01T00:00:00Z',
};
const log = (seq: number, lines: string[]): Log => ({ ...base, seq, kind: 'log', stream: 'stdout', lines });
const line = 'x'.repeat(99); // 100 bytes with its end

describe('trimDelivery', () => {
  it('leaves a message within the caps as it is', () => {
    const events: ExecutorEvent[] = [log(0, Array(10).fill(line)), log(1, Array(10).fill(line))];
    trimDelivery(events, caps, new CutLogs());
    expect(events.map((e) => (e as Log).lines.length)).toEqual([10, 10]);
    expect(events.map((e) => trimmedOf(e as Log))).toEqual([undefined, undefined]);
  });

  it('lets go of the lines past the byte cap counting from the message’s first, and says how many', () => {
    const fits = Math.floor((caps.maxBytes + LOG_CAP_SLACK_BYTES) / 100);
    const events = [log(0, Array(fits - 5).fill(line)), log(1, Array(10).fill(line)), log(2, Array(10).fill(line))];
    trimDelivery(events, caps, new CutLogs());
    expect(events.map((e) => e.lines.length)).toEqual([fits - 5, 5, 0]);
    expect(events.map((e) => trimmedOf(e))).toEqual([undefined, { bytes: 500, lines: 5 }, { bytes: 1000, lines: 10 }]);
    // Still counted as a host's log event, though it holds no line now.
    expect(wellFormed(events[2]!)).toBe(true);
  });

  it('lets go of the lines past the line cap', () => {
    const events = [log(0, Array(caps.maxLines + LOG_CAP_SLACK_LINES + 3).fill('y'))];
    trimDelivery(events, caps, new CutLogs());
    expect(events[0]!.lines.length).toBe(caps.maxLines + LOG_CAP_SLACK_LINES);
    expect(trimmedOf(events[0]!)).toEqual({ bytes: 6, lines: 3 });
  });

  it('lets go of every line of an attempt whose log is cut', () => {
    const cut = new CutLogs();
    cut.add(`${base.taskId}:${base.attempt}`);
    const other = { ...log(1, ['kept']), attempt: 2 };
    const events = [log(0, ['a', 'bb']), other];
    trimDelivery(events, caps, cut);
    expect(events.map((e) => e.lines)).toEqual([[], ['kept']]);
    expect(trimmedOf(events[0]!)).toEqual({ bytes: 5, lines: 2 });
  });
});
