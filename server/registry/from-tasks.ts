// Registration from inside a module: a module's `register` progress lines travel with its task's result, and once
// the success has committed the orchestrator hands them here. Each is registered as the run's creator, with their
// rights (a namespace they may not write is refused and audited as for the API); the outcome, a version or the
// refusal, is written to the task's log. The task itself stays SUCCEEDED. Registering is content-addressed, so a
// repeat (a redelivered result) is the version already there.
import { eq } from 'drizzle-orm';
import type { ObjectStore } from '../artifacts/store';
import { defineAbilityFor } from '../auth/ability';
import { grantsOf } from '../auth/grants';
import type { Db } from '../db/client';
import { identities } from '../db/tables/identities';
import { runs, tasks } from '../db/tables/runs';
import { taskEvents } from '../db/tables/task-events';
import type { RunFeed } from '../events/feed';
import type { TaskRegistrations } from '../orchestrator/context';
import { registerModelVersion } from './versions';

/** Log lines of the control plane sit after every line an attempt's host may number (hosts count up from 0). */
const LOG_SEQ = Number.MAX_SAFE_INTEGER - 1_000;

export function createRegistrationHandler(deps: { db: Db; store: ObjectStore; feed: RunFeed; log: (message: string) => void }) {
  const { db, store, feed } = deps;
  return async function registerFromTasks(batch: TaskRegistrations[]): Promise<void> {
    for (const { taskId, runId, attempt, requests } of batch) {
      const lines: string[] = [];
      try {
        const [run] = await db.select({ createdBy: runs.createdBy }).from(runs).where(eq(runs.id, runId));
        const [creator] = run?.createdBy ? await db.select().from(identities).where(eq(identities.id, run.createdBy)) : [];
        for (const request of requests) {
          if (!creator) {
            lines.push(`[atelier] model ${request.model} not registered: the run has no creator to register as (register it with registerModelVersion).`);
            continue;
          }
          try {
            const ability = defineAbilityFor(creator, await grantsOf(db, creator));
            const { version, created } = await registerModelVersion(db, store, ability, creator, { ...request, taskId });
            lines.push(
              `[atelier] model ${request.model}@${version.version} ${created ? 'registered' : 'already registered with this content'} from "${request.output}" as ${creator.name}`,
            );
          } catch (error) {
            lines.push(`[atelier] model ${request.model} not registered from "${request.output}" as ${creator.name}: ${(error as Error).message}`);
          }
        }
        await logLines(taskId, runId, attempt, lines);
      } catch (error) {
        deps.log(`registering models of task ${taskId}: ${(error as Error).message}`);
      }
    }
  };

  async function logLines(taskId: string, runId: string, attempt: number, lines: string[]): Promise<void> {
    if (!lines.length) return;
    const at = new Date();
    const events = await db.transaction(async (tx) => {
      const inserted = await tx
        .insert(taskEvents)
        .values({ taskId, runId, attempt, seq: LOG_SEQ, kind: 'log', at, payload: { host: 'control-plane', stream: 'stderr', lines } })
        .onConflictDoNothing()
        .returning({ id: taskEvents.taskId });
      if (!inserted.length) return [];
      const [task] = await tx.select({ node: tasks.node }).from(tasks).where(eq(tasks.id, taskId));
      return feed.append(tx, [{ kind: 'task-log', runId, taskId, node: task?.node ?? '', stream: 'stderr', lines, at: at.toISOString() }]);
    });
    feed.publish(events);
  }
}
