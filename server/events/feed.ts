import type { WireMetricValue } from '../../plugins/metric-values';
import { traceHop, tracing } from '../../plugins/trace';
import type { Db, Tx } from '../db/client';
import { AtelierError } from '../errors';
import type { Domain, RunStatus, TaskStatus } from '../vocabulary';
import { isCoalesced, pulled } from './feed-buffer';
import { createFeedHolds, type FeedHolds } from './feed-holds';
import { appendRunEvents, RUN_EVENTS_PAGE, runEventHeads, runEventsAfter, runSnapshot } from './run-event-log';
import { createRunSnapshots, type RunSnapshots } from './run-snapshots';

// The live feed of run events that subscriptions read. Each event is stored with the change it reports and
// numbered per run (`seq`, server/events/run-event-log.ts), then published once that has committed; every
// subscriber of a run on this replica shares the same event object. The bus is the fast path and may lose
// events (core NATS, a replica killed between commit and publish): a subscriber that sees a number skipped, and
// the feed when it doubts (the bus reconnected, or a run's stored number ran ahead of what arrived), read the
// stored events instead, so every subscriber ends with what the database holds.

interface FeedBase {
  runId: string;
  at: string;
}
/** An event as a transaction produces it, before it is stored and numbered. */
export type FeedEventBody =
  // `domain`: on a new run's first event, so `allRunEvents` decides on it without reading the run's row per subscriber.
  // `deadlineAt`: the deadline its time limit set, on the events of its admission (and in snapshots); absent: unchanged.
  | (FeedBase & { kind: 'run-status'; status: RunStatus; message: string | null; domain?: Domain; deadlineAt?: string | null })
  | (FeedBase & { kind: 'task-status'; taskId: string; node: string; status: TaskStatus; attempt: number; reason: string | null; message: string | null })
  | (FeedBase & { kind: 'task-progress'; taskId: string; node: string; fraction: number | null; message: string | null })
  | (FeedBase & { kind: 'task-log'; taskId: string; node: string; stream: 'stdout' | 'stderr'; lines: string[] })
  | (FeedBase & {
      kind: 'task-metric';
      taskId: string;
      node: string;
      attempt: number;
      /** Every point of the batch, in report order (`seq` as stored); values as on the wire (NaN/±Infinity as strings). */
      points: { name: string; value: WireMetricValue; step: number; seq: number }[];
      /** The batch's last value per metric, and the last point's step (what a plain watcher shows). */
      metrics: Record<string, WireMetricValue>;
      step: number | null;
    });
/** A stored event: `seq` numbers a run's events 1, 2, 3… in commit order. */
export type FeedEvent = FeedEventBody & { seq: number };

const STORED_REF = 'stored';
/** What the bus carries in place of an event too large for one message: where to read it (plugins/bus/payload-limit.ts). */
export interface StoredEventRef {
  kind: typeof STORED_REF;
  runId: string;
  seq: number;
}

export interface RunFeed {
  /**
   * Stores events in the transaction `tx` and returns them numbered; `publish` them after it commits. `ifEnded`: run ends
   * stored only if the run's row shows them (appendRunEvents).
   */
  append(tx: Db | Tx, events: FeedEventBody[], ifEnded?: ReadonlySet<FeedEventBody>): Promise<FeedEvent[]>;
  publish(events: FeedEvent[]): void;
  /**
   * Events of one run (or of all runs with `'*'`) until the returned function is called. `behind` is told the
   * run's latest stored number when the feed doubts that everything stored reached this replica (one run only).
   */
  subscribe(runId: string, listener: (event: FeedEvent) => void, behind?: (head: number) => void): () => void;
  /** A run's stored events after `after`, oldest first, a page at a time; concurrent asks for the same page share one read. */
  since(runId: string, after: number): Promise<FeedEvent[]>;
  /** Holds readers of these runs' stored events and state until released (feed-holds.ts): see `settled`. */
  hold: FeedHolds['hold'];
  /** A read of one run's stored state (a snapshot) made once no after-commit work of this replica holds the run. */
  settled: FeedHolds['settled'];
  /** A run's state as events, read (`settled`) for all who ask meanwhile (run-snapshots.ts); ask once subscribed. */
  snapshot: RunSnapshots['snapshot'];
  /**
   * Compares each watched run's stored number with what arrived: a run still behind since the last check (or at
   * once with `now`, after the bus reconnected) tells its subscribers. Run every ATELIER_FEED_CHECK_MS.
   */
  check(now?: boolean): Promise<void>;
  /** How many listeners are subscribed now, all runs together (for tests and health: zero once every client left). */
  listenerCount(): number;
}

interface Listener {
  event: (event: FeedEvent) => void;
  behind?: (head: number) => void;
}

/**
 * With a `transport` (the bus's feed broadcast), published events go to every replica and are delivered locally
 * when they come back; without one, they are delivered in-process at once. Without `db` nothing is stored (tests).
 */
export function createRunFeed(options: { db?: Db; transport?: { publish(events: FeedEvent[], tooLarge: (event: unknown) => unknown): void } } = {}): RunFeed & {
  deliver(events: (FeedEvent | StoredEventRef)[]): void;
} {
  const { db, transport } = options;
  const listeners = new Map<string, Set<Listener>>();
  /** Per watched run: the highest number that reached this replica, and the head a check found ahead of it. */
  const arrived = new Map<string, number>();
  const suspect = new Map<string, number>();
  const reading = new Map<string, Promise<FeedEvent[]>>();
  const holds = createFeedHolds();
  const snapshots = createRunSnapshots(
    (runId) => (db ? holds.settled(runId, () => runSnapshot(db, runId)) : Promise.resolve(null)),
    (runId) => listeners.has(runId),
  );
  let count = 0;
  const each = (key: string, call: (listener: Listener) => void) => {
    const set = listeners.get(key);
    if (!set) return;
    for (const listener of set) {
      try {
        call(listener);
      } catch {
        // one broken subscriber must not starve the others
      }
    }
  };
  const deliverAll = (events: FeedEvent[]) => {
    for (const event of events) {
      if (listeners.has(event.runId) && (arrived.get(event.runId) ?? 0) < event.seq) arrived.set(event.runId, event.seq);
      each(event.runId, (l) => l.event(event));
      each('*', (l) => l.event(event));
    }
  };
  const since = (runId: string, after: number) => {
    if (!db) return Promise.resolve([]);
    const key = `${runId}:${after}`;
    let read = reading.get(key);
    if (!read) {
      read = holds.settled(runId, () => runEventsAfter(db, runId, after)).finally(() => reading.delete(key));
      reading.set(key, read);
    }
    return read;
  };
  return {
    append: (tx, events, ifEnded) => appendRunEvents(tx, events, ifEnded),
    publish(events) {
      if (!events.length) return;
      if (tracing()) for (const e of events) if (e.kind === 'task-progress') traceHop('control plane: feed published', e.runId);
      if (!transport) return deliverAll(events);
      try {
        transport.publish(events, (event) => {
          const { runId, seq } = event as FeedEvent;
          return { kind: STORED_REF, runId, seq } satisfies StoredEventRef;
        });
      } catch {
        // Called after the commit: the change happened, and its events are stored; the feed's check reads them.
      }
    },
    deliver(events) {
      if (tracing()) for (const e of events) if (e.kind === 'task-progress') traceHop('control plane: feed delivered', e.runId);
      // An event too large for a bus message came as a reference: read it from the store, then deliver it (after the
      // events around it: subscribers put events in order by number, reading from the store what they lack).
      const refs = events.filter((e): e is StoredEventRef => e.kind === STORED_REF);
      deliverAll(refs.length ? events.filter((e): e is FeedEvent => e.kind !== STORED_REF) : (events as FeedEvent[]));
      for (const ref of refs) {
        if (!listeners.has(ref.runId) && !listeners.has('*')) continue;
        since(ref.runId, ref.seq - 1).then(
          (stored) => deliverAll(stored.filter((e) => e.seq === ref.seq)),
          () => undefined, // the check finds it later
        );
      }
    },
    subscribe(runId, listener, behind) {
      let set = listeners.get(runId);
      if (!set) listeners.set(runId, (set = new Set()));
      // Each subscription gets its own entry, even for a listener function subscribed twice.
      const entry: Listener = { event: (event) => listener(event), behind };
      set.add(entry);
      count++;
      let subscribed = true;
      return () => {
        if (!subscribed) return;
        subscribed = false;
        count--;
        set.delete(entry);
        if (set.size === 0 && listeners.get(runId) === set) {
          listeners.delete(runId);
          arrived.delete(runId);
          suspect.delete(runId);
          snapshots.forget(runId);
        }
      };
    },
    since,
    hold: holds.hold,
    settled: holds.settled,
    snapshot: snapshots.snapshot,
    async check(now = false) {
      const watched = [...listeners.keys()].filter((key) => key !== '*');
      if (!db || !watched.length) return;
      const heads = await runEventHeads(db, watched);
      for (const [runId, head] of heads) {
        if (!listeners.has(runId)) continue;
        const seen = arrived.get(runId) ?? 0;
        if (head <= seen) {
          suspect.delete(runId);
          continue;
        }
        // Ahead once may be an event still on its way; ahead at two checks in a row (or after a reconnect) is lost.
        if (!now && !suspect.has(runId)) {
          suspect.set(runId, head);
          continue;
        }
        suspect.delete(runId);
        arrived.set(runId, head);
        each(runId, (l) => l.behind?.(head));
      }
    },
    listenerCount: () => count,
  };
}

/** Events a subscriber's client may leave waiting (server/events/feed-buffer.ts): of every run, and of one run. */
export const FEED_BUFFER_LIMIT = { all: 10_000, run: 2 * RUN_EVENTS_PAGE };
/** And their bytes (eventBytes), whichever is reached first: a few hosts' batches of a flooded log, not thousands. */
export const FEED_BUFFER_BYTES = 16 * 1024 * 1024;

/**
 * Adapts a feed subscription to an async iterator (for GraphQL subscriptions), buffering between pulls. It ends, and
 * stops listening, when `signal` aborts (at once, even while a pull waits), when returned, or if `signal` had
 * aborted already. Events come as they arrive: see `runEventStream` for one run's events in order with none lost.
 * A client that leaves more than `limit` events waiting when more arrive has its stream end with SUBSCRIBER_TOO_SLOW
 * (what it missed cannot be sent in order any more) once it reads again; it subscribes anew. One delivery, however
 * large, is taken whole (Overflow.wholeDeliveries): only what still waits from earlier ones counts.
 */
export function feedIterator(
  feed: RunFeed,
  runId: string,
  signal?: AbortSignal,
  limit = FEED_BUFFER_LIMIT.all,
  maxBytes = FEED_BUFFER_BYTES,
): AsyncIterableIterator<FeedEvent> {
  let overflowed = false;
  return pulled(
    signal,
    (push) => feed.subscribe(runId, push),
    async function* (first, shift) {
      for (;;) {
        const event = await first();
        if (overflowed)
          throw new AtelierError(
            'SUBSCRIBER_TOO_SLOW',
            `This subscription fell more than ${limit} events or ${maxBytes} bytes behind (its client read slower than events came) and missed some: subscribe again, and read the current state anew.`,
          );
        if (!event) return;
        shift();
        yield event;
      }
    },
    { limit, maxBytes, wholeDeliveries: true, overflowed: () => (overflowed = true) },
  );
}

/** How often a gap is read from the store before the stream goes on past it. */
const GAP_READS = 3;

/**
 * One run's events numbered above `after`, each once and in order, however the bus behaved: a number skipped, or
 * the feed saying the run is further on than what arrived, makes it read the stored events it missed. It listens
 * at once and buffers until `after` is known (a snapshot being read meanwhile); with `readFirst` (a resume) it
 * then reads what was stored after `after` before following the feed. Ends like `feedIterator`. A client that
 * leaves more than `limit` events waiting loses nothing: they are dropped, and read from the store when it reads again.
 */
export function runEventStream(
  feed: RunFeed,
  runId: string,
  after: number | Promise<number>,
  readFirst: boolean,
  signal?: AbortSignal,
  limit = FEED_BUFFER_LIMIT.run,
  maxBytes = FEED_BUFFER_BYTES,
): AsyncIterableIterator<FeedEvent> {
  let cursor = Number.POSITIVE_INFINITY; // the number of the last event yielded; nothing is behind it until `after` is known
  let behind = false;
  let head = 0; // the highest number the feed said is stored
  let gapAt = 0; // the event after the last gap read from the store, and how often it was
  let reads = 0;
  return pulled(
    signal,
    (push, wake) =>
      feed.subscribe(
        runId,
        (event) => push(event, true),
        (stored) => {
          head = Math.max(head, stored);
          if (head > cursor) {
            behind = true;
            wake();
          }
        },
      ),
    async function* (first, shift, ended) {
      cursor = await after;
      behind ||= readFirst || head > cursor;
      for (;;) {
        if (ended()) return;
        if (behind) {
          behind = false;
          let missed: FeedEvent[];
          try {
            missed = await feed.since(runId, cursor);
          } catch {
            // the database is unreachable for now: try again shortly, the feed keeps buffering meanwhile
            behind = true;
            await new Promise((resolve) => setTimeout(resolve, 500));
            continue;
          }
          for (const event of missed) {
            if (event.seq <= cursor) continue;
            cursor = event.seq;
            yield event;
          }
          if (missed.length >= RUN_EVENTS_PAGE) behind = true;
          continue;
        }
        const next = await first();
        if (!next) continue; // ended, or woken to read the store
        if (next.seq <= cursor) {
          shift(); // already read from the store, or the bus delivered it twice
          continue;
        }
        // A number was skipped: read it (and whatever else) from the store. A read shared with another subscriber
        // may have begun before the missing event committed, so a gap still there is read again; only a gap the
        // store still lacks after several reads (every event is stored with its change, so not expected) is passed.
        if (next.seq > cursor + 1) {
          reads = gapAt === next.seq ? reads + 1 : 1;
          gapAt = next.seq;
          if (reads <= GAP_READS) {
            behind = true;
            continue;
          }
        }
        shift();
        cursor = next.seq;
        if (!isCoalesced(next)) yield next;
      }
    },
    // Every event is stored: what a slow client's buffer held is read from the store once it reads again.
    {
      limit,
      maxBytes,
      overflowed: () => {
        behind = true;
        return false;
      },
    },
  );
}
