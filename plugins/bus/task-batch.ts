// Splitting a task batch (protocol 3: the tasks one transaction dispatched to a pool, in one bus message) into one
// delivery per task, so a host handles, claims and settles each attempt as it would a message of its own; the bus
// message is settled once every member is (plugins/bus/members.ts).
import { isTaskBatch, type TaskMessage } from '../protocol';
import { Member, type Settleable, splitMessage } from './members';
import type { Delivery } from './types';

/** What a host sees of a delivery that came in a batch: it may wait for a slot rather than give the task back. */
export interface BatchedDelivery<T> extends Delivery<T> {
  /** The bus message carries other tasks too: handing this one back redelivers them all, once they are settled. */
  readonly batched: true;
}

export const isBatched = <T>(delivery: Delivery<T>): delivery is BatchedDelivery<T> => (delivery as Partial<BatchedDelivery<T>>).batched === true;

class BatchMember extends Member<TaskMessage> implements BatchedDelivery<TaskMessage> {
  readonly batched = true;
}

/**
 * The deliveries a task consumer should see for `message`: itself when it carries one task, one per task when it
 * carries a batch. `settled` on each says whether it is still the consumer's to settle. Split as it comes: its delivery
 * has just started its ack wait, which its members' first `working()` (before their claims) need not extend again.
 */
export function splitTaskBatch(message: Settleable<unknown>): Settleable<TaskMessage>[] {
  if (!isTaskBatch(message.data)) return [message as Settleable<TaskMessage>];
  return splitMessage(message, message.data.tasks, BatchMember, performance.now());
}

/** How many tasks a bus message carries (what a host's flow control counts). */
export const tasksIn = (data: unknown): number => (isTaskBatch(data) ? Math.max(1, data.tasks.length) : 1);
