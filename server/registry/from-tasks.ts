// Registration from inside a module: a module's `register` progress lines travel with its task's result, and once
// the success has committed the orchestrator hands them here. Each is registered as the run's creator, with their
// rights (a namespace they may not write is refused and audited as for the API); the outcome, a version or the
// refusal, is written to the task's log. The task itself stays SUCCEEDED. Registering is content-addressed, so a
// repeat (a redelivered result) is the version already there. A crash between the commit and the registering loses
// nothing: the requests are stored with the result event, and a recovery pass (every minute) handles any success
// whose requests have no log line yet.
import { eq, sql } from 'drizzle-orm';
import type { ObjectStore } from '../artifacts/store';
import { defineAbilityFor } from '../auth/ability';
import { grantsOf } from '../auth/grants';
import { type Db, queryRows } from '../db/client';
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
  return { register: registerFromTasks, recover };

  async function registerFromTasks(batch: TaskRegistrations[]): Promise<void> {
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
  }

  /**
   * Registers what a crash left undone: successes that asked for registrations and have no control-plane log line
   * yet (the line is written once a task's requests were handled, registered or refused). Registering is
   * content-addressed, so one handled before the crash only says so again. Only results older than `settledMs` are
   * taken, so a registration under way right after its commit is left to finish. Returns how many tasks it handled.
   */
  async function recover(settledMs = 60_000): Promise<number> {
    const pending = await queryRows<{ task_id: string; run_id: string; attempt: number; requests: TaskRegistrations['requests'] }>(
      db,
      sql`select e.task_id, e.run_id, e.attempt, e.payload -> 'outcome' -> 'registrations' as requests
          from task_events e
          where e.kind = 'result' and (e.payload -> 'outcome' -> 'registrations') is not null
            and (e.payload -> 'outcome' ->> 'state') = 'SUCCEEDED'
            and e.at < ${new Date(Date.now() - settledMs)}
            and not exists (select 1 from task_events l where l.task_id = e.task_id and l.attempt = e.attempt and l.seq = ${LOG_SEQ})
          limit 100`,
    );
    const batch = pending
      .filter((r) => Array.isArray(r.requests) && r.requests.length)
      .map((r) => ({ taskId: r.task_id, runId: r.run_id, attempt: r.attempt, requests: r.requests }));
    await registerFromTasks(batch);
    return batch.length;
  }

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
