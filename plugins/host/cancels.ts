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

/** How long a cancel of an attempt this host did not run when it came is remembered, and how many at most. */
export const RECENT_CANCEL_MS = 60_000;
const RECENT_CANCELS_MAX = 10_000;

/**
 * Cancels of attempts this host did not run when they came, remembered a while: a cancel broadcast can reach a host
 * before the attempt's task message does (the message published, the cancel committed at once by another control
 * plane), and the control plane that dispatched the attempt may answer its claim from its reservation, not knowing of
 * the cancel (server/orchestrator/reservations.ts). Such a delivery is acked and nothing runs.
 */
export class RecentCancels {
  private readonly held = new Map<string, number>();

  constructor(private readonly now: () => number = Date.now) {}

  remember(taskId: string, attempt: number): void {
    const key = `${taskId}:${attempt}`;
    this.held.delete(key); // kept in the order seen, for forgetting the oldest first
    this.held.set(key, this.now());
    const now = this.now();
    for (const [k, at] of this.held) {
      if (this.held.size <= RECENT_CANCELS_MAX && now - at <= RECENT_CANCEL_MS) break;
      this.held.delete(k);
    }
  }

  /** Whether the attempt (`taskId:attempt`) was cancelled lately, before this host ran it. */
  has(key: string): boolean {
    const at = this.held.get(key);
    return at !== undefined && this.now() - at <= RECENT_CANCEL_MS;
  }
}

/**
 * Subscribes to both kinds of cancel: the broadcast every host reads and the stale executions' stops (a control topic
 * hosts below 6 do not read). `running(taskId, attempt)` finds the execution this host runs, `stop` stops it;
 * `recent` remembers the cancels of attempts it does not run.
 */
export async function subscribeCancels(
  bus: Bus,
  running: (taskId: string, attempt: number) => Attempt | undefined,
  stop: (attempt: Attempt, message: CancelMessage) => void,
  recent?: RecentCancels,
): Promise<Subscription[]> {
  const onCancel = (message: CancelMessage) => {
    const attempt = running(message.taskId, message.attempt);
    // broadcast: the attempt runs on another host (or already ended), or this is another execution of it; or its
    // message is still to come here (remembered): a stale execution's stop names one that ran, so it is not
    if (attempt && cancelStops(message, attempt)) stop(attempt, message);
    else if (!attempt && !message.stale) recent?.remember(message.taskId, message.attempt);
  };
  return [await bus.subscribeCancel(onCancel), await bus.subscribeControl('stale-execution', onCancel)];
}
