// The signal a run succeeding records for triggers (server/signals/), in the transaction that ends it: only for a
// top-level run of a workflow some trigger listens to, so a run no trigger waits for writes nothing more.
import { sql } from 'drizzle-orm';
import { queryRows, type Tx } from '../db/client';
import type { Run } from '../db/tables/runs';
import { workflowSubject } from '../signals/signals';

/**
 * True when a signal was recorded (kick the trigger dispatcher after the commit). ONE statement, the lookup and the
 * write together (as recordSignal writes it): nothing in the transaction that ends the run waits for its answer.
 */
export async function runSucceeded(tx: Tx, run: Run): Promise<boolean> {
  if (!run.workflowId || run.parentRunId) return false;
  const subject = workflowSubject(run.workflowId);
  // What a trigger's firing reads (server/signals/): the run and its workflow; the workflow's name is its row's, set by the statement.
  const payload = { run: { id: run.id, domain: run.domain }, workflow: { id: run.workflowId, name: null } };
  const rows = await queryRows(
    tx,
    sql`insert into signals (type, team_id, subject, key, payload)
      select 'run.succeeded', w.team_id, ${subject}, ${`run:${run.id}:succeeded`}, jsonb_set(${JSON.stringify(payload)}::jsonb, '{workflow,name}', to_jsonb(w.name))
      from workflows w
      where w.id = ${run.workflowId} and exists (select 1 from workflow_triggers where kind = 'RUN_SUCCEEDED' and match_subject = ${subject})
      on conflict (key) do update set key = excluded.key
      returning id`,
  );
  return rows.length > 0;
}
