// Which running execution a cancel from the control plane stops. Cancels are broadcast; a host stops the attempt it
// runs under the cancel's task and attempt number, and, from protocol 6, only the execution its claim's answer gave
// the cancel's key, so the new execution of an attempt number a restore handed out again and the stale one let run
// through the restore are told apart.
import type { Bus, Subscription } from '../bus/types';
import type { CancelMessage } from '../protocol';
import type { Attempt } from './attempt';

/**
 * Whether `message` stops `attempt` (one this host runs under the message's task and attempt number). A stale
 * execution's stop names its key and stops only the execution holding it; any other cancel stops the attempt unless
 * both name a key and the keys differ (the attempt has none before its claim is answered, or from a control plane
 * below 6: then it is stopped by number, as before keys).
 */
export function cancelStops(message: CancelMessage, attempt: Attempt): boolean {
  const held = attempt.task.attemptKey;
  if (message.stale) return held !== undefined && held === message.attemptKey;
  return message.attemptKey === undefined || held === undefined || held === message.attemptKey;
}

/**
 * Subscribes to both kinds of cancel: the broadcast every host reads and the stale executions' stops (a control topic
 * hosts below 6 do not read). `running(taskId, attempt)` finds the execution this host runs, `stop` stops it.
 */
export async function subscribeCancels(
  bus: Bus,
  running: (taskId: string, attempt: number) => Attempt | undefined,
  stop: (attempt: Attempt, message: CancelMessage) => void,
): Promise<Subscription[]> {
  const onCancel = (message: CancelMessage) => {
    const attempt = running(message.taskId, message.attempt);
    // broadcast: the attempt runs on another host (or already ended), or this is another execution of it
    if (attempt && cancelStops(message, attempt)) stop(attempt, message);
  };
  return [await bus.subscribeCancel(onCancel), await bus.subscribeControl('stale-execution', onCancel)];
}
