import { describe, expect, it, vi } from 'vitest';
import { domainErrorOf } from '../errors';
import { createRunFeed, feedIterator } from './feed';
import { createLiveSubscriptions } from './live-subscriptions';

describe('live subscription slots', () => {
  it('caps each token and the server, naming the variable that raises each limit, and frees a slot once', () => {
    const live = createLiveSubscriptions({ perToken: 2, total: 3 });
    const a1 = live.open('a');
    live.open('a');
    const refused = (() => {
      try {
        live.open('a');
      } catch (error) {
        return domainErrorOf(error);
      }
    })();
    expect(refused?.code).toBe('TOO_MANY_SUBSCRIPTIONS');
    expect(refused?.status).toBe(429);
    expect(refused?.message).toMatch(/holds 2 subscriptions.*ATELIER_MAX_SUBSCRIPTIONS_PER_TOKEN=2/);
    live.open('b');
    expect(() => live.open('c')).toThrow(/server holds 3 subscriptions.*ATELIER_MAX_SUBSCRIPTIONS=3/);
    expect([live.count(), live.countFor('a')]).toEqual([3, 2]);
    a1.end();
    a1.end(); // idempotent: frees one slot, not two
    expect([live.count(), live.countFor('a')]).toEqual([2, 1]);
    live.open('c');
    expect(live.count()).toBe(3);
  });

  it('ends its timers and aborts its signal when it ends, and starts no timer once ended', () => {
    vi.useFakeTimers();
    try {
      const live = createLiveSubscriptions({ perToken: 5, total: 5 });
      const sub = live.open('a');
      const tick = vi.fn();
      sub.every(100, tick);
      vi.advanceTimersByTime(250);
      expect(tick).toHaveBeenCalledTimes(2);
      expect(live.timerCount()).toBe(1);
      sub.end();
      expect(sub.signal.aborted).toBe(true);
      expect(live.timerCount()).toBe(0);
      vi.advanceTimersByTime(1000);
      expect(tick).toHaveBeenCalledTimes(2);
      sub.every(100, tick);
      expect(live.timerCount()).toBe(0);
      live.open('a');
      live.open('b');
      live.endAll();
      expect(live.count()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('feed iterator', () => {
  it('stops listening at once when its signal aborts, even while a pull waits, or if it had aborted already', async () => {
    const feed = createRunFeed();
    const abort = new AbortController();
    const events = feedIterator(feed, 'r', abort.signal);
    expect(feed.listenerCount()).toBe(1);
    const pending = events.next();
    abort.abort();
    expect(await pending).toEqual({ value: undefined, done: true });
    expect(feed.listenerCount()).toBe(0);
    feedIterator(feed, 'r', abort.signal);
    expect(feed.listenerCount()).toBe(0);
  });
});
