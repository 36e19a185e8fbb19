// Change signals for live pages that show state, not a stream of events (deployments, executor hosts): whoever
// learns of a change says which keys it touched; this replica's watchers (server/deployments/live.ts,
// server/compute/host-changes.ts) read what they need once per batch and tell their subscribers. Signals carry keys
// only, never data. They are coalesced: a burst of touches within BATCH_MS reaches a watcher as one batch. With
// several replicas, a touch also goes to the others over the bus's control topic `live-changed` (one message per
// batch), best effort: a lost one delays a page until the next touch or its reconnect, which reads everything again.
import { randomUUID } from 'node:crypto';
import type { Bus, Subscription } from '../../plugins/bus/types';
import type { Service } from '../lifecycle';

export type LiveTopic = 'deployments' | 'executors';

export interface LiveChanges {
  /** These keys of `topic` may have changed, here: this replica's watchers and (with a shared bus) every other's. */
  touch(topic: LiveTopic, keys: Iterable<string>): void;
  /** The same, for this replica only: a fact every replica learns by itself (a host's heartbeat). */
  touchHere(topic: LiveTopic, keys: Iterable<string>): void;
  /** Calls `onBatch` with each coalesced batch of keys touched from now on, until the returned function is called. */
  listen(topic: LiveTopic, onBatch: (keys: Set<string>) => void): () => void;
  /** The cross-replica subscription (lifecycle). */
  service: Service;
}

/** How long touches are gathered into one batch: a reconciler pass over many deployments is one read, one message. */
const BATCH_MS = 25;
const KEYS_PER_MESSAGE = 1000;

export function createLiveChanges(bus: Pick<Bus, 'kind' | 'publishControl' | 'subscribeControl'>, onError: (error: unknown) => void): LiveChanges {
  const origin = randomUUID();
  const listeners = new Map<LiveTopic, Set<(keys: Set<string>) => void>>();
  const pending = new Map<LiveTopic, { keys: Set<string>; share: Set<string>; timer: NodeJS.Timeout }>();
  const shared = bus.kind === 'jetstream';
  let subscription: Subscription | undefined;

  const flush = (topic: LiveTopic) => {
    const batch = pending.get(topic);
    pending.delete(topic);
    if (!batch) return;
    const told = [...batch.share];
    // A pass over many deployments touches them all: in messages well under any bus's payload limit (~40 KB each).
    for (let i = 0; i < told.length; i += KEYS_PER_MESSAGE)
      bus.publishControl('live-changed', { topic, keys: told.slice(i, i + KEYS_PER_MESSAGE), origin }).catch(onError);
    deliver(topic, batch.keys);
  };
  const deliver = (topic: LiveTopic, keys: Set<string>) => {
    for (const listener of listeners.get(topic) ?? []) {
      try {
        listener(keys);
      } catch (error) {
        onError(error);
      }
    }
  };
  const add = (topic: LiveTopic, keys: Iterable<string>, share: boolean) => {
    // Nobody here listens and no other replica needs to hear: nothing to do.
    if (!share && !listeners.get(topic)?.size) return;
    let batch = pending.get(topic);
    if (!batch) pending.set(topic, (batch = { keys: new Set(), share: new Set(), timer: setTimeout(() => flush(topic), BATCH_MS) }));
    for (const key of keys) {
      batch.keys.add(key);
      if (share) batch.share.add(key);
    }
  };

  return {
    touch: (topic, keys) => add(topic, keys, shared),
    touchHere: (topic, keys) => add(topic, keys, false),
    listen(topic, onBatch) {
      let set = listeners.get(topic);
      if (!set) listeners.set(topic, (set = new Set()));
      set.add(onBatch);
      return () => void set.delete(onBatch);
    },
    service: {
      name: 'live change signals across replicas',
      async start() {
        if (!shared) return;
        subscription = await bus.subscribeControl('live-changed', (message) => {
          if (message.origin === origin || !listeners.get(message.topic)?.size) return;
          add(message.topic, message.keys, false);
        });
      },
      async stop() {
        for (const topic of [...pending.keys()]) {
          clearTimeout(pending.get(topic)!.timer);
          pending.delete(topic);
        }
        await subscription?.stop();
      },
    },
  };
}

/**
 * A stream of what `push` is given, for one subscriber, until `signal` aborts: the watchers' events reach each
 * subscription's generator through one of these.
 */
export function pushStream<T>(signal: AbortSignal): { push(value: T): void; iterator: AsyncIterableIterator<T> } {
  const buffer: T[] = [];
  let wake: (() => void) | null = null;
  let done = signal.aborted;
  signal.addEventListener(
    'abort',
    () => {
      done = true;
      wake?.();
    },
    { once: true },
  );
  const iterator: AsyncIterableIterator<T> = {
    async next() {
      while (!buffer.length && !done) await new Promise<void>((resolve) => (wake = resolve));
      wake = null;
      if (done) return { value: undefined, done: true };
      return { value: buffer.shift()!, done: false };
    },
    async return() {
      done = true;
      wake?.();
      return { value: undefined, done: true };
    },
    [Symbol.asyncIterator]: () => iterator,
  };
  return {
    push(value) {
      if (done) return;
      buffer.push(value);
      wake?.();
    },
    iterator,
  };
}
