// Event bundles (protocol 2, issue 21): the reporter folds what an attempt says within its window into one
// message, with the result when it comes; the JetStream bus carries a bundle as one message and hands its events
// to consumers one by one, acking the message once all are and redelivering all when one is given back.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Bus, Delivery } from '../../plugins/bus/types';
import { createReporter, FOLD_MS } from '../../plugins/host/reporter';
import type { ExecutorEvent, TaskMessage } from '../../plugins/protocol';
import { createJetStreamBus } from '../../server/bus/jetstream';
import { fakeClock } from '../harness/fake-clock';
import { type NatsServer, startNats } from '../harness/nats';

/** A reporter on a bus that records each message: one event, or a bundle of several. */
function reporterOn(protocol: number | undefined) {
  const clock = fakeClock();
  const messages: { events: ExecutorEvent[]; msgId: string | undefined }[] = [];
  const task = { taskId: 't1', runId: 'r1', attempt: 1, ...(protocol ? { protocol } : {}) } as TaskMessage;
  const reporter = createReporter({
    bus: {
      async publishEvent(event, msgId) {
        messages.push({ events: [event], msgId });
      },
      async publishEvents(events, msgId) {
        messages.push({ events, msgId });
      },
    },
    task,
    host: 'h',
    redeliveryCount: 0,
    logBatch: { bytes: 1_000, ms: 250 },
    maxLogBytes: 1_000_000,
    warn: () => undefined,
    clock,
  });
  return { clock, messages, reporter, shape: () => messages.map((m) => m.events.map((e) => e.kind).join('+')) };
}

describe('the reporter folds events', () => {
  it('sends a short attempt’s start, progress and result as one message, named by its first event', async () => {
    const { reporter, messages, shape } = reporterOn(2);
    reporter.started({ pid: 1 });
    reporter.progress(1, 'done');
    reporter.close();
    await reporter.settled();
    expect(messages).toHaveLength(0); // held for the result
    expect(await reporter.publishResult({ state: 'SUCCEEDED' }, 3, () => false)).toBe(true);
    expect(shape()).toEqual(['started+progress+result']);
    expect(messages[0]!.msgId).toMatch(/^t1:1:0:[0-9a-f]{16}[0-9a-z]+$/);
    expect(messages[0]!.events.map((e) => e.seq)).toEqual([0, 1, 2]);
  });

  it('sends what waited FOLD_MS as one message, and a later result alone', async () => {
    const { reporter, clock, shape } = reporterOn(2);
    reporter.started({ pid: 1 });
    reporter.progress(0.5, 'half');
    clock.advance(FOLD_MS);
    reporter.log('stdout', 'a line');
    reporter.close(); // the log batch goes into the window, and with it into the result's message
    expect(await reporter.publishResult({ state: 'SUCCEEDED' }, 3, () => false)).toBe(true);
    expect(shape()).toEqual(['started+progress', 'log+result']);
  });

  it('folds nothing for a control plane that did not announce protocol 2', async () => {
    const { reporter, shape } = reporterOn(undefined);
    reporter.started({ pid: 1 });
    reporter.progress(1, 'done');
    reporter.close();
    await reporter.settled();
    expect(await reporter.publishResult({ state: 'SUCCEEDED' }, 3, () => false)).toBe(true);
    expect(shape()).toEqual(['started', 'progress', 'result']);
  });
});

let nats: NatsServer | undefined;
let bus: Bus | undefined;

beforeAll(async () => {
  nats = await startNats();
  bus = await createJetStreamBus({ url: nats.url, name: 'wire-bundles', streamPrefix: `W${process.pid}` });
}, 30_000);

afterAll(async () => {
  await bus?.close();
  await nats?.stop();
});

const event = (seq: number, kind: 'started' | 'progress' = 'progress'): ExecutorEvent =>
  kind === 'started'
    ? { taskId: 't9', runId: 'r9', attempt: 1, seq, at: new Date().toISOString(), host: 'h', kind, handle: null }
    : { taskId: 't9', runId: 'r9', attempt: 1, seq, at: new Date().toISOString(), host: 'h', kind, fraction: seq / 10, message: null };

async function until(condition: () => boolean | Promise<boolean>, what: string) {
  for (const deadline = Date.now() + 10_000; Date.now() < deadline; ) {
    if (await condition()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('the JetStream bus carries a bundle as one message', () => {
  it('hands each event over as its own delivery, and acks the message once every one is acked', async () => {
    const seen: ExecutorEvent[] = [];
    const held: Delivery<ExecutorEvent>[] = [];
    const sub = await bus!.consumeEvents(
      async (deliveries) => {
        for (const d of deliveries) {
          seen.push(d.data);
          held.push(d);
        }
      },
      { durable: 'bundle-acks', ackWaitMs: 30_000 },
    );
    try {
      const before = await bus!.eventBacklog('bundle-acks');
      await bus!.publishEvents!([event(0, 'started'), event(1), event(2)], 't9:1:0');
      await bus!.publishEvents!([event(0, 'started'), event(1), event(2)], 't9:1:0'); // a republish: deduped
      await until(() => seen.length === 3, 'three deliveries');
      expect(seen.map((e) => e.seq)).toEqual([0, 1, 2]);
      const after = await bus!.eventBacklog('bundle-acks');
      expect(after.published).toBe(before.published + 1); // one message on the stream
      await held[0]!.ack();
      await held[1]!.ack();
      await new Promise((r) => setTimeout(r, 100));
      expect((await bus!.eventBacklog('bundle-acks')).recorded).toBeLessThan(after.published);
      await held[2]!.ack();
      await until(async () => (await bus!.eventBacklog('bundle-acks')).recorded === after.published, 'the bundle acked');
    } finally {
      await sub.stop();
    }
  });

  it('redelivers every event of a bundle when one of them is given back', async () => {
    const seen: number[] = [];
    let first = true;
    const sub = await bus!.consumeEvents(
      async (deliveries) => {
        for (const d of deliveries) {
          if (d.data.seq < 10) {
            await d.ack(); // the first test's bundle: the durable reads the stream from its start
            continue;
          }
          seen.push(d.data.seq);
          if (first && d.data.seq === 11) {
            first = false;
            d.nak();
          } else await d.ack();
        }
      },
      { durable: 'bundle-naks', ackWaitMs: 30_000 },
    );
    try {
      await bus!.publishEvents!([event(10), event(11), event(12)], 't9:1:10');
      await until(() => seen.length >= 6, 'the bundle twice');
      expect(seen).toEqual([10, 11, 12, 10, 11, 12]);
    } finally {
      await sub.stop();
    }
  });
});
