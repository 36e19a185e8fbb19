// A client that stops reading holds a bounded number of events: past the limit one run's stream drops what waits and
// reads it from the store when the client reads again (nothing lost, in order), and the feed of every run stops
// listening at once and ends with SUBSCRIBER_TOO_SLOW. Before, every event delivered waited in the subscriber's
// buffer for as long as its connection stayed open. One delivery larger than the limit (a commit's events) is taken
// whole by the feed of every run: before, it ended every such subscription at once, however fast its client read.
import { describe, expect, it } from 'vitest';
import { createRunFeed, type FeedEvent, feedIterator, runEventStream } from './feed';

const log = (seq: number, runId = 'r'): FeedEvent => ({ kind: 'task-log', runId, taskId: 't', node: 'n', stream: 'stdout', lines: [`${seq}`], at: '', seq });

/** A host's batch of a flooded log: 64 lines of 1 KiB. */
const batch = (seq: number, runId = 'r'): FeedEvent => ({ ...log(seq, runId), lines: Array.from({ length: 64 }, () => 'x'.repeat(1024)) }) as FeedEvent;

describe('a subscriber whose client stops reading a flooded log', () => {
  it('of every run: past the bytes bound, far below the events limit, it stops listening and ends with SUBSCRIBER_TOO_SLOW', async () => {
    const feed = createRunFeed();
    const stream = feedIterator(feed, '*', undefined, 10_000, 1024 * 1024);
    const first = stream.next();
    feed.publish([batch(1, 'a')]);
    expect(((await first).value as FeedEvent).seq).toBe(1);
    // Each a delivery of its own, as the bus brings them: 20 batches (1.3 MiB) wait, 20 events of a limit of 10,000.
    for (let seq = 2; seq <= 21 && feed.listenerCount(); seq++) {
      feed.publish([batch(seq, 'a')]);
      await Promise.resolve();
    }
    expect(feed.listenerCount()).toBe(0);
    await expect(stream.next()).rejects.toMatchObject({ code: 'SUBSCRIBER_TOO_SLOW', message: expect.stringContaining('1048576 bytes') });
  });

  it('of one run: past the bytes bound what waits is dropped and read from the store when it reads again, in order', async () => {
    const feed = createRunFeed();
    const stored: FeedEvent[] = [];
    let reads = 0;
    feed.since = async (_runId, after) => {
      reads++;
      return stored.filter((e) => e.seq > after).slice(0, 1000);
    };
    const stream = runEventStream(feed, 'r', 0, false, undefined, 10_000, 1024 * 1024);
    const first = stream.next();
    const publish = (seq: number) => {
      stored.push(batch(seq));
      feed.publish([stored.at(-1)!]);
    };
    publish(1);
    expect(((await first).value as FeedEvent).seq).toBe(1);
    for (let seq = 2; seq <= 40; seq++) publish(seq);
    expect(reads).toBe(0);
    const got: number[] = [];
    for (let seq = 2; seq <= 40; seq++) got.push(((await stream.next()).value as FeedEvent).seq);
    expect(got).toEqual(Array.from({ length: 39 }, (_, i) => i + 2));
    expect(reads).toBeGreaterThan(0); // the buffer was emptied past 1 MiB, not at 10,000 events
    await stream.return?.();
  });
});

describe('a subscriber whose client stops reading', () => {
  it('of one run: past the limit what waits is dropped, and read from the store once it reads again, each event once and in order', async () => {
    const feed = createRunFeed();
    const stored: FeedEvent[] = [];
    const reads: number[] = [];
    feed.since = async (_runId, after) => {
      reads.push(after);
      return stored.filter((e) => e.seq > after).slice(0, 1000);
    };
    const publish = (from: number, to: number) => {
      const events = Array.from({ length: to - from + 1 }, (_, i) => log(from + i));
      stored.push(...events);
      feed.publish(events);
    };
    const stream = runEventStream(feed, 'r', 0, false, undefined, 10);
    const first = stream.next();
    publish(1, 1);
    expect(((await first).value as FeedEvent).seq).toBe(1);
    // The client reads nothing while 2..50 come: 40 past the limit of 10.
    publish(2, 50);
    expect(reads).toEqual([]);
    const got: number[] = [];
    for (let i = 2; i <= 50; i++) got.push(((await stream.next()).value as FeedEvent).seq);
    expect(got).toEqual(Array.from({ length: 49 }, (_, i) => i + 2));
    expect(reads.length).toBeGreaterThan(0); // what the buffer dropped came from the store
    // And it follows the feed live again afterwards.
    const next = stream.next();
    publish(51, 51);
    expect(((await next).value as FeedEvent).seq).toBe(51);
    await stream.return?.();
  });

  it('of every run: past the limit it stops listening at once, and ends with SUBSCRIBER_TOO_SLOW when read', async () => {
    const feed = createRunFeed();
    const stream = feedIterator(feed, '*', undefined, 10);
    const first = stream.next();
    feed.publish([log(1, 'a')]);
    expect(((await first).value as FeedEvent).seq).toBe(1);
    feed.publish(Array.from({ length: 11 }, (_, i) => log(i + 2, 'a')));
    expect(feed.listenerCount()).toBe(1); // one delivery is taken whole
    await Promise.resolve();
    feed.publish([log(13, 'a')]); // a later one, with 11 still waiting
    expect(feed.listenerCount()).toBe(0); // nothing more is kept for it
    await expect(stream.next()).rejects.toMatchObject({ code: 'SUBSCRIBER_TOO_SLOW' });
    expect((await stream.next()).done).toBe(true);
  });

  it('of every run: takes a delivery larger than the limit whole when its client keeps up (a 10,000-task run starting)', async () => {
    const feed = createRunFeed();
    const stream = feedIterator(feed, '*', undefined, 10);
    const first = stream.next();
    feed.publish([log(1, 'a')]);
    await first;
    // One commit's events, delivered at once: before, the 11th overflowed the buffer and ended the stream.
    feed.publish(Array.from({ length: 25 }, (_, i) => log(i + 2, 'a')));
    const got: number[] = [];
    for (let i = 0; i < 25; i++) got.push(((await stream.next()).value as FeedEvent).seq);
    expect(got).toEqual(Array.from({ length: 25 }, (_, i) => i + 2));
    expect(feed.listenerCount()).toBe(1);
    await stream.return?.();
  });

  it('of every run: within the limit it keeps every event', async () => {
    const feed = createRunFeed();
    const stream = feedIterator(feed, '*', undefined, 10);
    const first = stream.next();
    feed.publish([log(1, 'a')]);
    await first;
    feed.publish(Array.from({ length: 10 }, (_, i) => log(i + 2, 'a')));
    const got: number[] = [];
    for (let i = 0; i < 10; i++) got.push(((await stream.next()).value as FeedEvent).seq);
    expect(got).toEqual([2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    expect(feed.listenerCount()).toBe(1);
    await stream.return?.();
  });
});
