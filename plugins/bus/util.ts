// Pieces both bus implementations share: consumer naming, handler retry backoff, group-commit batching, a
// message-id dedupe window and an O(1) queue.

/**
 * The JetStream consumer name of a pool's task consumer. It always carries the pool, so one durable name used
 * for several pools cannot make JetStream re-point an existing consumer at another pool's subject.
 */
export function taskConsumerName(pool: string, durable: string): string {
  const name = durable === pool || durable.endsWith(`-${pool}`) ? durable : `${durable}-${pool}`;
  return name.replace(/[^A-Za-z0-9_-]/g, '_');
}

/** How long a message whose handler threw waits before it is offered again: doubling, capped at 30 s. */
export function retryDelayMs(redeliveryCount: number): number {
  return Math.min(30_000, 1_000 * 2 ** Math.min(redeliveryCount, 5));
}

/**
 * Group commit for batch handlers: the first message is handed over on the next turn of the event loop (no
 * timer), and whatever arrives while a batch is being handled goes into the next one, up to `maxBatch`.
 */
export class Batcher<T> {
  private readonly buffer = new Deque<T>();
  private running = false;
  private scheduled = false;
  private stopped = false;

  constructor(
    private readonly maxBatch: number,
    private readonly isSettled: (item: T) => boolean,
    private readonly handle: (batch: T[]) => Promise<void>,
  ) {}

  add(item: T) {
    if (this.stopped) return;
    this.buffer.push(item);
    if (this.running || this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.flush();
    });
  }

  clear() {
    this.stopped = true;
    this.buffer.clear();
  }

  private flush() {
    if (this.stopped || this.running) return;
    const batch: T[] = [];
    while (batch.length < this.maxBatch && this.buffer.length > 0) {
      const item = this.buffer.shift()!;
      // A message that lapsed or was handed back while it waited here is someone else's now.
      if (!this.isSettled(item)) batch.push(item);
    }
    if (batch.length === 0) return;
    this.running = true;
    void this.handle(batch).finally(() => {
      this.running = false;
      this.flush();
    });
  }
}

/** Remembers message ids for a window; expiry runs oldest first, so each check is amortised O(1). */
export class Deduper {
  private readonly ids = new Set<string>();
  private readonly expiries = new Deque<{ id: string; until: number }>();
  constructor(private readonly windowMs: number) {}

  /** True when `id` was seen within the window; otherwise records it. */
  seen(id: string, now = Date.now()): boolean {
    for (let head = this.expiries.peek(); head && head.until <= now; head = this.expiries.peek()) {
      this.expiries.shift();
      this.ids.delete(head.id);
    }
    if (this.ids.has(id)) return true;
    this.ids.add(id);
    this.expiries.push({ id, until: now + this.windowMs });
    return false;
  }
}

/** A growable ring buffer: O(1) push, shift and indexed read, unlike Array#shift on long arrays. */
export class Deque<T> {
  private items: (T | undefined)[] = new Array(16);
  private head = 0;
  private size = 0;

  get length() {
    return this.size;
  }

  push(item: T) {
    if (this.size === this.items.length) this.grow();
    this.items[(this.head + this.size) & (this.items.length - 1)] = item;
    this.size++;
  }

  shift(): T | undefined {
    if (this.size === 0) return undefined;
    const item = this.items[this.head];
    this.items[this.head] = undefined;
    this.head = (this.head + 1) & (this.items.length - 1);
    this.size--;
    return item;
  }

  peek(): T | undefined {
    return this.size === 0 ? undefined : this.items[this.head];
  }

  at(index: number): T | undefined {
    if (index < 0 || index >= this.size) return undefined;
    return this.items[(this.head + index) & (this.items.length - 1)];
  }

  clear() {
    this.items = new Array(16);
    this.head = 0;
    this.size = 0;
  }

  private grow() {
    const next: (T | undefined)[] = new Array(this.items.length * 2);
    for (let i = 0; i < this.size; i++) next[i] = this.items[(this.head + i) & (this.items.length - 1)];
    this.items = next;
    this.head = 0;
  }
}
