import { describe, expect, it, vi } from 'vitest';
import { joinFlat, packWithin } from './payload-limit';

describe('packWithin', () => {
  it('packs items into as few JSON arrays as fit, in order, none over the limit', () => {
    const items = Array.from({ length: 1000 }, (_, i) => ({ i, text: 'x'.repeat(i % 50) }));
    const messages = packWithin(items, 1000);
    expect(messages.length).toBeGreaterThan(1);
    for (const m of messages) expect(Buffer.byteLength(m)).toBeLessThanOrEqual(1000);
    expect(messages.flatMap((m) => JSON.parse(m))).toEqual(items);
  });

  it('splits a batch many times the limit into parts each within it, items in order, none lost', () => {
    // ~90 KB of JSON for a 10 KB limit: split by its first items' size, with no part over the limit.
    const items = Array.from({ length: 2000 }, (_, i) => ({ i, text: i % 97 === 0 ? 'é'.repeat(300) : 'x'.repeat(i % 30) }));
    const messages = packWithin(items, 10_000);
    for (const m of messages) expect(Buffer.byteLength(m)).toBeLessThanOrEqual(10_000);
    expect(messages.length).toBeLessThan(20);
    expect(messages.flatMap((m) => JSON.parse(m))).toEqual(items);
    // Each item serialized once, in its part: not the whole batch first, nor each item again to be joined.
    const stringify = vi.spyOn(JSON, 'stringify');
    try {
      packWithin(items, 10_000);
      const serialized = stringify.mock.results.reduce((sum, r) => sum + (r.value as string).length, 0);
      expect(serialized).toBeLessThan(messages.reduce((sum, m) => sum + m.length, 0) * 1.5);
    } finally {
      stringify.mockRestore();
    }
  });

  it('joins the parts of a batch split by too large a guess (its first item far larger than the rest) into few messages', () => {
    const items = [{ text: 'x'.repeat(8_000) }, ...Array.from({ length: 2000 }, (_, i) => ({ i }))];
    const messages = packWithin(items, 10_000);
    for (const m of messages) expect(Buffer.byteLength(m)).toBeLessThanOrEqual(10_000);
    expect(messages.length).toBeLessThanOrEqual(5);
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

  it('joins strings between an opening and a closing as the template around a join would', () => {
    expect(joinFlat('[', ['a', 'b', 'c'], ',', ']')).toBe('[a,b,c]');
    expect(joinFlat('{"tasks":[', ['{}'], ',', ']}')).toBe('{"tasks":[{}]}');
    expect(joinFlat('[', [], ',', ']')).toBe('[]');
  });
});
