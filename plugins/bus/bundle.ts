// Splitting an event bundle (protocol 2: several events of one attempt in one bus message) into one delivery per
// event, so consumers keep seeing single events; the message is settled once every member is
// (plugins/bus/members.ts), and a hand-back redelivers all of them (events are recorded idempotently, so that is safe).
import { type ExecutorEvent, isEventBundle } from '../protocol';
import { Member, type Settleable, splitMessage } from './members';

/**
 * The deliveries a consumer should see for `message`: itself when it carries one event, one per event when it
 * carries a bundle. `settled` on each says whether it is still the consumer's to settle.
 */
export function splitBundle(message: Settleable<unknown>): Settleable<ExecutorEvent>[] {
  if (!isEventBundle(message.data)) return [message as Settleable<ExecutorEvent>];
  return splitMessage(message, message.data.bundle, Member<ExecutorEvent>);
}
