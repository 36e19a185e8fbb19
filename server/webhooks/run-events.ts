// The run events webhooks receive: `run.succeeded`, `run.failed`, `run.cancelled`, for runs of workflows a team owns,
// emitted by the orchestrator in the transaction that ends the run. The data is the run's meta fields only.
import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import type { Tx } from '../db/client';
import { sqlOnce } from '../db/prepared';
import type { Run } from '../db/tables/runs';

export const RUN_EVENT_TYPES = ['run.succeeded', 'run.failed', 'run.cancelled'] as const;

/**
 * Emits the run's end to its workflow's team's webhooks; true when a delivery was written (kick the worker after
 * commit). ONE statement, the lookup and the writes together (`subscribes` in SQL): nothing in the transaction waits
 * for its answer before the next statement or the COMMIT (it runs on every run's end). It writes only if the run's
 * row shows that end (`status`, finished at `at`): a run's end may be sent before it is known to happen (settle.ts).
 */
export async function emitRunEnded(tx: Tx, run: Run, status: 'SUCCEEDED' | 'FAILED' | 'CANCELLED', message: string | null, at: Date): Promise<boolean> {
  if (!run.workflowId) return false;
  const type = `run.${status.toLowerCase()}`;
  const data = {
    run: {
      id: run.id,
      name: run.name,
      status,
      domain: run.domain,
      trigger: run.trigger,
      // built from node names and statuses only (orchestrator/outcomes.ts), never a task's message
      message,
      parentRunId: run.parentRunId,
      createdAt: run.createdAt.toISOString(),
      startedAt: run.startedAt?.toISOString() ?? null,
      finishedAt: at.toISOString(),
    },
    // its name is the workflow row's, set by the statement
    workflow: { id: run.workflowId, name: null },
  };
  // emit.ts's body, `{ id, type, createdAt, data }`, one event id for every subscription it goes to.
  const body = { id: randomUUID(), type, createdAt: at.toISOString(), data };
  const rows = await runEndedDeliveries(tx, {
    runId: run.id,
    status,
    at: at.toISOString(),
    workflowId: run.workflowId,
    eventId: body.id,
    type,
    subject: `run:${run.id}`,
    body: JSON.stringify(body),
  });
  return rows.length > 0;
}

/**
 * The lookup (the workflow's team's active webhooks that take `type`) and the deliveries' insert, one statement built
 * once (server/db/prepared.ts): every run's end sends it, and Postgres plans it once per connection.
 */
const runEndedDeliveries = sqlOnce<{
  runId: string;
  status: string;
  at: string;
  workflowId: string;
  eventId: string;
  type: string;
  subject: string;
  body: string;
}>()<{
  one: number;
}>(() => {
  const type = sql`${sql.placeholder('type')}::text`;
  return sql`with w as (select id, name, team_id from workflows where id = ${sql.placeholder('workflowId')}::uuid and team_id is not null
          and exists (select 1 from runs where runs.id = ${sql.placeholder('runId')}::uuid and runs.status = ${sql.placeholder('status')}::text
            and runs.finished_at = ${sql.placeholder('at')}::timestamptz)),
        hooks as (
          select h.id from webhooks h join w on h.team_id = w.team_id
          where h.active and exists (
            select 1 from jsonb_array_elements_text(h.events) as e(name)
            where e.name = '*' or e.name = ${type} or (right(e.name, 2) = '.*' and starts_with(${type}, left(e.name, -1)))))
      insert into webhook_deliveries (webhook_id, event_id, event_type, subject, body)
      select hooks.id, ${sql.placeholder('eventId')}::uuid, ${type}, ${sql.placeholder('subject')}::text,
        jsonb_set(${sql.placeholder('body')}::jsonb, '{data,workflow,name}', to_jsonb(w.name))
      from hooks, w
      returning 1 as one`;
});
