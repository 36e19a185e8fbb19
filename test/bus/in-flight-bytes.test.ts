// The control plane's event consumer bounds what it holds off the bus by bytes, not only by count: hosts flooding logs
// in max-payload messages were held up to the count (4,096) times the max payload. Each pull asks the server for no
// more than the room left (max_bytes), so what is held never passes the bound, and every message still comes.
// Real nats-server with a small max_payload; what the consumer holds is counted from the deliveries not yet acked.
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Bus, Delivery } from '../../plugins/bus/types';
import type { ExecutorEvent } from '../../plugins/protocol';
import { createJetStreamBus } from '../../server/bus/jetstream';
import { type NatsServer, startNats } from '../harness/nats';

const MAX_PAYLOAD = 64 * 1024;
/** What the bus allows at most in one message (the bus's largestMessage): the bound is never below it. */
const LARGEST = MAX_PAYLOAD + 4096;
const BOUND = 256 * 1024;
const MESSAGES = 40;

let nats: NatsServer;
let bus: Bus;

beforeAll(async () => {
  nats = await startNats({ maxPayloadBytes: MAX_PAYLOAD });
  bus = await createJetStreamBus({ url: nats.url, streamPrefix: 'INFLIGHTBYTES' });
}, 60_000);
afterAll(async () => {
  await bus?.close();
  await nats?.stop();
});

async function until(check: () => boolean, what: string) {
  for (const deadline = Date.now() + 30_000; !check(); await new Promise((r) => setTimeout(r, 10)))
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
}

it('holds no more bytes of large events than its bound, however many messages its count allows, and takes them all', async () => {
  // A log flood: messages of nearly the max payload each.
  const line = 'x'.repeat(MAX_PAYLOAD - 1024);
  const event = (n: number) =>
    ({ kind: 'log', runId: 'flood', taskId: `t${n}`, attempt: 1, at: new Date().toISOString(), stream: 'stdout', line }) as unknown as ExecutorEvent;
  for (let n = 0; n < MESSAGES; n++) await bus.publishEvent(event(n), `flood:${n}`);
  const size = (d: Delivery<ExecutorEvent>) => Buffer.byteLength(JSON.stringify(d.data));

  const held: Delivery<ExecutorEvent>[] = [];
  let delivered = 0;
  let most = 0;
  const heldBytes = () => held.reduce((sum, d) => sum + size(d), 0);
  const subscription = await bus.consumeEvents(
    async (deliveries) => {
      held.push(...deliveries);
      delivered += deliveries.length;
      most = Math.max(most, heldBytes());
    },
    { durable: 'flood', maxInFlight: 1000, maxBatch: 1000, maxInFlightBytes: BOUND },
  );
  try {
    while (delivered < MESSAGES || held.length) {
      // The consumer has taken what fits: no room left for one more of the largest messages (or all have come).
      await until(() => heldBytes() + LARGEST + MAX_PAYLOAD > BOUND || delivered === MESSAGES, 'the consumer to fill its room');
      expect(heldBytes()).toBeLessThanOrEqual(BOUND);
      await held.shift()!.ack();
    }
  } finally {
    await subscription.stop();
  }
  expect(delivered).toBe(MESSAGES);
  expect(most).toBeLessThanOrEqual(BOUND);
  // A bound at all: more than one message was held at once.
  expect(most).toBeGreaterThan(MAX_PAYLOAD);
});
