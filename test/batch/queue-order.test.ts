// The pool-queue rule alone: a limited pool's free slots go only to the tasks at the head of its queue (as dispatch
// reads it in priority order, aged), and unlimited pools are untouched; the aging bound as documented.
import { describe, expect, it } from 'vitest';
import { takePoolSlots } from '../../server/orchestrator/limits';
import { PRIORITY_AGING_SECONDS, RUN_PRIORITY_MAX, RUN_PRIORITY_MIN } from '../../server/vocabulary';

const task = (id: string, pool: string) => ({ id, pool });

describe('pool queue order', () => {
  it('gives a limited pool’s slots only to the head of its queue; other pools are unaffected', () => {
    const ready = [task('a', 'gpu'), task('b', 'gpu'), task('c', 'local')];
    const slots = new Map([['gpu', 1]]);
    // another run's task heads the queue: this run's gpu tasks wait, its local task goes
    expect(takePoolSlots(ready, slots, new Map([['gpu', new Set(['other'])]])).map((t) => t.id)).toEqual(['c']);
    // this run's b heads it: b goes, a waits (the head, not the run's own order, decides)
    expect(takePoolSlots(ready, slots, new Map([['gpu', new Set(['b'])]])).map((t) => t.id)).toEqual(['b', 'c']);
    // without a head (no limit read), the budget alone decides, as before
    expect(takePoolSlots(ready, slots).map((t) => t.id)).toEqual(['a', 'c']);
  });

  it('bounds the wait behind higher priorities: the documented 10 minutes from the lowest to the highest', () => {
    expect((RUN_PRIORITY_MAX - RUN_PRIORITY_MIN) * PRIORITY_AGING_SECONDS).toBe(600);
  });
});
