import { describe, expect, it } from 'vitest';
import { type ExecutorEvent, SEQ_BLOCK } from '../../plugins/protocol';
import { eventRows } from './event-rows';

const base = { taskId: 't', runId: 'r', attempt: 1, host: 'h', at: '2026-12-05T00:00:00.000Z' };
const started = (seq: number): ExecutorEvent => ({ ...base, seq, kind: 'started', handle: null });
const progress = (seq: number, fraction: number, attempt = 1): ExecutorEvent => ({
  ...base,
  attempt,
  seq,
  kind: 'progress',
  fraction,
  message: `at ${fraction}`,
});
const result = (seq: number, attempt = 1): ExecutorEvent => ({ ...base, attempt, seq, kind: 'result', outcome: { state: 'SUCCEEDED' }, durationMs: 1 });
const log = (seq: number): ExecutorEvent => ({ ...base, seq, kind: 'log', stream: 'stdout', lines: ['x'] });

describe('eventRows: which events get a row of their own', () => {
  it('has a result carry the start and the progress its execution reported before it (the latest), every other event its own row', () => {
    const events = [started(0), progress(1, 0.5), log(2), progress(3, 1), result(4)];
    const { rows, carrier } = eventRows(events);
    expect(rows.map((r) => [r.kind, r.seq])).toEqual([
      ['log', 2],
      ['result', 4],
    ]);
    expect(rows[1]!.payload.progress).toEqual({ seq: 3, fraction: 1, message: 'at 1', at: base.at });
    // Its host is the result's: only the start's own number and time (and a handle, had it one) are kept.
    expect(rows[1]!.payload.started).toEqual({ seq: 0, at: base.at });
    expect(carrier.get(events[0]!)).toBe(events[4]);
    expect(carrier.get(events[1]!)).toBe(events[4]);
    expect(carrier.get(events[3]!)).toBe(events[4]);
    expect(carrier.size).toBe(3);
  });

  it('stores a start alone when its own execution has no result after it in the batch, and keeps a handle it carries', () => {
    const withHandle: ExecutorEvent = { ...base, seq: 0, kind: 'started', handle: { job: 7 } };
    const carried = eventRows([withHandle, result(1)]);
    expect(carried.rows.map((r) => r.kind)).toEqual(['result']);
    expect(carried.rows[0]!.payload.started).toEqual({ seq: 0, at: base.at, handle: { job: 7 } });
    // Another execution's result (the next sequence block), another attempt's result, and a start on its own.
    for (const events of [[started(0), result(SEQ_BLOCK)], [started(0), result(1, 2)], [started(0)]]) {
      const { rows, carrier } = eventRows(events);
      expect(carrier.size).toBe(0);
      expect(rows[0]!.kind).toBe('started');
      expect(rows.find((r) => r.kind === 'result')?.payload.started).toBeUndefined();
    }
  });

  it('stores progress alone when no result of its own execution follows it in the batch', () => {
    const events = [progress(1, 0.5), progress(SEQ_BLOCK + 1, 0.7), result(SEQ_BLOCK), progress(3, 0.9, 2), result(4)];
    const { rows, carrier } = eventRows(events);
    // Another execution's result (the next sequence block), a result that came before it, another attempt's result.
    expect(carrier.size).toBe(1);
    expect(carrier.get(events[0]!)).toBe(events[4]);
    expect(rows.map((r) => [r.kind, r.attempt, r.seq])).toEqual([
      ['progress', 1, SEQ_BLOCK + 1],
      ['result', 1, SEQ_BLOCK],
      ['progress', 2, 3],
      ['result', 1, 4],
    ]);
    expect(rows[1]!.payload.progress).toBeUndefined();
  });
});
