// The host's combiner of event messages (protocol 7) alone and under two attempts' reporters, on a recording bus:
// which messages go together, within what size, under which id, and what a failed shared publish does to each attempt.
import { describe, expect, it } from 'vitest';
import { fakeClock } from '../../test/harness/fake-clock';
import type { ExecutorEvent, TaskMessage } from '../protocol';
import { bundleJson, elementsJson } from './bundle';
import { createEventCombiner, type EventMessage } from './event-combiner';
import { createReporter } from './reporter';

interface Sent {
  events: ExecutorEvent[];
  id: string;
  payload: string;
}

/** A bus that records what it is asked to publish and fails the publishes `failing` says to fail. */
function recordingBus(failing: (call: number) => boolean = () => false) {
  const sent: Sent[] = [];
  let calls = 0;
  const bus = {
    maxPayloadBytes: () => 1024 * 1024,
    async publishEvent(event: ExecutorEvent, msgId?: string) {
      if (failing(++calls)) throw new Error('bus down');
      sent.push({ events: [event], id: msgId!, payload: JSON.stringify(event) });
    },
    async publishEvents(events: ExecutorEvent[], msgId: string, payload?: string) {
      if (failing(++calls)) throw new Error('bus down');
      sent.push({ events, id: msgId, payload: payload! });
    },
  };
  return { bus, sent, calls: () => calls };
}

const event = (runId: string, taskId: string, seq: number, kind: 'started' | 'result' = 'started') =>
  ({ kind, taskId, runId, attempt: 1, seq, at: '2026-12-07T00:00:00.000Z', host: 'h', handle: null }) as ExecutorEvent;

/** An attempt's message as its reporter makes it: one event alone, several as a bundle. */
function message(runId: string, taskId: string, count = 2): EventMessage {
  const events = Array.from({ length: count }, (_, i) => event(runId, taskId, i, i === count - 1 ? 'result' : 'started'));
  return { events, elements: elementsJson(events), id: `${taskId}:1:0:x` };
}

/** The bytes a message goes as alone: its one event's JSON, or its events' bundle. */
const alone = (m: EventMessage) => (m.events.length === 1 ? JSON.stringify(m.events[0]) : bundleJson(m.events));

/** Waits for the host's event loop to run what the combiner scheduled (its window is the current turn). */
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

async function until(condition: () => boolean) {
  for (let i = 0; i < 1_000 && !condition(); i++) await nextTurn();
  expect(condition()).toBe(true);
}

describe('event combiner', () => {
  it("sends one run's messages of one turn as one bundle under its first event's id and its count, other runs apart", async () => {
    const { bus, sent } = recordingBus();
    const combiner = createEventCombiner({ bus, maxBytes: () => 1024 * 1024 });
    const a = message('r1', 'a');
    const b = message('r1', 'b');
    const c = message('r2', 'c');
    await Promise.all([combiner.add('r1', a).send(), combiner.add('r2', c).send(), combiner.add('r1', b).send()]);
    expect(sent).toHaveLength(2);
    const r1 = sent.find((s) => s.events[0]!.runId === 'r1')!;
    expect(r1.events).toEqual([...a.events, ...b.events]);
    expect(r1.payload).toBe(JSON.stringify({ bundle: r1.events }));
    expect(r1.id).toBe(`${a.id}+4`);
    // A message alone goes as it would without a combiner: its own bytes under its own id.
    const r2 = sent.find((s) => s.events[0]!.runId === 'r2')!;
    expect(r2).toEqual({ events: c.events, id: c.id, payload: alone(c) });
  });

  it('goes alone for a single event, as publishEvent, under its own id', async () => {
    const { bus, sent } = recordingBus();
    const combiner = createEventCombiner({ bus, maxBytes: () => 1024 * 1024 });
    const lone = message('r1', 'a', 1);
    await combiner.add('r1', lone).send();
    expect(sent).toEqual([{ events: lone.events, id: lone.id, payload: alone(lone) }]);
  });

  it("starts another message when the run's would pass the bus's limit or its count of attempts", async () => {
    const { bus, sent } = recordingBus();
    const one = message('r1', 'a');
    // Room for two attempts' messages, not three.
    const maxBytes = 2 * Buffer.byteLength(alone(one)) + 20;
    const combiner = createEventCombiner({ bus, maxBytes: () => maxBytes });
    await Promise.all(['a', 'b', 'c'].map((t) => combiner.add('r1', message('r1', t)).send()));
    expect(sent.map((s) => new Set(s.events.map((e) => e.taskId)).size)).toEqual([2, 1]);
    for (const s of sent) expect(Buffer.byteLength(s.payload)).toBeLessThanOrEqual(maxBytes);

    const counted = recordingBus();
    const few = createEventCombiner({ bus: counted.bus, maxBytes: () => 1024 * 1024, maxCombined: 2 });
    await Promise.all(['a', 'b', 'c', 'd', 'e'].map((t) => few.add('r1', message('r1', t)).send()));
    expect(counted.sent.map((s) => new Set(s.events.map((e) => e.taskId)).size)).toEqual([2, 2, 1]);
  });

  it('sends a message again, after a failure, as the same bytes under the same id, once for all its attempts', async () => {
    const { bus, sent, calls } = recordingBus((call) => call === 1);
    const combiner = createEventCombiner({ bus, maxBytes: () => 1024 * 1024 });
    const first = combiner.add('r1', message('r1', 'a'));
    const second = combiner.add('r1', message('r1', 'b'));
    // The failed publish fails every attempt in it.
    const [a, b] = await Promise.allSettled([first.send(), second.send()]);
    expect([a.status, b.status]).toEqual(['rejected', 'rejected']);
    // A later message of the run is another message: the failed one is not regrouped with it.
    const third = combiner.add('r1', message('r1', 'c'));
    // Both attempts retry at once: one publish for both, as it was.
    await Promise.all([first.send(), second.send(), third.send()]);
    expect(calls()).toBe(3);
    const retried = sent.find((s) => s.events[0]!.taskId === 'a')!;
    expect(retried.id).toBe('a:1:0:x+4');
    expect(retried.events.map((e) => e.taskId)).toEqual(['a', 'a', 'b', 'b']);
    expect(retried.payload).toBe(JSON.stringify({ bundle: retried.events }));
    // Published once: an attempt that asks again gets it without another publish.
    await first.send();
    expect(calls()).toBe(3);
  });
});

describe('attempt reporters sharing the combiner', () => {
  const task = (taskId: string, protocol: number) => ({ taskId, runId: 'r1', attempt: 1, protocol }) as TaskMessage;

  function reporters(protocol: number, failing?: (call: number) => boolean) {
    const recorded = recordingBus(failing);
    const clock = fakeClock();
    const combiner = createEventCombiner({ bus: recorded.bus, maxBytes: () => 1024 * 1024 - 4096 });
    const make = (taskId: string) =>
      createReporter({
        bus: recorded.bus,
        task: task(taskId, protocol),
        host: 'h',
        redeliveryCount: 0,
        logBatch: { bytes: 1_000, ms: 250 },
        maxLogBytes: 1_000,
        warn: () => undefined,
        clock,
        combiner,
      });
    return { ...recorded, clock, a: make('a'), b: make('b') };
  }

  it('sends two attempts of a run, ending in the same turn, as one message for a control plane at 7', async () => {
    const { a, b, sent } = reporters(7);
    for (const r of [a, b]) r.started({ pid: 1 });
    expect(await Promise.all([a, b].map((r) => r.publishResult({ state: 'SUCCEEDED' }, 1, () => false)))).toEqual([true, true]);
    expect(sent).toHaveLength(1);
    expect(sent[0]!.events.map((e) => `${e.taskId}:${e.kind}`)).toEqual(['a:started', 'a:result', 'b:started', 'b:result']);
  });

  it('combines nothing for a control plane below 7: each attempt its own message, as before', async () => {
    const { a, b, sent } = reporters(6);
    for (const r of [a, b]) r.started({ pid: 1 });
    expect(await Promise.all([a, b].map((r) => r.publishResult({ state: 'SUCCEEDED' }, 1, () => false)))).toEqual([true, true]);
    expect(sent.map((s) => s.events.map((e) => `${e.taskId}:${e.kind}`))).toEqual([
      ['a:started', 'a:result'],
      ['b:started', 'b:result'],
    ]);
  });

  it('fails and retries every attempt of a failed shared publish, each left to give up on its own', async () => {
    const { a, b, sent, calls, clock } = reporters(7, (call) => call <= 2);
    for (const r of [a, b]) r.started({ pid: 1 });
    let bGivesUp = false;
    const results = [a.publishResult({ state: 'SUCCEEDED' }, 1, () => false), b.publishResult({ state: 'SUCCEEDED' }, 1, () => bGivesUp)];
    await until(() => calls() === 1); // the shared publish failed: both wait to retry
    bGivesUp = true; // b's host is stopping: it gives up at its next failure, as it would alone
    clock.advance(200);
    expect(await results[1]).toBe(false); // one retry for both, failed again
    expect(calls()).toBe(2);
    clock.advance(400);
    expect(await results[0]).toBe(true);
    // a's retry republished the message as it was: b's events still in it, under the same id.
    expect(sent).toHaveLength(1);
    expect(sent[0]!.events.map((e) => `${e.taskId}:${e.kind}`)).toEqual(['a:started', 'a:result', 'b:started', 'b:result']);
    expect(sent[0]!.id).toMatch(/^a:1:0:[0-9a-z]+\+4$/);
  });
});
