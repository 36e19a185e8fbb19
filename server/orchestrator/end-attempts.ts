// How the sweep ends attempts it found lost or stuck: each in its run's transaction, only if it has not moved on.
import { eq } from 'drizzle-orm';
import type { TaskOutcome } from '../../plugins/protocol';
import { type Task, tasks } from '../db/tables/runs';
import { stopAttempts } from './cancel';
import { lockRun, type OrchestratorContext, transact } from './context';
import { isTerminal } from './rules';
import { applyOutcome, settle } from './settle';

/** How one attempt the sweep ends is ended: why its host is told to stop, and the outcome applied. */
export interface Ending {
  reason: string;
  outcome: TaskOutcome;
  durationMs: number;
  host: string | null;
}

/**
 * Ends the given attempts, run by run, each in its run's transaction: an attempt that has moved on since it was found
 * (another status, a later attempt) is left alone; the rest are told to stop (a host holding one, an outbox row of it)
 * and get their outcome (retried or failed), and the run settles what finished.
 */
export async function endAttempts<T extends { id: string; runId: string; attempt: number }>(
  ctx: OrchestratorContext,
  status: 'QUEUED' | 'RUNNING',
  found: T[],
  ending: (task: Task, found: T, at: Date) => Ending,
): Promise<void> {
  for (const [runId, list] of groupByRun(found)) {
    await transact(ctx, async (tc) => {
      const { tx, step } = tc;
      const run = await lockRun(tx, runId);
      if (!run) return;
      const finished: string[] = [];
      for (const s of list) {
        const [task] = await tx.select().from(tasks).where(eq(tasks.id, s.id));
        if (task?.status !== status || task.attempt !== s.attempt) continue;
        const { reason, outcome, durationMs, host } = ending(task, s, step.at);
        await stopAttempts(tc, [{ taskId: task.id, attempt: task.attempt }], reason);
        const updated = await applyOutcome(tc, task, outcome, { at: step.at, durationMs, host });
        if (isTerminal(updated.status)) finished.push(updated.node);
      }
      await settle(tc, run, finished);
    });
  }
}

export function groupByRun<T extends { runId: string }>(rows: T[]): Map<string, T[]> {
  const map = new Map<string, T[]>();
  for (const r of rows) {
    const list = map.get(r.runId);
    if (list) list.push(r);
    else map.set(r.runId, [r]);
  }
  return map;
}
