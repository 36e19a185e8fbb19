// The attempt reporter alone, on a fake clock and a recording bus: sequence numbers, log batching, progress
// coalescing and the flush on finish, without a host or a real timer.
import { describe, expect, it, vi } from 'vitest';
import { fakeClock } from '../../test/harness/fake-clock';
import type { ExecutorEvent, TaskMessage } from '../protocol';
import { BUNDLE_WRAPPER_BYTES, bundleJson, elementsJson } from './bundle';
import { createReporter, DEFAULT_METRIC_BATCH, MIN_PROGRESS_INTERVAL_MS, SEQ_BLOCK } from './reporter';

const task = { taskId: 't1', runId: 'r1', attempt: 2 } as TaskMessage;

function setup(
  options: {
    redeliveryCount?: number;
    execution?: number;
    bytes?: number;
    maxLogBytes?: number;
    metricBatch?: { points: number; ms: number; holdPoints?: number };
  } = {},
) {
  const clock = fakeClock();
  const events: ExecutorEvent[] = [];
  const msgIds: (string | undefined)[] = [];
  const reporter = createReporter({
    bus: {
      async publishEvent(event, msgId) {
        events.push(event);
        msgIds.push(msgId);
      },
    },
    task: options.execution === undefined ? task : { ...task, execution: options.execution },
    host: 'h',
    redeliveryCount: options.redeliveryCount ?? 0,
    logBatch: { bytes: options.bytes ?? 1_000, ms: 250 },
    maxLogBytes: options.maxLogBytes ?? 1_000_000,
    warn: () => undefined,
    clock,
    metricBatch: options.metricBatch,
  });
  return { clock, events, msgIds, reporter, kinds: () => events.map((e) => e.kind) };
}

describe('attempt reporter', () => {
  it('gives two executions of an attempt numbered alike different message ids, so the bus drops neither as a repeat', async () => {
    // A bus that counted a redelivery as a first delivery: both number their events from block 0.
    const first = setup();
    const second = setup();
    first.reporter.heartbeat();
    second.reporter.started({ pid: 2 });
    expect(first.events[0]!.seq).toBe(second.events[0]!.seq);
    expect(first.msgIds[0]).not.toBe(second.msgIds[0]);
  });

  it("numbers an execution's events and metric points from the block of the number its claim's answer gave it", async () => {
    // The bus called it a first delivery; the control plane knew better (protocol 4).
    const { reporter, events } = setup({ redeliveryCount: 0, execution: 3 });
    reporter.started({ pid: 1 });
    reporter.metric({ loss: 0.5 }, 1);
    reporter.close();
    expect(await reporter.publishResult({ state: 'SUCCEEDED' }, 5, () => false)).toBe(true);
    expect(events.map((e) => e.seq)).toEqual([0, 1, 2].map((n) => 3 * SEQ_BLOCK + n));
    expect(events[1]).toMatchObject({ kind: 'metric', firstPoint: 3 * SEQ_BLOCK });
  });

  it('numbers events without gaps, from its delivery’s own block, and uses them as message ids', async () => {
    const { reporter, events, msgIds, clock } = setup({ redeliveryCount: 1 });
    reporter.started({ pid: 1 });
    reporter.heartbeat();
    reporter.metric({ loss: 0.5 }, 3);
    clock.advance(DEFAULT_METRIC_BATCH.ms); // metric points go out in batches
    reporter.heartbeat();
    expect(await reporter.publishResult({ state: 'SUCCEEDED' }, 5, () => false)).toBe(true);
    expect(events.map((e) => e.seq)).toEqual([0, 1, 2, 3, 4].map((n) => SEQ_BLOCK + n));
    // Each execution's own ids (its events may be numbered like another execution's of the attempt).
    const execution = msgIds[0]!.split(':')[3];
    expect(execution).toMatch(/^[0-9a-f]{16}[0-9a-z]+$/);
    expect(msgIds).toEqual(events.map((e) => `t1:2:${e.seq}:${execution}`));
    expect(events[2]).toMatchObject({
      kind: 'metric',
      firstPoint: SEQ_BLOCK,
      points: [{ name: 'loss', value: 0.5, step: 3 }],
      taskId: 't1',
      runId: 'r1',
      attempt: 2,
      host: 'h',
    });
  });

  it('batches metric points, numbers them in report order, keeps NaN and ±Infinity, and drops what is no number', () => {
    const { reporter, events } = setup();
    for (let i = 0; i < 4_500; i++) reporter.metric({ loss: 1 / (i + 1) }, 4_500 - i); // steps out of order: kept
    expect(events).toEqual([]); // held: a burst is published after it, not while it runs
    reporter.progress(0.5); // …or before any other event, in order
    expect(events.map((e) => (e.kind === 'metric' ? [e.firstPoint, e.points.length] : e.kind))).toEqual([[0, 2_000], [2_000, 2_000], [4_000, 500], 'progress']);
    events.length = 0;
    for (let i = 0; i < 500; i++) reporter.metric({ loss: 1 / (i + 1) }, 4_500 - i);
    reporter.metric({ nan: Number.NaN, up: Number.POSITIVE_INFINITY, down: Number.NEGATIVE_INFINITY, bad: 'x' as unknown as number });
    reporter.metric({ bad: 'y' as unknown as number, nan: 'NaN' as unknown as number });
    reporter.close();
    const last = events.find((e) => e.kind === 'metric' && e.firstPoint === 4_500);
    expect(last?.kind === 'metric' && last.points.slice(500)).toEqual([
      { name: 'nan', value: 'NaN', step: 0, at: expect.any(Number) },
      { name: 'up', value: 'Infinity', step: 0, at: expect.any(Number) },
      { name: 'down', value: '-Infinity', step: 0, at: expect.any(Number) },
      { name: 'nan', value: 'NaN', step: 1, at: expect.any(Number) },
    ]);
    expect(last?.kind === 'metric' && last.points[0]?.step).toBe(4_500);
    const warnings = events.flatMap((e) => (e.kind === 'log' ? e.lines : []));
    expect(warnings).toEqual(['[atelier] metric "bad" dropped: "x" is not a number (NaN and ±Infinity are kept)']);
  });

  it('holds metric points at most its batch time or its held-points cap, then publishes them all, in order', () => {
    const { reporter, events, clock } = setup({ metricBatch: { points: 10, ms: 1_000, holdPoints: 30 } });
    for (let i = 0; i < 25; i++) reporter.metric({ loss: i });
    clock.advance(999);
    expect(events).toEqual([]);
    clock.advance(1);
    expect(events.map((e) => e.kind === 'metric' && [e.firstPoint, e.points.map((p) => p.value)])).toEqual([
      [0, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]],
      [10, [10, 11, 12, 13, 14, 15, 16, 17, 18, 19]],
      [20, [20, 21, 22, 23, 24]],
    ]);
    events.length = 0;
    for (let i = 0; i < 30; i++) reporter.metric({ loss: i }); // the cap: out at once, without the timer
    expect(events.map((e) => e.kind === 'metric' && e.firstPoint)).toEqual([25, 35, 45]);
  });

  it('takes a series as columns with the same rules and numbering as point by point, in report order with them', () => {
    const columns = setup({ metricBatch: { points: 4, ms: 1_000, holdPoints: 100 } });
    const single = setup({ metricBatch: { points: 4, ms: 1_000, holdPoints: 100 } });
    const report = (r: typeof columns.reporter, asSeries: boolean) => {
      r.metric({ loss: 1, acc: 0.1 }, 5);
      const steps = [7, Number.NaN, 2.9, 8];
      const values: unknown[] = [2, Number.NaN, 'bad', Number.NEGATIVE_INFINITY];
      if (asSeries) r.metricSeries('loss', steps, values);
      else for (const [i, v] of values.entries()) r.metric({ loss: v }, Number.isNaN(steps[i]!) ? null : steps[i]);
      r.metric({ acc: 0.2 });
      if (asSeries) r.metricSeries('acc', new Float64Array([Number.NaN, 9.5]), new Float64Array([0.3, Number.POSITIVE_INFINITY]));
      else
        for (const [v, step] of [
          [0.3, null],
          [Number.POSITIVE_INFINITY, 9.5],
        ] as const)
          r.metric({ acc: v }, step);
      r.metricSeries('x', [1], [1, 2]); // refused whole: a line in the task's log
      r.close();
    };
    report(columns.reporter, true);
    report(single.reporter, false);
    const points = (events: ExecutorEvent[]) => events.map((e) => e.kind === 'metric' && [e.firstPoint, e.points.map((p) => [p.name, p.value, p.step])]);
    expect(points(columns.events).slice(0, 2)).toEqual([
      [
        0,
        [
          ['loss', 1, 5],
          ['acc', 0.1, 5],
          ['loss', 2, 7],
          ['loss', 'NaN', 2], // no step: its index among the metric's points
        ],
      ],
      [
        4,
        [
          ['loss', '-Infinity', 8],
          ['acc', 0.2, 1],
          ['acc', 0.3, 2],
          ['acc', 'Infinity', 9],
        ],
      ],
    ]);
    expect(points(columns.events).slice(0, 2)).toEqual(points(single.events).slice(0, 2));
    expect(columns.events.flatMap((e) => (e.kind === 'log' ? e.lines : []))).toEqual([
      '[atelier] metric "loss" dropped: "bad" is not a number (NaN and ±Infinity are kept)',
      '[atelier] metric series "x" dropped: 1 steps for 2 values',
    ]);
  });

  it('batches log lines until the batch is full, per stream', () => {
    const { reporter, events } = setup({ bytes: 10 });
    reporter.log('stdout', 'abcd'); // 5 bytes with its newline
    reporter.log('stderr', 'e');
    expect(events).toEqual([]);
    reporter.log('stdout', 'fghi'); // 10 bytes: full
    expect(events).toMatchObject([{ kind: 'log', stream: 'stdout', lines: ['abcd', 'fghi'] }]);
  });

  it('sends a partial log batch once its time is up', () => {
    const { reporter, events, clock } = setup();
    reporter.log('stdout', 'one');
    reporter.log('stderr', 'two');
    clock.advance(249);
    expect(events).toEqual([]);
    clock.advance(1);
    expect(events).toMatchObject([
      { kind: 'log', stream: 'stdout', lines: ['one'] },
      { kind: 'log', stream: 'stderr', lines: ['two'] },
    ]);
  });

  it('caps the log bytes of an attempt with a notice at once and, when it ends, the bytes dropped', () => {
    const { reporter, events } = setup({ maxLogBytes: 8 });
    reporter.log('stdout', 'abc');
    reporter.log('stdout', 'defgh'); // past the cap: 6 bytes dropped
    reporter.log('stdout', 'more'); // 5
    reporter.log('stderr', 'é'); // 3
    reporter.close();
    reporter.log('stdout', 'after close'); // not counted: the attempt's reports ended
    expect(events).toMatchObject([
      { kind: 'log', stream: 'stdout', lines: ['abc'] },
      {
        kind: 'log',
        stream: 'stderr',
        lines: [
          "[atelier] log output truncated: an attempt's log keeps its first 8 bytes (ATELIER_MAX_LOG_BYTES); the bytes dropped are counted when the attempt ends",
          expect.stringMatching(/^\[atelier\] log output truncated: 14 bytes dropped \(.*\); write bulk output to a file and log it as an artifact/),
        ],
      },
    ]);
    expect(events).toHaveLength(2);
  });

  it('coalesces progress: the first goes at once, then at most one per interval, the latest value winning', () => {
    const { reporter, events, clock } = setup();
    reporter.progress(0.1, 'a');
    reporter.progress(0.2, 'b');
    reporter.progress(7, null); // clamped
    expect(events).toMatchObject([{ kind: 'progress', fraction: 0.1, message: 'a' }]);
    clock.advance(MIN_PROGRESS_INTERVAL_MS);
    expect(events.slice(1)).toMatchObject([{ kind: 'progress', fraction: 1, message: null }]);
    expect(events).toHaveLength(2);
  });

  it('flushes what it holds on close and drops the executor’s late reports; host lines still go out', async () => {
    const { reporter, kinds, events } = setup();
    reporter.progress(0.1);
    reporter.progress(0.5, 'held');
    reporter.log('stdout', 'buffered');
    reporter.close();
    expect(reporter.open).toBe(false);
    expect(kinds()).toEqual(['progress', 'progress', 'log']);
    expect(events[1]).toMatchObject({ fraction: 0.5, message: 'held' });
    reporter.log('stdout', 'late');
    reporter.progress(0.9);
    reporter.metric({ x: 1 });
    reporter.hostLine('cancel failed');
    await reporter.settled();
    expect(kinds()).toEqual(['progress', 'progress', 'log', 'log']);
    expect(events[3]).toMatchObject({ stream: 'stderr', lines: ['[atelier] cancel failed'] });
  });

  it('retries a failing result publish, and gives up when told to', async () => {
    const clock = fakeClock();
    let calls = 0;
    const reporter = createReporter({
      bus: {
        async publishEvent() {
          calls++;
          throw new Error('bus down');
        },
      },
      task,
      host: 'h',
      redeliveryCount: 0,
      logBatch: { bytes: 1_000, ms: 250 },
      maxLogBytes: 1_000,
      warn: () => undefined,
      clock,
    });
    let stop = false;
    const result = reporter.publishResult({ state: 'FAILED' }, 1, () => stop);
    await Promise.resolve();
    await Promise.resolve();
    expect(calls).toBe(1);
    stop = true;
    clock.advance(200);
    expect(await result).toBe(false);
    expect(calls).toBe(2);
  });
});

describe('attempt reporter within the bus’s payload limit', () => {
  function limited(maxPayloadBytes: number) {
    const clock = fakeClock();
    const messages: { single?: ExecutorEvent; bundle?: ExecutorEvent[]; msgId?: string }[] = [];
    const reporter = createReporter({
      bus: {
        maxPayloadBytes: () => maxPayloadBytes,
        async publishEvent(event, msgId) {
          messages.push({ single: event, msgId });
        },
        async publishEvents(events, msgId, payload) {
          // The bundle's bytes come with it, serialized once by the reporter (which checked their size).
          expect(payload).toBe(JSON.stringify({ bundle: events }));
          messages.push({ bundle: events, msgId });
        },
      },
      task: { ...task, protocol: 2 },
      host: 'h',
      redeliveryCount: 0,
      logBatch: { bytes: 100_000, ms: 250 },
      maxLogBytes: 1_000_000,
      warn: () => undefined,
      clock,
    });
    return { clock, messages, reporter };
  }

  it('fails a result too large for a bus message for good, saying why, instead of leaving it to be redelivered', async () => {
    const { reporter, messages } = limited(8 * 1024);
    expect(await reporter.publishResult({ state: 'SUCCEEDED', outputs: { big: 'x'.repeat(10_000) } }, 5, () => false)).toBe(true);
    const result = messages.at(-1)!.single as Extract<ExecutorEvent, { kind: 'result' }>;
    expect(result.outcome).toMatchObject({ state: 'FAILED', reason: 'result-too-large', retryable: false });
    expect(result.outcome.message).toMatch(/the task's result is \d+ bytes, over the 4096 a bus message may carry/);
  });

  it('sends folded events one message each when their bundle would not fit, each under its own id', async () => {
    const { reporter, messages } = limited(8 * 1024);
    reporter.started({ pid: 1 });
    reporter.log('stdout', 'y'.repeat(3_000));
    reporter.close();
    expect(await reporter.publishResult({ state: 'SUCCEEDED', outputs: { v: 'z'.repeat(3_000) } }, 5, () => false)).toBe(true);
    expect(messages.every((m) => m.single)).toBe(true);
    expect(messages.map((m) => m.single!.kind)).toEqual(['started', 'log', 'result']);
    expect(new Set(messages.map((m) => m.msgId)).size).toBe(3);
    // and small ones still fold into one
    const small = limited(64 * 1024);
    small.reporter.started({ pid: 1 });
    expect(await small.reporter.publishResult({ state: 'SUCCEEDED' }, 5, () => false)).toBe(true);
    expect(small.messages).toHaveLength(1);
    expect(small.messages[0]!.bundle!.map((e) => e.kind)).toEqual(['started', 'result']);
  });

  it("serializes a folded attempt's result once: its size check's JSON is the end of the bundle the bus sends", async () => {
    const sent: { events: ExecutorEvent[]; payload?: string }[] = [];
    const reporter = createReporter({
      bus: {
        maxPayloadBytes: () => 64 * 1024,
        publishEvent: async () => undefined,
        async publishEvents(events, _msgId, payload) {
          sent.push({ events, payload });
        },
      },
      task: { ...task, protocol: 2 },
      host: 'h',
      redeliveryCount: 0,
      logBatch: { bytes: 100_000, ms: 250 },
      maxLogBytes: 1_000_000,
      warn: () => undefined,
      clock: fakeClock(),
    });
    reporter.started({ pid: 1 });
    reporter.progress(1, 'done é ✓');
    const stringify = vi.spyOn(JSON, 'stringify');
    let ofResult: number;
    try {
      expect(await reporter.publishResult({ state: 'SUCCEEDED', outputs: { echo: { n: 1, s: 'ü' } } }, 5, () => false)).toBe(true);
    } finally {
      const values = stringify.mock.calls.map(([v]) => v as unknown);
      stringify.mockRestore();
      // Calls whose value holds the result: its own (the size check) and, before, the whole bundle's again.
      ofResult = values.filter((v) => JSON.stringify(v).includes('"kind":"result"')).length;
    }
    expect(ofResult).toBe(1);
    expect(sent).toHaveLength(1);
    expect(sent[0]!.events.map((e) => e.kind)).toEqual(['started', 'progress', 'result']);
    expect(sent[0]!.payload).toBe(JSON.stringify({ bundle: sent[0]!.events }));
  });

  it('builds a bundle byte for byte as JSON.stringify does, from the last event’s JSON where given', () => {
    const events = [
      { kind: 'started', taskId: 't', runId: 'r', attempt: 1, seq: 0, at: 'x', host: 'h', handle: null, attemptKey: undefined },
      { kind: 'progress', taskId: 't', runId: 'r', attempt: 1, seq: 1, at: 'x', host: 'h', fraction: 1, message: '“✓”\n' },
      { kind: 'result', taskId: 't', runId: 'r', attempt: 1, seq: 2, at: 'x', host: 'h', outcome: { state: 'SUCCEEDED' }, durationMs: 3 },
    ] as unknown as ExecutorEvent[];
    for (const n of [1, 2, 3]) {
      const some = events.slice(0, n);
      expect(bundleJson(some, JSON.stringify(some.at(-1)))).toBe(JSON.stringify({ bundle: some }));
      expect(bundleJson(some)).toBe(JSON.stringify({ bundle: some }));
      // Its elements alone, which the host's combiner joins: the bundle less its wrapper.
      expect(`{"bundle":[${elementsJson(some, JSON.stringify(some.at(-1)))}]}`).toBe(JSON.stringify({ bundle: some }));
      expect(`{"bundle":[${elementsJson(some)}]}`).toBe(JSON.stringify({ bundle: some }));
      expect(`{"bundle":[]}`.length).toBe(BUNDLE_WRAPPER_BYTES);
    }
  });
});
