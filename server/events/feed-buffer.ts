// A live subscriber's buffer: the events that reached it and wait for its client to take them. graphql-ws and yoga's
// SSE take the next event only once the last one went out on the socket, so a client that reads slower than events
// come (or stops reading and keeps its connection open) leaves them waiting here. The buffer is bounded: past its
// limit it is emptied, and the stream goes on as it decides (one run's events are read from the store; the feed of
// every run ends with SUBSCRIBER_TOO_SLOW), so one stalled client holds at most a limit of events, not every event
// the server delivers for as long as it stays connected.
import type { FeedEvent } from './feed';

const COALESCED = 'coalesced';
/**
 * In a slow subscriber's buffer, the place of a progress report overtaken by a later one of the same task before it
 * was sent: its number, so the stream moves past it in order without reading the store for a gap, and nothing else.
 */
const coalescedAt = (event: FeedEvent) => ({ kind: COALESCED, runId: event.runId, seq: event.seq }) as unknown as FeedEvent;
export const isCoalesced = (event: FeedEvent) => (event as { kind: string }).kind === COALESCED;

/**
 * About how many bytes an event holds while it waits: its log lines and metric points, or a small fixed size. A log
 * event carries up to a host's batch of lines (64 KiB), so a limit in events alone let one stalled client of a
 * module flooding its log hold thousands of such batches.
 */
export function eventBytes(event: FeedEvent): number {
  if (event.kind === 'task-log') return event.lines.reduce((n, line) => n + line.length, 128);
  if (event.kind === 'task-metric') return 128 + event.points.length * 64;
  return 256;
}

/** What a stream does when its buffer passes `limit` events or `maxBytes` (eventBytes), and has been emptied. */
export interface Overflow {
  limit: number;
  maxBytes: number;
  /**
   * Count only the events that waited before the ones arriving now (one delivery: a commit's events, or a bus
   * message's, pushed in one turn of the event loop), so that a delivery larger than `limit` (the statuses of a
   * 10,000-task run as it starts or is cancelled) reaches a subscriber that keeps up whole. Without it such a
   * delivery overflowed every subscriber at once, however fast its client read.
   */
  wholeDeliveries?: boolean;
  /** Called once per overflow; `true`: stop listening as well (the stream is to end). */
  overflowed(): boolean;
}

/**
 * The plumbing the feed's iterators share: a listener pushes into a buffer; `body` waits for its first event (`first`:
 * undefined once ended, or when woken with nothing buffered), removes it with `shift` once it has dealt with it,
 * and yields what the iterator returns.
 *
 * A subscriber that falls behind (its client reads slower than events come) has events waiting here. With
 * `coalesce`, a task's progress report replaces that task's earlier one still waiting (which leaves a `Coalesced`
 * mark in its place): a slow client gets the latest progress of each task, and every status change, log line,
 * metric and result, in order. Only progress is coalesced: it is a level, and the latest one says it all. Past
 * `overflow.limit` waiting events the buffer is emptied and `overflow.overflowed` decides what comes next.
 */
export function pulled(
  signal: AbortSignal | undefined,
  listen: (push: (event: FeedEvent, coalesce?: boolean) => void, wake: () => void) => () => void,
  body: (first: () => Promise<FeedEvent | undefined>, shift: () => void, ended: () => boolean) => AsyncGenerator<FeedEvent, void>,
  overflow: Overflow,
): AsyncIterableIterator<FeedEvent> {
  // Slots, so a waiting progress report can be replaced in place (by its mark) at no cost to the order.
  const buffer: { event: FeedEvent; bytes: number }[] = [];
  let bytes = 0;
  /** Per task, the slot of its latest progress report still waiting. */
  const progress = new Map<string, { event: FeedEvent }>();
  /** The slot `first` last gave the body: `shift` removes it only if it is still first (not emptied meanwhile). */
  let given: { event: FeedEvent } | undefined;
  let wake: (() => void) | null = null;
  let woken = false;
  let done = false;
  let deaf = false;
  /** What waited (events, and their bytes) when this turn's delivery began to arrive; -1 until one does. */
  let waitingBefore = -1;
  let bytesBefore = 0;
  const poke = () => {
    woken = true;
    wake?.();
  };
  const unsubscribe = listen((event, coalesce) => {
    if (deaf) return;
    if (waitingBefore < 0) {
      waitingBefore = buffer.length;
      bytesBefore = bytes;
      queueMicrotask(() => (waitingBefore = -1));
    }
    const slot = { event, bytes: eventBytes(event) };
    bytes += slot.bytes;
    if (coalesce && event.kind === 'task-progress') {
      const waiting = progress.get(event.taskId);
      // Even the first slot: a body dealing with it holds the event itself, and sends it; the mark changes nothing then.
      if (waiting && waiting.event.kind === 'task-progress') waiting.event = coalescedAt(waiting.event);
      progress.set(event.taskId, slot);
    }
    buffer.push(slot);
    const whole = overflow.wholeDeliveries;
    if ((whole ? waitingBefore : buffer.length) > overflow.limit || (whole ? bytesBefore : bytes) > overflow.maxBytes) {
      buffer.length = 0;
      bytes = 0;
      progress.clear();
      waitingBefore = 0;
      bytesBefore = 0;
      if (overflow.overflowed()) {
        deaf = true;
        unsubscribe();
      }
    }
    poke();
  }, poke);
  const finish = () => {
    if (done) return;
    done = true;
    buffer.length = 0;
    bytes = 0;
    progress.clear();
    unsubscribe();
    signal?.removeEventListener('abort', finish);
    wake?.();
  };
  if (signal?.aborted) finish();
  else signal?.addEventListener('abort', finish, { once: true });
  const first = async (): Promise<FeedEvent | undefined> => {
    while (!buffer.length && !done && !woken) await new Promise<void>((resolve) => (wake = resolve));
    wake = null;
    woken = false;
    given = buffer[0];
    return done ? undefined : given?.event;
  };
  const shift = () => {
    if (!given || buffer[0] !== given) return;
    const slot = buffer.shift();
    given = undefined;
    bytes -= slot?.bytes ?? 0;
    if (slot?.event.kind === 'task-progress' && progress.get(slot.event.taskId) === slot) progress.delete(slot.event.taskId);
  };
  const generator = body(first, shift, () => done);
  const iterator: AsyncIterableIterator<FeedEvent> = {
    async next() {
      if (done) return { value: undefined, done: true };
      let result: IteratorResult<FeedEvent, void>;
      try {
        result = await generator.next();
      } catch (error) {
        finish();
        throw error;
      }
      if (result.done || done) {
        finish();
        return { value: undefined, done: true };
      }
      return result;
    },
    async return() {
      finish();
      await generator.return(undefined);
      return { value: undefined, done: true };
    },
    [Symbol.asyncIterator]() {
      return iterator;
    },
  };
  return iterator;
}
