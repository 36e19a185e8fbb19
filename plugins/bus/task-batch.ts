// Splitting a task batch (protocol 3: the tasks one transaction dispatched to a pool, in one bus message) into one
// delivery per task, so a host handles, claims and settles each attempt as it would a message of its own. The bus
// message is settled only once every member is: acked when all were acked, handed back (and so redelivered whole)
// when any was handed back. A member is never redelivered while another member of its message still runs here, so
// no attempt runs twice because a neighbour was given back; the members a redelivery brings back that already
// ended are dropped by their claims (answered `finished`), as any redelivered attempt is.
import { isTaskBatch, type TaskMessage } from '../protocol';
import type { Delivery } from './types';

/** What a host sees of a delivery that came in a batch: it may wait for a slot rather than give the task back. */
export interface BatchedDelivery<T> extends Delivery<T> {
  /** The bus message carries other tasks too: handing this one back redelivers them all, once they are settled. */
  readonly batched: true;
}

export const isBatched = <T>(delivery: Delivery<T>): delivery is BatchedDelivery<T> => (delivery as Partial<BatchedDelivery<T>>).batched === true;

/** The members of one message share this: how many are open, and the longest delay any member asked a hand-back for. */
interface Group {
  open: number;
  handBack: number | undefined;
}

type Settleable<T> = Delivery<T> & { readonly settled: boolean };

class BatchMember implements BatchedDelivery<TaskMessage> {
  readonly batched = true;
  private done = false;

  constructor(
    private readonly message: Settleable<unknown>,
    readonly data: TaskMessage,
    private readonly group: Group,
  ) {}

  get redeliveryCount() {
    return this.message.redeliveryCount;
  }

  /** Settled once this member is, or the whole message is (its ack wait lapsed, the subscription stopped). */
  get settled() {
    return this.done || this.message.settled;
  }

  async ack() {
    if (this.finish()) await this.close();
  }

  nak(delayMs?: number) {
    if (!this.finish()) return;
    this.group.handBack = Math.max(this.group.handBack ?? 0, delayMs ?? 0);
    void this.close();
  }

  working() {
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
  private async close() {
    if (this.group.open > 0) return;
    if (this.group.handBack === undefined) await this.message.ack();
    else this.message.nak(this.group.handBack);
  }
}

/**
 * The deliveries a task consumer should see for `message`: itself when it carries one task, one per task when it
 * carries a batch. `settled` on each says whether it is still the consumer's to settle.
 */
export function splitTaskBatch(message: Settleable<unknown>): Settleable<TaskMessage>[] {
  if (!isTaskBatch(message.data)) return [message as Settleable<TaskMessage>];
  const tasks = message.data.tasks;
  if (!tasks.length) {
    void message.ack().catch(() => undefined); // nothing in it: nothing to run
    return [];
  }
  const group: Group = { open: tasks.length, handBack: undefined };
  return tasks.map((task) => new BatchMember(message, task, group));
}

/** How many tasks a bus message carries (what a host's flow control counts). */
export const tasksIn = (data: unknown): number => (isTaskBatch(data) ? Math.max(1, data.tasks.length) : 1);
