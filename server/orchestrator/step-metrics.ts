// What a committed transaction of the orchestrator adds to the metrics (server/metrics/instruments.ts): the tasks it
// dispatched, per pool; the attempts it ended, by status; its cache hits and the time they saved; and, when it recorded successes and dispatched tasks,
// the edge delay from the last success reported to the dispatch. Counted once the transaction has committed (a
// deadlock's victim run again counts once), from the live events it produced anyway: one pass, one increment each.
import { isTaskBatch } from '../../plugins/protocol';
import type { FeedEvent } from '../events/feed';
import type { Instruments } from '../metrics/instruments';
import type { TaskStatus } from '../vocabulary';
import type { Step } from './context';

export type OrchestratorInstruments = Pick<Instruments, 'tasksDispatched' | 'attemptEnded' | 'cacheHits' | 'edgeDelay' | 'redelivered'>;

/** The statuses an attempt ends with: finished, or failed to be tried again (RETRYING). */
const ENDS_AN_ATTEMPT = new Set<TaskStatus>(['SUCCEEDED', 'FAILED', 'CANCELLED', 'TIMED_OUT', 'RETRYING']);

export function countCommitted(instruments: OrchestratorInstruments, step: Step, events: readonly FeedEvent[]): void {
  const edgeFrom = step.lastSuccessAt;
  const now = edgeFrom ? Date.now() : 0;
  for (const e of events) {
    if (e.kind !== 'task-status') continue;
    // attempt 0: a task that never ran (skipped, cancelled while waiting); a cache hit ran nothing either.
    if (ENDS_AN_ATTEMPT.has(e.status) && e.attempt > 0 && e.reason !== 'cache-hit') instruments.attemptEnded(e.status);
    else if (edgeFrom && e.status === 'QUEUED') instruments.edgeDelay(Math.max(0, (now - edgeFrom) / 1000));
  }
  // Counted here, once per dispatch, not where the bus takes a message: another replica's relay pass may publish a
  // committed message again before its row is deleted (the bus drops the copy).
  for (const m of step.committed) instruments.tasksDispatched(m.pool, isTaskBatch(m.payload) ? m.payload.tasks.length : 1);
  if (step.cacheHits.count) instruments.cacheHits(step.cacheHits.count, step.cacheHits.savedMs / 1000);
}
