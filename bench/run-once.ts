// One run of a single-task workflow on a test app, started and waited for: the benchmarks' unit of work.
import { eq } from 'drizzle-orm';
import { runs, type Task, tasks } from '../server/db/tables/runs';
import { terminalRunStatuses } from '../server/vocabulary';
import type { TestApp } from '../test/harness/app';

const terminal = new Set<string>(terminalRunStatuses);
/** How often the run's row is read in case its end was not seen on the feed (a backstop, not the way it is learnt). */
const BACKSTOP_MS = 250;

/**
 * Starts `workflow` (refreshCache: every run executes; the cache would otherwise serve all but the first), waits for
 * it to succeed, and returns its (first) task. A run that does not succeed throws. Its end is learnt from the run
 * feed, as a dashboard learns it: polling the run's row every few milliseconds took CPU from the task being timed
 * (the embedded database runs in this process, beside the executor host).
 */
export async function runOnce(t: TestApp, workflow: string): Promise<Task> {
  const { db } = t.app.database;
  let runId: string | undefined;
  const ended = new Map<string, string>();
  let wake: (() => void) | undefined;
  // Subscribed before the start: a run this short may end before startRun's promise settles.
  const stop = t.app.services.feed.subscribe('*', (event) => {
    if (event.kind !== 'run-status' || !terminal.has(event.status)) return;
    ended.set(event.runId, event.status);
    if (event.runId === runId) wake?.();
  });
  try {
    const run = await t.app.services.orchestrator.startRun({ workflow, trigger: 'API', refreshCache: true }, null);
    runId = run.id;
    let status = ended.get(run.id);
    while (!status) {
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, BACKSTOP_MS);
      });
      status = ended.get(run.id);
      if (!status) {
        const [row] = await db.select({ status: runs.status }).from(runs).where(eq(runs.id, run.id));
        if (row && terminal.has(row.status)) status = row.status;
      }
    }
    if (status !== 'SUCCEEDED') throw new Error(`bench run of ${workflow} ended ${status}`);
    const [task] = await db.select().from(tasks).where(eq(tasks.runId, run.id));
    return task!;
  } finally {
    stop();
  }
}
