// The in-process bus: the embedded default. It keeps JetStream's semantics (work queue per pool, durable event
// consumers, ack-wait redelivery, msgId dedupe) so code tested against it behaves the same on NATS.
import type { AttemptClaim, CancelMessage, ClaimAnswer, ControlTopics, EventBundle, ExecutorEvent, TaskMessage } from '../protocol';
import { splitBundle } from './bundle';
import { BUS_DEFAULTS } from './defaults';
import { DurableConsumer, type Live, Sub, Tracked } from './memory-consumer';
import type { Bus, ConsumeOptions, Delivery, Subscription } from './types';
import { Batcher, Deduper, Deque, retryDelayMs, taskConsumerName } from './util';

export interface MemoryBusOptions {
  /** Publishing a msgId seen within this window is dropped (JetStream's duplicate_window). Default 2 min. */
  dedupeWindowMs?: number;
  /** Events older than this are dropped even if unread (JetStream's max_age). Default 7 days. */
  eventMaxAgeMs?: number;
  /** Most events kept; the oldest go first (JetStream's max_msgs). Default 1,000,000. */
  eventMaxCount?: number;
}

type Member = Delivery<ExecutorEvent> & { readonly settled: boolean };

// Trimming walks every durable; doing it every N publishes keeps it off the per-message path.
const TRIM_EVERY = 256;

export function createMemoryBus(options: MemoryBusOptions = {}): Bus {
  const dedupeWindowMs = options.dedupeWindowMs ?? BUS_DEFAULTS.dedupeWindowMs;
  const eventMaxAgeMs = options.eventMaxAgeMs ?? BUS_DEFAULTS.eventMaxAgeMs;
  const eventMaxCount = options.eventMaxCount ?? BUS_DEFAULTS.eventMaxCount;
  let closed = false;

  // JetStream dedupes per stream, so task ids and event ids live in separate windows.
  const taskIds = new Deduper(dedupeWindowMs);
  const eventIds = new Deduper(dedupeWindowMs);

  interface Pool {
    /** The one durable consuming this pool: a work-queue stream allows a single consumer per subject. */
    durable: string | undefined;
    fresh: Deque<Tracked>;
    consumer: DurableConsumer;
  }
  const pools = new Map<string, Pool>();
  let taskSeq = 0;

  function poolOf(name: string): Pool {
    let pool = pools.get(name);
    if (!pool) {
      const fresh = new Deque<Tracked>();
      pool = { durable: undefined, fresh, consumer: new DurableConsumer(() => fresh.shift()) };
      pools.set(name, pool);
    }
    return pool;
  }

  interface StoredEvent {
    seq: number;
    at: number;
    payload: string;
  }
  const log = new Deque<StoredEvent>();
  let lastEventSeq = 0;
  const durables = new Map<string, { consumer: DurableConsumer; cursor: { next: number } }>();

  function firstEventSeq() {
    return log.peek()?.seq ?? lastEventSeq + 1;
  }

  // Retention: an event goes once every durable has acked it, or when it is too old or too many are kept.
  // Until the first durable appears nothing is read yet, so only age and count apply.
  function trimEvents() {
    let floor = Infinity;
    for (const { consumer, cursor } of durables.values()) floor = Math.min(floor, consumer.lowestUnacked() ?? cursor.next);
    if (durables.size === 0) floor = -Infinity;
    const oldest = Date.now() - eventMaxAgeMs;
    for (let head = log.peek(); head; head = log.peek()) {
      if (head.seq >= floor && head.at >= oldest && log.length <= eventMaxCount) break;
      log.shift();
    }
  }

  const subscriptions = new Set<Subscription>();
  const cancelHandlers = new Set<(message: CancelMessage) => void>();
  const feedHandlers = new Set<(events: unknown[]) => void>();
  const claimHandlers: ((claim: AttemptClaim) => Promise<ClaimAnswer>)[] = [];
  let nextClaimHandler = 0;
  /** Servers by their replica's id (serveClaims' `own`): a claim asked `at` one goes to it alone. */
  const ownClaimHandlers = new Map<string, (claim: AttemptClaim) => Promise<ClaimAnswer>>();
  const claimHandler = (at: string | undefined) =>
    at !== undefined ? ownClaimHandlers.get(at) : claimHandlers.length ? claimHandlers[nextClaimHandler++ % claimHandlers.length] : undefined;
  const controlHandlers = new Map<keyof ControlTopics, Set<(message: unknown) => void>>();

  function assertOpen() {
    if (closed) throw new Error('the memory bus is closed');
  }

  function track(subscription: Subscription) {
    subscriptions.add(subscription);
    return subscription;
  }

  return {
    kind: 'memory',

    async publishTask(poolName, message, msgId) {
      assertOpen();
      if (taskIds.seen(msgId)) return;
      const pool = poolOf(poolName);
      pool.fresh.push(new Tracked(++taskSeq, JSON.stringify(message)));
      pool.consumer.schedule();
    },

    async consumeTasks(poolName, handler, consumeOptions) {
      assertOpen();
      const pool = poolOf(poolName);
      const name = taskConsumerName(poolName, consumeOptions.durable);
      if (pool.durable !== undefined && pool.durable !== name) {
        throw new Error(
          `pool "${poolName}" is already consumed by durable "${pool.durable}": a work queue allows one consumer per pool, so every host must use the same durable name`,
        );
      }
      pool.durable = name;
      const sub = new Sub(
        consumeOptions.maxInFlight ?? BUS_DEFAULTS.taskInFlight,
        (delivery) => void runTaskHandler(handler, delivery),
        consumeOptions.maxInFlightBytes,
      );
      return track(attach(pool.consumer, sub, consumeOptions));
    },

    async publishEvent(event, msgId) {
      assertOpen();
      if (msgId !== undefined && eventIds.seen(msgId)) return;
      log.push({ seq: ++lastEventSeq, at: Date.now(), payload: JSON.stringify(event) });
      for (const { consumer } of durables.values()) consumer.schedule();
      if (lastEventSeq % TRIM_EVERY === 0 || log.length > eventMaxCount) trimEvents();
    },

    // One message for a bundle (protocol 2), as on JetStream: one dedupe id, one stored entry, split into one delivery
    // per event on the consuming side. Without it the embedded host published a no-op attempt's start, progress and
    // result one by one, and the recorder met its starts in one batch and its results in the next: a second update
    // of every task row.
    async publishEvents(events, msgId, payload) {
      assertOpen();
      if (eventIds.seen(msgId)) return;
      const bundle: EventBundle = { bundle: events };
      log.push({ seq: ++lastEventSeq, at: Date.now(), payload: payload ?? JSON.stringify(bundle) });
      for (const { consumer } of durables.values()) consumer.schedule();
      if (lastEventSeq % TRIM_EVERY === 0 || log.length > eventMaxCount) trimEvents();
    },

    async consumeEvents(handler, consumeOptions) {
      assertOpen();
      let durable = durables.get(consumeOptions.durable);
      if (!durable) {
        const cursor = { next: firstEventSeq() };
        const consumer = new DurableConsumer(() => {
          if (cursor.next < firstEventSeq()) cursor.next = firstEventSeq();
          if (cursor.next > lastEventSeq) return undefined;
          const stored = log.at(cursor.next - firstEventSeq())!;
          cursor.next++;
          return new Tracked(stored.seq, stored.payload);
        });
        durable = { consumer, cursor };
        durables.set(consumeOptions.durable, durable);
      }
      const maxBatch = consumeOptions.maxBatch ?? BUS_DEFAULTS.maxBatch;
      let batcher: Batcher<Member>;
      // A bundle becomes one delivery per event; the message is acked once all of them are. Its events are admitted
      // as they arrive, as on JetStream (BatchConsumeOptions.admit).
      const sub = new Sub(
        consumeOptions.maxInFlight ?? BUS_DEFAULTS.eventInFlight,
        (delivery) => {
          const members = splitBundle(delivery);
          consumeOptions.admit?.(members.map((m) => m.data));
          for (const member of members) batcher.add(member);
        },
        consumeOptions.maxInFlightBytes,
      );
      batcher = new Batcher<Member>(
        maxBatch,
        (delivery) => delivery.settled,
        async (batch) => {
          try {
            await handler(batch as Delivery<ExecutorEvent>[]);
          } catch {
            for (const delivery of batch) if (!delivery.settled) delivery.nak(retryDelayMs(delivery.redeliveryCount));
          }
        },
      );
      return track(attach(durable.consumer, sub, consumeOptions, () => batcher.clear()));
    },

    async eventBacklog(durableName) {
      assertOpen();
      const durable = durables.get(durableName);
      const recorded = durable ? (durable.consumer.lowestUnacked() ?? durable.cursor.next) - 1 : firstEventSeq() - 1;
      return { published: lastEventSeq, recorded };
    },

    async requestClaim(claim, timeoutMs, at) {
      assertOpen();
      const handler = claimHandler(at);
      if (!handler) return undefined;
      // A copy each way, as over a network.
      return withinTime(
        handler(JSON.parse(JSON.stringify(claim)) as AttemptClaim).then((a) => JSON.parse(JSON.stringify(a)) as ClaimAnswer),
        timeoutMs,
      );
    },

    async requestClaims(claims, timeoutMs, at) {
      assertOpen();
      const handler = claimHandler(at);
      if (!handler) return undefined;
      const copies = JSON.parse(JSON.stringify(claims)) as AttemptClaim[];
      // One server answers the whole batch, its claims handed over in one tick (as over NATS).
      return withinTime(
        Promise.all(copies.map((claim) => handler(claim))).then((answers) => JSON.parse(JSON.stringify(answers)) as ClaimAnswer[]),
        timeoutMs,
      );
    },

    async serveClaims(handler, own) {
      assertOpen();
      const wrapped = (claim: AttemptClaim) => handler(claim);
      claimHandlers.push(wrapped);
      if (own !== undefined) ownClaimHandlers.set(own, wrapped);
      const subscription: Subscription = {
        async stop() {
          const index = claimHandlers.indexOf(wrapped);
          if (index >= 0) claimHandlers.splice(index, 1);
          if (own !== undefined && ownClaimHandlers.get(own) === wrapped) ownClaimHandlers.delete(own);
          subscriptions.delete(subscription);
        },
      };
      return track(subscription);
    },

    async publishCancel(message) {
      assertOpen();
      const payload = JSON.stringify(message);
      // Handlers run later, as a network broadcast would, each with its own copy.
      for (const handler of cancelHandlers) {
        queueMicrotask(() => {
          try {
            handler(JSON.parse(payload) as CancelMessage);
          } catch {
            // A failing cancel handler must not stop the broadcast to the others.
          }
        });
      }
    },

    async subscribeCancel(handler) {
      assertOpen();
      // Wrapped so subscribing the same function twice yields two independent subscriptions.
      const wrapped = (message: CancelMessage) => handler(message);
      cancelHandlers.add(wrapped);
      const subscription: Subscription = {
        async stop() {
          cancelHandlers.delete(wrapped);
          subscriptions.delete(subscription);
        },
      };
      return track(subscription);
    },

    async publishControl(topic, message) {
      assertOpen();
      const payload = JSON.stringify(message);
      for (const handler of controlHandlers.get(topic) ?? []) {
        queueMicrotask(() => {
          try {
            handler(JSON.parse(payload));
          } catch {
            // as with cancels: one failing handler must not stop the broadcast
          }
        });
      }
    },

    async subscribeControl(topic, handler) {
      assertOpen();
      const wrapped = (message: unknown) => handler(message as never);
      if (!controlHandlers.has(topic)) controlHandlers.set(topic, new Set());
      controlHandlers.get(topic)!.add(wrapped);
      const subscription: Subscription = {
        async stop() {
          controlHandlers.get(topic)?.delete(wrapped);
          subscriptions.delete(subscription);
        },
      };
      return track(subscription);
    },

    publishFeed(events) {
      if (closed) return;
      // One process: every subscriber shares the same event objects, as the feed's own fan-out does.
      for (const handler of feedHandlers) {
        try {
          handler(events);
        } catch {
          // one failing replica-side handler must not starve the others
        }
      }
    },

    async subscribeFeed(handler, _onResync, wanted) {
      assertOpen();
      const wrapped = (events: unknown[]) => {
        if (!wanted || wanted()) handler(events);
      };
      feedHandlers.add(wrapped);
      const subscription: Subscription = {
        async stop() {
          feedHandlers.delete(wrapped);
          subscriptions.delete(subscription);
        },
      };
      return track(subscription);
    },

    async close() {
      if (closed) return;
      closed = true;
      await Promise.all([...subscriptions].map((s) => s.stop()));
      cancelHandlers.clear();
      controlHandlers.clear();
      feedHandlers.clear();
      claimHandlers.length = 0;
      ownClaimHandlers.clear();
      for (const pool of pools.values()) pool.consumer.close();
      for (const { consumer } of durables.values()) consumer.close();
    },
  };

  function attach(consumer: DurableConsumer, sub: Sub, consumeOptions: ConsumeOptions, onStop?: () => void): Subscription {
    consumer.ackWaitMs = consumeOptions.ackWaitMs ?? BUS_DEFAULTS.ackWaitMs;
    consumer.attach(sub);
    const subscription: Subscription = {
      async stop() {
        subscriptions.delete(subscription);
        onStop?.();
        consumer.detach(sub);
      },
    };
    return subscription;
  }
}

async function runTaskHandler(handler: (delivery: Delivery<TaskMessage>) => Promise<void>, delivery: Live) {
  try {
    await handler(delivery as Delivery<TaskMessage>);
  } catch {
    if (!delivery.settled) delivery.nak(retryDelayMs(delivery.redeliveryCount));
  }
}

/** `answer`, or undefined when it fails or takes longer than `timeoutMs` (no answer, as over a network). */
async function withinTime<T>(answer: Promise<T>, timeoutMs: number): Promise<T | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), timeoutMs)));
  try {
    return await Promise.race([answer.catch(() => undefined), late]);
  } finally {
    clearTimeout(timer);
  }
}
