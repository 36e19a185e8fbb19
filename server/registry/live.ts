// Registry events, live: the registry's changes write `registry_events` rows in their own transactions
// (events.ts); after a commit the writer kicks this feed (the GraphQL edge after every mutation, the
// module-registration handler after its registrations), which reads the rows it has not yet passed on and hands
// them to the subscribers of this replica. Nothing polls: with no kick, nothing is read; with no subscriber, a kick
// reads nothing. Rows are read a little behind the last one seen (concurrent transactions may commit their `seq`
// out of order), and each is passed on once. With several replicas, `acrossReplicas` passes every kick on to the
// others over the bus, so a subscriber on one replica sees what another committed.
import { and, asc, eq, gt, max } from 'drizzle-orm';
import type { Db } from '../db/client';
import { registeredModels, registryEvents } from '../db/tables/registry';

export interface LiveRegistryEvent {
  seq: number;
  type: string;
  modelId: string;
  namespace: string;
  name: string;
  /** `namespace/name`. */
  model: string;
  actorId: string | null;
  payload: Record<string, unknown>;
  at: Date;
}

export interface RegistryFeed {
  /** Reads what committed since the last read and passes it on; cheap when nobody listens. Never throws. */
  kick(): void;
  /** Events committed from now on, in `seq` order per read, until `signal` aborts. */
  stream(signal: AbortSignal): AsyncIterableIterator<LiveRegistryEvent>;
  /** How many streams are listening now (tests: a subscription is listening once this counts it). */
  listening(): number;
}

/** How far behind the highest `seq` seen each read starts, and how many recent numbers are remembered as passed on. */
const REORDER_WINDOW = 200;
const PAGE = 1000;

export function createRegistryFeed(db: Db, onError: (error: unknown) => void = () => {}): RegistryFeed {
  const listeners = new Set<{ from: number; push: (e: LiveRegistryEvent) => void }>();
  let high: number | null = null; // the highest seq passed on (or present when the first subscriber came)
  const seen = new Set<number>();
  let running: Promise<void> | null = null;
  let again = false;

  const headNow = async () => Number((await db.select({ head: max(registryEvents.seq) }).from(registryEvents))[0]?.head ?? 0);

  async function read(): Promise<void> {
    if (high === null) return;
    for (;;) {
      const rows = await db
        .select({
          seq: registryEvents.seq,
          type: registryEvents.type,
          modelId: registryEvents.modelId,
          actorId: registryEvents.actorId,
          payload: registryEvents.payload,
          at: registryEvents.createdAt,
          namespace: registeredModels.namespace,
          name: registeredModels.name,
        })
        .from(registryEvents)
        .innerJoin(registeredModels, eq(registeredModels.id, registryEvents.modelId))
        .where(and(gt(registryEvents.seq, Math.max(0, high - REORDER_WINDOW))))
        .orderBy(asc(registryEvents.seq))
        .limit(PAGE);
      const fresh = rows.filter((r) => !seen.has(Number(r.seq)));
      for (const r of fresh) {
        const seq = Number(r.seq);
        seen.add(seq);
        high = Math.max(high, seq);
        const event: LiveRegistryEvent = { ...r, seq, model: `${r.namespace}/${r.name}` };
        for (const l of listeners) if (seq > l.from) l.push(event);
      }
      for (const s of seen) if (s <= high - REORDER_WINDOW) seen.delete(s);
      if (rows.length < PAGE || !fresh.length) return;
    }
  }

  const feed: RegistryFeed = {
    listening: () => listeners.size,
    kick() {
      if (!listeners.size) return;
      if (running) {
        again = true;
        return;
      }
      running = (async () => {
        do {
          again = false;
          await read().catch(onError);
        } while (again);
      })().finally(() => {
        running = null;
      });
    },
    stream(signal) {
      const buffer: LiveRegistryEvent[] = [];
      let wake: (() => void) | null = null;
      let done = false;
      const listener = {
        from: Number.POSITIVE_INFINITY,
        push: (e: LiveRegistryEvent) => {
          buffer.push(e);
          wake?.();
        },
      };
      const finish = () => {
        done = true;
        listeners.delete(listener);
        wake?.();
      };
      if (signal.aborted) finish();
      else signal.addEventListener('abort', finish, { once: true });
      // Listening from the head as of now: what commits later is passed on, what committed before is not.
      const ready = headNow().then((head) => {
        listener.from = head;
        if (high === null) high = head;
        if (!done) listeners.add(listener);
      });
      const iterator: AsyncIterableIterator<LiveRegistryEvent> = {
        async next() {
          await ready;
          while (!buffer.length && !done) await new Promise<void>((resolve) => (wake = resolve));
          wake = null;
          if (done) return { value: undefined, done: true };
          return { value: buffer.shift()!, done: false };
        },
        async return() {
          finish();
          return { value: undefined, done: true };
        },
        [Symbol.asyncIterator]: () => iterator,
      };
      return iterator;
    },
  };
  return feed;
}

/** A best-effort broadcast between replicas (the bus's control topic in the app). */
export interface KickChannel {
  publish(): Promise<void>;
  subscribe(onKick: () => void): Promise<{ stop(): Promise<void> }>;
}

/**
 * The feed whose kicks also reach every other replica: a kick reads here at once and tells the others to read. A
 * lost broadcast delays events on another replica until its next kick, and loses none (each read starts from the last
 * event passed on). The returned service holds the subscription to the other replicas' kicks.
 */
export function acrossReplicas(
  feed: RegistryFeed,
  channel: KickChannel,
  onError: (error: unknown) => void,
): { feed: RegistryFeed; service: { name: string; start(): Promise<void>; stop(): Promise<void> } } {
  let subscription: { stop(): Promise<void> } | undefined;
  return {
    feed: {
      ...feed,
      kick() {
        feed.kick();
        channel.publish().catch(onError);
      },
    },
    service: {
      name: 'registry events across replicas',
      async start() {
        subscription = await channel.subscribe(() => feed.kick());
      },
      async stop() {
        await subscription?.stop();
      },
    },
  };
}
