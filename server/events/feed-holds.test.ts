// Holds on a run's readers (feed-holds.ts): a read waits for the holds on its run, is made again when a hold began
// while it ran, and other runs are not held.
import { describe, expect, it } from 'vitest';
import { createFeedHolds } from './feed-holds';

const tick = () => new Promise((resolve) => setTimeout(resolve, 5));

describe('feed holds', () => {
  it('makes a read once its run is released, and leaves other runs alone', async () => {
    const holds = createFeedHolds();
    const release = holds.hold(['a', 'a', 'b']);
    let reads = 0;
    let got: number | undefined;
    void holds.settled('a', async () => ++reads).then((v) => (got = v));
    expect(await holds.settled('c', async () => 'free')).toBe('free');
    await tick();
    expect([reads, got]).toEqual([0, undefined]);
    release();
    release(); // again: nothing
    await tick();
    expect([reads, got]).toEqual([1, 1]);
    expect(await holds.settled('b', async () => 'released too')).toBe('released too');
  });

  it('reads again when a hold began while it read, after that hold is released', async () => {
    const holds = createFeedHolds();
    let release: (() => void) | undefined;
    let reads = 0;
    const value = holds.settled('a', async () => {
      reads++;
      if (reads === 1) release = holds.hold(['a']); // a commit that raced the read
      return reads;
    });
    await tick();
    expect(reads).toBe(1);
    release!();
    expect(await value).toBe(2);
  });
});
