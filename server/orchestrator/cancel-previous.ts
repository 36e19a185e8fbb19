// The CANCEL_PREVIOUS overlap policy, shared by schedules and triggers: cancel a source's runs still going before it
// starts the next one.
import { AtelierError } from '../errors';
import type { Orchestrator } from './orchestrator';

/** Cancels each run (a run that ended meanwhile has nothing to cancel and is skipped); answers the ids cancelled. */
export async function cancelPrevious(orchestrator: Pick<Orchestrator, 'cancelRun'>, runs: readonly { id: string }[]): Promise<string[]> {
  const cancelled: string[] = [];
  for (const previous of runs) {
    try {
      await orchestrator.cancelRun(previous.id, null);
      cancelled.push(previous.id);
    } catch (error) {
      if (!(error instanceof AtelierError && (error.code === 'CONFLICT' || error.code === 'NOT_FOUND'))) throw error;
    }
  }
  return cancelled;
}
