// One run of a single-task workflow on a test app, started and waited for: the benchmarks' unit of work.
import { eq } from 'drizzle-orm';
import { runs, type Task, tasks } from '../server/db/tables/runs';
import type { TestApp } from '../test/harness/app';

/** Starts `workflow` (refreshCache: every run executes; the cache would otherwise serve all but the first), waits for
 * it to succeed, polling every `pollMs`, and returns its (first) task. A run that does not succeed throws. */
export async function runOnce(t: TestApp, workflow: string, pollMs = 2): Promise<Task> {
  const { db } = t.app.database;
  const run = await t.app.services.orchestrator.startRun({ workflow, trigger: 'API', refreshCache: true }, null);
  for (;;) {
    const [row] = await db.select({ status: runs.status }).from(runs).where(eq(runs.id, run.id));
    if (row && ['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(row.status)) {
      if (row.status !== 'SUCCEEDED') throw new Error(`bench run of ${workflow} ended ${row.status}`);
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
  const [task] = await db.select().from(tasks).where(eq(tasks.runId, run.id));
  return task!;
}
