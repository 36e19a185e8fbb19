// The outcomes the control plane decides itself (lost hosts, deadlines, maps, nested runs) and the texts a run or a
// task is left with, built from what the caller has read: no database, no clock.
import { permanentFailure, succeeded, systemFailure, timedOut } from '../../plugins/outcomes';
import type { TaskOutcome } from '../../plugins/protocol';
import type { CacheHit } from '../cache/store';
import type { RunStatus, TaskStatus } from '../vocabulary';

/** A running task whose host sent no heartbeat for `heartbeatTimeoutMs`: retried as the platform's failure. */
export const lostHostOutcome = (host: string | null, heartbeatTimeoutMs: number): TaskOutcome =>
  systemFailure('lost', `no heartbeat from host ${host ?? '(unknown)'} for ${Math.round(heartbeatTimeoutMs / 1000)} s: the host is presumed lost`);
/** A running task whose host is known to have ended (OrchestratorOptions.endedHosts): retried as the platform's failure. */
export const endedHostOutcome = (host: string | null): TaskOutcome =>
  systemFailure('lost', `host ${host ?? '(unknown)'} ended with the control plane it ran in, which has started again: the attempt is lost`);

/** A QUEUED task whose message the bus lost with its store (sweep.ts redispatchLostMessages): retried as the platform's failure. */
export const lostMessageOutcome = (): TaskOutcome =>
  systemFailure('lost', "its task message was lost with the message bus's store (nats-server started again without its JetStream store): dispatched again");

/** A queued task whose message the bus no longer holds, nor ever will (lost-messages.ts findMissingMessages). */
export const missingMessageOutcome = (): TaskOutcome =>
  systemFailure(
    'lost',
    'its task message is no longer on the message bus, though the database has it queued (a database restored from a backup while NATS ran on): dispatched again',
  );

/** A running task past its own deadline (and the grace) that its host did not stop. */
export const deadlineOutcome = (timeoutMs: number): TaskOutcome =>
  timedOut(`ran past its time limit of ${Math.round(timeoutMs / 1000)} s and its host did not stop it`);

/** A map node once all its items have ended: their outputs in order, or which items did not succeed. */
export function mapOutcome(items: { node: string; status: TaskStatus; outputs: Record<string, unknown> | null }[]): TaskOutcome {
  const failedItems = items.filter((t) => t.status !== 'SUCCEEDED');
  return failedItems.length
    ? permanentFailure(
        'map-items-failed',
        `${failedItems.length} of ${items.length} items did not succeed: ${failedItems
          .slice(0, 5)
          .map((t) => `${t.node} ${t.status.toLowerCase()}`)
          .join(', ')}`,
      )
    : succeeded({ outputs: { results: items.map((t) => t.outputs ?? {}) } });
}

/** A `workflow` node once its nested run ended with `status`: the nested run's succeeded outputs by node. */
export function nestedRunOutcome(runId: string, status: RunStatus, message: string | null, outputs: Record<string, unknown>): TaskOutcome {
  return {
    state: status === 'SUCCEEDED' ? 'SUCCEEDED' : status === 'CANCELLED' ? 'CANCELLED' : 'FAILED',
    reason: 'nested-run',
    message: `nested run ${runId} ${status.toLowerCase()}${message ? `: ${message}` : ''}`,
    outputs,
  };
}

/**
 * A failed run's message: its first failed tasks by node name and status, nothing more. A run's message is
 * metadata, readable by everyone who may read the run; a task's own message (its stderr, a nested run's or a map
 * item's story) is run data, so it is never copied here: it stays on the task, behind the domain's grant.
 */
export function failureSummary(failed: { node: string; status: TaskStatus }[]): string {
  return failed.map((t) => `${t.node} ${t.status.toLowerCase().replace('_', ' ')}`).join('; ');
}

/** Why a pending task was skipped, from its upstream counts. */
export const skipMessage = (t: { triggerRule: string; total: number; done: number; succeeded: number; failed: number }) => {
  const skipped = t.done - t.succeeded - t.failed;
  return `skipped: its trigger rule ${t.triggerRule} can no longer be met (${t.succeeded} of ${t.total} upstreams succeeded, ${t.failed} failed${skipped ? `, ${skipped} skipped or cancelled` : ''}, ${t.total - t.done} still open)`;
};

export const cacheHitMessage = (e: Pick<CacheHit, 'sourceTaskId' | 'sourceRunId' | 'durationMs'>) =>
  `served from cache: the result of task ${e.sourceTaskId} of run ${e.sourceRunId} (saved ${e.durationMs} ms)`;

/** What a task that waits for an identical task's result says while it waits. */
export const cacheWaitMessage = (holder: { taskId: string; runId: string } | undefined) =>
  holder
    ? `waiting for task ${holder.taskId} of run ${holder.runId}, which computes the same result, to serve it from cache`
    : 'waiting for an identical task to finish, to serve its result from cache';
