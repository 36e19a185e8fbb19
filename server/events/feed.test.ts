// One run's event stream over a feed that loses, repeats and reorders: it yields each stored event once, in order.
import { describe, expect, it } from 'vitest';
import { type FeedEvent, type RunFeed, runEventStream } from './feed';

const ev = (seq: number): FeedEvent => ({ kind: 'task-log', runId: 'r', taskId: 't', node: 'n', stream: 'stdout', lines: [`${seq}`], at: '', seq });

/** A feed whose store holds events 1..stored, and whose bus delivers only what the test pushes. */
function fakeFeed(stored: number) {
  let listener: ((e: FeedEvent) => void) | undefined;
  let behind: ((head: number) => void) | undefined;
  const reads: number[] = [];
  const feed: RunFeed = {
    append: async () => [],
    publish: () => {},
    subscribe(_runId, l, b) {
      listener = l;
      behind = b;
      return () => {
        listener = undefined;
      };
    },
    async since(_runId, after) {
      reads.push(after);
      return Array.from({ length: Math.max(0, stored - after) }, (_, i) => ev(after + i + 1));
    },
    check: async () => {},
    hold: () => () => {},
    settled: (_runId, read) => read(),
    snapshot: async () => null,
    listenerCount: () => (listener ? 1 : 0),
  };
  return {
    feed,
    reads,
    push: (...seqs: number[]) => {
      for (const s of seqs) listener?.(ev(s));
    },
    behind: (head: number) => behind?.(head),
    store: (n: number) => {
      stored = n;
    },
  };
}

const take = async (it: AsyncIterator<FeedEvent>, n: number) => {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(((await it.next()).value as FeedEvent).seq);
  return out;
};

describe('runEventStream', () => {
  it('resumes from the store, then follows the bus, dropping repeats and filling a skipped number', async () => {
    const f = fakeFeed(3);
    const stream = runEventStream(f.feed, 'r', 1, true);
    expect(await take(stream, 2)).toEqual([2, 3]);
    f.store(6);
    f.push(3, 4, 6); // 3 again, then 5 lost
    expect(await take(stream, 3)).toEqual([4, 5, 6]);
    await stream.return?.();
    expect(f.feed.listenerCount()).toBe(0);
  });

  it('fills a gap that arrives while it waits', async () => {
    const f = fakeFeed(2);
    const stream = runEventStream(f.feed, 'r', 2, false);
    const next = stream.next(); // waiting on the bus
    f.store(4);
    f.push(4); // 3 lost
    expect((await next).value.seq).toBe(3);
    expect(await take(stream, 1)).toEqual([4]);
    await stream.return?.();
  });

  it('reads what the feed says is stored when nothing more arrives (a lost last event)', async () => {
    const f = fakeFeed(5);
    const stream = runEventStream(f.feed, 'r', Promise.resolve(5), false);
    const next = stream.next();
    f.store(6);
    f.behind(6);
    expect((await next).value.seq).toBe(6);
    expect(f.reads).toEqual([5]);
    await stream.return?.();
  });

  it('buffers until its starting number is known, then passes over what that already covers', async () => {
    const f = fakeFeed(7);
    let start!: (n: number) => void;
    const stream = runEventStream(f.feed, 'r', new Promise<number>((r) => (start = r)), false);
    f.push(6, 7, 8);
    f.behind(7);
    start(7); // a snapshot as of 7
    f.store(8);
    expect(await take(stream, 1)).toEqual([8]);
    expect(f.reads).toEqual([]);
    await stream.return?.();
  });
});
