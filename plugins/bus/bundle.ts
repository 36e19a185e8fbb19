// Splitting an event bundle (protocol 2: several events of one attempt in one bus message) into one delivery per
// event, so consumers keep seeing single events: the message is acked once every member is, and handed back whole
// when any member is, which redelivers all of them (events are recorded idempotently, so that is safe).
import { type ExecutorEvent, isEventBundle } from '../protocol';
import type { Delivery } from './types';

/** A bundle's deliveries share this: how many members are still open, and whether one gave the message back. */
interface Group {
  open: number;
  handedBack: boolean;
}

class BundleMember implements Delivery<ExecutorEvent> {
  private done = false;

  constructor(
    private readonly message: Delivery<unknown> & { readonly settled: boolean },
    readonly data: ExecutorEvent,
    private readonly group: Group,
  ) {}

  get redeliveryCount() {
    return this.message.redeliveryCount;
  }

  /** Settled once this member is, or the whole message is (acked, handed back, its ack wait lapsed). */
  get settled() {
    return this.done || this.message.settled;
  }

  async ack() {
    if (this.done) return;
    this.done = true;
    if (--this.group.open === 0 && !this.group.handedBack) await this.message.ack();
  }

  nak(delayMs?: number) {
    if (this.done) return;
    this.done = true;
    this.group.open--;
    if (this.group.handedBack) return;
    this.group.handedBack = true;
    this.message.nak(delayMs);
  }

  working() {
    this.message.working();
  }

  /** Never redeliver this member: as far as the message goes, it is done with (the others decide the rest). */
  term() {
    void this.ack();
  }
}

/**
 * The deliveries a consumer should see for `message`: itself when it carries one event, one per event when it
 * carries a bundle. `settled` on each says whether it is still the consumer's to settle.
 */
export function splitBundle<D extends Delivery<unknown> & { readonly settled: boolean }>(
  message: D,
): (Delivery<ExecutorEvent> & { readonly settled: boolean })[] {
  if (!isEventBundle(message.data)) return [message as unknown as Delivery<ExecutorEvent> & { readonly settled: boolean }];
  const events = message.data.bundle;
  if (!events.length) {
    void message.ack(); // nothing in it: nothing to record
    return [];
  }
  const group: Group = { open: events.length, handedBack: false };
  return events.map((event) => new BundleMember(message, event, group));
}
