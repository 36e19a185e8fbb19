import { describe, expect, it } from 'vitest';
import { packWithin } from './payload-limit';

describe('packWithin', () => {
  it('packs items into as few JSON arrays as fit, in order, none over the limit', () => {
    const items = Array.from({ length: 1000 }, (_, i) => ({ i, text: 'x'.repeat(i % 50) }));
    const messages = packWithin(items, 1000);
    expect(messages.length).toBeGreaterThan(1);
    for (const m of messages) expect(Buffer.byteLength(m)).toBeLessThanOrEqual(1000);
    expect(messages.flatMap((m) => JSON.parse(m))).toEqual(items);
  });

  it('sends one message for a batch that fits', () => {
    expect(packWithin([1, 2, 3], 1000)).toEqual(['[1,2,3]']);
    expect(packWithin([], 1000)).toEqual([]);
  });

  it('replaces an item too large on its own by its reference, or leaves it out without one', () => {
    const big = { id: 7, lines: ['é'.repeat(600)] }; // 1,200 bytes in UTF-8, though 600 characters
    expect(packWithin([1, big, 2], 1000, (item) => ({ ref: (item as { id: number }).id })).flatMap((m) => JSON.parse(m))).toEqual([1, { ref: 7 }, 2]);
    expect(packWithin([1, big, 2], 1000).flatMap((m) => JSON.parse(m))).toEqual([1, 2]);
  });
});
