// The signal a run succeeding records for triggers (server/signals/), in the transaction that ends it: only for a
// top-level run of a workflow some trigger listens to, so a run no trigger waits for writes nothing more.
import { sql } from 'drizzle-orm';
import type { Tx } from '../db/client';
import { sqlOnce } from '../db/prepared';
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
  const rows = await signalOfRun(tx, {
    subject,
    key: `run:${run.id}:succeeded`,
    payload: JSON.stringify(payload),
    workflowId: run.workflowId,
  });
  return rows.length > 0;
}

/** The signal's insert with its lookup, built once (server/db/prepared.ts): every top-level run's success sends it. */
const signalOfRun = sqlOnce<{ subject: string; key: string; payload: string; workflowId: string }>()<{ id: number }>(() => {
  const subject = sql`${sql.placeholder('subject')}::text`;
  return sql`insert into signals (type, team_id, subject, key, payload)
      select 'run.succeeded', w.team_id, ${subject}, ${sql.placeholder('key')}::text,
        jsonb_set(${sql.placeholder('payload')}::jsonb, '{workflow,name}', to_jsonb(w.name))
      from workflows w
      where w.id = ${sql.placeholder('workflowId')}::uuid and exists (select 1 from workflow_triggers where kind = 'RUN_SUCCEEDED' and match_subject = ${subject})
      on conflict (key) do update set key = excluded.key
      returning id`;
});
