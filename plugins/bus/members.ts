// One bus message that carries several items (a task batch, an event bundle), handed to its consumer as one delivery
// per item. The message is settled only once every member is: acked when all were acked, handed back (and so
// redelivered whole) when any was handed back, with the longest delay any member asked for. A member is never
// redelivered while another member of its message is still being handled here, so nothing runs twice because a
// neighbour was given back; the members a redelivery brings back that already ended are dropped by whoever consumes
// them (a task's claim answers `finished`, an event is recorded idempotently).
import type { Delivery } from './types';

/** A delivery and whether it is still its consumer's to settle. */
export type Settleable<T> = Delivery<T> & { readonly settled: boolean };

/**
 * What the members of one message share: how many are open, the longest delay any member asked a hand-back for, and
 * when (performance.now()) a member last said the message is being worked on.
 */
interface Group {
  open: number;
  handBack: number | undefined;
  workingAt: number;
}

/**
 * A member's `working()` within this long of another member's of the same message sends nothing: the bus message is
 * one, and its ack wait was just extended. A host asks the claims of a task batch's ~100 attempts in one turn, each
 * after `working()`: that was one `+WPI` publish per task (docs/performance.md, "S1: the host's CPU a task"). The
 * wait ends at most this much sooner than it would have, far inside the third of it a host leaves between heartbeats.
 */
export const WORKING_COALESCE_MS = 20;

/** What `ack` answers when there is nothing to wait for: one promise shared by every member. */
export const SETTLED: Promise<void> = Promise.resolve();

export class Member<T> implements Settleable<T> {
  private done = false;

  constructor(
    private readonly message: Settleable<unknown>,
    readonly data: T,
    private readonly group: Group,
  ) {}

  get redeliveryCount() {
    return this.message.redeliveryCount;
  }

  /** Settled once this member is, or the whole message is (its ack wait lapsed, the subscription stopped). */
  get settled() {
    return this.done || this.message.settled;
  }

  /**
   * Not an async function: a member that is not its message's last settles with no promise of its own (the shared
   * resolved one), so acking a batch's ~2,000 events makes no promise or microtask per event; the last one's answers
   * with its message's ack.
   */
  ack(): Promise<void> {
    if (!this.finish()) return SETTLED;
    return this.close();
  }

  nak(delayMs?: number) {
    if (!this.finish()) return;
    this.group.handBack = Math.max(this.group.handBack ?? 0, delayMs ?? 0);
    void this.close();
  }

  working() {
    const now = performance.now();
    if (now - this.group.workingAt < WORKING_COALESCE_MS) return;
    this.group.workingAt = now;
    this.message.working();
  }

  /** Never redeliver this member: as far as the message goes it is done with, like an acked one. */
  term() {
    void this.ack();
  }

  private finish(): boolean {
    if (this.done) return false;
    this.done = true;
    this.group.open--;
    return true;
  }

  /** The last member to settle settles the message. */
  private close(): Promise<void> {
    if (this.group.open > 0) return SETTLED;
    try {
      if (this.group.handBack === undefined) return this.message.ack();
      this.message.nak(this.group.handBack);
      return SETTLED;
    } catch (error) {
      return Promise.reject(error);
    }
  }
}

/**
 * One delivery per item of `message`, made by `member` (a subclass may add what its consumer needs to know). A message
 * with no items is acked at once: there is nothing to handle. `deliveredAt` (performance.now(), when it came): its
 * delivery started its ack wait, so a member's `working()` within WORKING_COALESCE_MS of it sends nothing, as one that
 * soon after another member's does not (a task batch's claims are asked in the turn it is split: that was a `+WPI` for
 * every task batch).
 */
export function splitMessage<T, M extends Member<T>>(
  message: Settleable<unknown>,
  items: readonly T[],
  member: new (message: Settleable<unknown>, data: T, group: Group) => M,
  deliveredAt = Number.NEGATIVE_INFINITY,
): M[] {
  if (!items.length) {
    void message.ack().catch(() => undefined);
    return [];
  }
  const group: Group = { open: items.length, handBack: undefined, workingAt: deliveredAt };
  return items.map((item) => new member(message, item, group));
}
