import type { RunStatus, TaskStatus } from '../vocabulary';

// The live feed of run events that subscriptions read. Published once per event after the state it reports
// has committed; every subscriber of a run shares the same event object.

interface FeedBase {
  runId: string;
  at: string;
}
export type FeedEvent =
  | (FeedBase & { kind: 'run-status'; status: RunStatus; message: string | null })
  | (FeedBase & { kind: 'task-status'; taskId: string; node: string; status: TaskStatus; attempt: number; reason: string | null; message: string | null })
  | (FeedBase & { kind: 'task-progress'; taskId: string; node: string; fraction: number | null; message: string | null })
  | (FeedBase & { kind: 'task-log'; taskId: string; node: string; stream: 'stdout' | 'stderr'; lines: string[] })
  | (FeedBase & { kind: 'task-metric'; taskId: string; node: string; metrics: Record<string, number>; step: number | null });

export interface RunFeed {
  publish(events: FeedEvent[]): void;
  /** Events of one run (or of all runs with `'*'`) until the returned function is called. */
  subscribe(runId: string, listener: (event: FeedEvent) => void): () => void;
  /** How many listeners are subscribed now, all runs together (for tests and health: zero once every client left). */
  listenerCount(): number;
}

/**
 * With a `transport` (the bus's feed broadcast), published events go to every replica and are delivered locally
 * when they come back; without one, they are delivered in-process at once.
 */
export function createRunFeed(transport?: { publish(events: FeedEvent[]): void }): RunFeed & { deliver(events: FeedEvent[]): void } {
  const listeners = new Map<string, Set<(event: FeedEvent) => void>>();
  let count = 0;
  const deliver = (key: string, event: FeedEvent) => {
    const set = listeners.get(key);
    if (!set) return;
    for (const listener of set) {
      try {
        listener(event);
      } catch {
        // one broken subscriber must not starve the others
      }
    }
  };
  const deliverAll = (events: FeedEvent[]) => {
    for (const event of events) {
      deliver(event.runId, event);
      deliver('*', event);
    }
  };
  return {
    publish(events) {
      if (!events.length) return;
      if (transport) transport.publish(events);
      else deliverAll(events);
    },
    deliver: deliverAll,
    subscribe(runId, listener) {
      let set = listeners.get(runId);
      if (!set) listeners.set(runId, (set = new Set()));
      // Each subscription gets its own entry, even for a listener function subscribed twice.
      const entry = (event: FeedEvent) => listener(event);
      set.add(entry);
      count++;
      let subscribed = true;
      return () => {
        if (!subscribed) return;
        subscribed = false;
        count--;
        set.delete(entry);
        if (set.size === 0 && listeners.get(runId) === set) listeners.delete(runId);
      };
    },
    listenerCount: () => count,
  };
}

/**
 * Adapts a feed subscription to an async iterator (for GraphQL subscriptions), buffering between pulls. It ends, and
 * stops listening, when `signal` aborts (at once, even while a pull waits), when returned, or if `signal` had
 * aborted already.
 */
export function feedIterator(feed: RunFeed, runId: string, signal?: AbortSignal): AsyncIterableIterator<FeedEvent> {
  const buffer: FeedEvent[] = [];
  let wake: (() => void) | null = null;
  let done = false;
  const unsubscribe = feed.subscribe(runId, (event) => {
    buffer.push(event);
    wake?.();
  });
  const finish = () => {
    if (done) return;
    done = true;
    buffer.length = 0;
    unsubscribe();
    signal?.removeEventListener('abort', finish);
    wake?.();
  };
  if (signal?.aborted) finish();
  else signal?.addEventListener('abort', finish, { once: true });
  const iterator: AsyncIterableIterator<FeedEvent> = {
    async next() {
      while (!buffer.length && !done) await new Promise<void>((resolve) => (wake = resolve));
      wake = null;
      if (buffer.length) return { value: buffer.shift()!, done: false };
      return { value: undefined, done: true };
    },
    async return() {
      finish();
      return { value: undefined, done: true };
    },
    [Symbol.asyncIterator]() {
      return iterator;
    },
  };
  return iterator;
}
