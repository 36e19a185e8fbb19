// The recorder's prepared statements settle on their generic plan (server/db/arrays.ts, oneOrAny): after its first
// five calls on a connection, Postgres runs a prepared statement on a generic plan only if that plan is costed no
// higher than the custom ones; a statement that names its one task by `= any($1)` never got there (its generic plan
// guesses ten ids), so it was planned anew on every call: the success's update of every chain edge, ~0.3 ms of
// Postgres' time on the edge's path (docs/performance.md, session 34). Real Postgres, a recorder on a connection of its
// own, read back from pg_prepared_statements on that connection.
import { and, eq } from 'drizzle-orm';
import { expect, it } from 'vitest';
import type { ExecutorEvent } from '../../plugins/protocol';
import { tasks } from '../../server/db/tables/runs';
import { countedApp, oneTask } from '../harness/counted-app';

const w = countedApp({ workflows: [oneTask()] });

/** A run of `one-task` started, and what its task reports as `base`. */
async function queuedTask(): Promise<Omit<ExecutorEvent, 'kind' | 'seq'>> {
  const runId = (await w.alice.gql(`mutation { startRun(workflow: "one-task") { id } }`)).startRun.id as string;
  const [task] = await w.db
    .select()
    .from(tasks)
    .where(and(eq(tasks.runId, runId), eq(tasks.status, 'QUEUED')));
  return { taskId: task!.id, runId, attempt: task!.attempt, host: 'test', at: new Date().toISOString() };
}

it("plans the recording's statements of one task once per connection, not on every call", async () => {
  const calls = 8;
  for (let i = 0; i < calls; i++) {
    const base = await queuedTask();
    // Its start and first progress, a later progress alone, then its success (record-events.ts).
    await w.counted.orchestrator.recordEvents([
      { ...base, kind: 'started', seq: 1, handle: null },
      { ...base, kind: 'progress', seq: 2, fraction: 0.5, message: 'half way' },
    ]);
    await w.counted.orchestrator.recordEvents([{ ...base, kind: 'progress', seq: 3, fraction: 0.75, message: null }]);
    await w.counted.orchestrator.recordEvents([{ ...base, kind: 'result', seq: 4, durationMs: 1, outcome: { state: 'SUCCEEDED', outputs: { out: 1 } } }]);
  }
  const kept = await w.counted.sql<{ statement: string; generic_plans: string; custom_plans: string }[]>`
    select statement, generic_plans, custom_plans from pg_prepared_statements`;
  const planned = (part: string) => {
    const found = kept.filter((s) => s.statement.includes(part));
    expect(found, part).toHaveLength(1);
    return { generic: Number(found[0]!.generic_plans), custom: Number(found[0]!.custom_plans) };
  };
  if (process.env.GENERIC_PLANS_SHOW) for (const s of kept) console.log(s.custom_plans, s.generic_plans, s.statement.replace(/\s+/g, ' ').slice(0, 100));
  // Planned for each of its first five calls, then run on the generic plan (which Postgres plans once, on the sixth).
  expect(planned('other_executions_files')).toEqual({ custom: 5, generic: calls - 5 });
  // A start's update and a progress's (record-alive.ts), each recorded on its own: prepared, then on the generic plan.
  expect(planned("set status = 'RUNNING', started_at = v.at")).toEqual({ custom: 5, generic: calls - 5 });
  expect(planned('progress_message = case when v.attempt')).toEqual({ custom: 5, generic: 2 * calls - 5 });
});
