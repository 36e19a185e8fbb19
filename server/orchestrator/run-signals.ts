// The signals a run's end records for triggers (server/signals/), in the transaction that ends it: `run.succeeded`
// and `run.failed` (its tasks failed, or it ran past its time limit; a cancel records nothing), only for a top-level
// run of a workflow some trigger of that kind listens to, so a run no trigger waits for writes nothing more.
import { sql } from 'drizzle-orm';
import type { Tx } from '../db/client';
import { sqlOnce } from '../db/prepared';
import type { Run } from '../db/tables/runs';
import { workflowSubject } from '../signals/signals';
import type { RunFailureReason } from '../vocabulary';

/**
 * True when a signal was recorded (kick the trigger dispatcher after the commit). ONE statement, the lookup and the
 * write together (as recordSignal writes it): nothing in the transaction that ends the run waits for its answer. It
 * writes only if the run's row shows that end (finished at `at`): a run's end may be sent before it is known (settle.ts).
 */
export const runSucceeded = (tx: Tx, run: Run, at: Date): Promise<boolean> => runEndSignal(tx, run, at, null);

/** As runSucceeded, for a run that ended FAILED: `reason` and `message` (node names and statuses only) go in its payload. */
export const runFailed = (tx: Tx, run: Run, at: Date, reason: RunFailureReason, message: string | null): Promise<boolean> =>
  runEndSignal(tx, run, at, { reason, message });

async function runEndSignal(tx: Tx, run: Run, at: Date, failure: { reason: RunFailureReason; message: string | null } | null): Promise<boolean> {
  if (!run.workflowId || run.parentRunId) return false;
  const subject = workflowSubject(run.workflowId);
  const status = failure ? 'FAILED' : 'SUCCEEDED';
  // What a trigger's firing reads (server/signals/): the run and its workflow; the workflow's name is its row's, and
  // `failureChain` (how many failure-started runs led here) is the statement's, from the signal that started the run.
  const payload = {
    run: { id: run.id, domain: run.domain, status, ...(failure && { reason: failure.reason, message: failure.message }) },
    workflow: { id: run.workflowId, name: null },
    failureChain: 0,
  };
  const rows = await signalOfRun(tx, {
    runId: run.id,
    status,
    at: at.toISOString(),
    type: failure ? 'run.failed' : 'run.succeeded',
    kind: failure ? 'RUN_FAILED' : 'RUN_SUCCEEDED',
    subject,
    key: `run:${run.id}:${status.toLowerCase()}`,
    payload: JSON.stringify(payload),
    workflowId: run.workflowId,
    startedBy: startingSignal(run),
    step: failure ? 1 : 0,
  });
  return rows.length > 0;
}

/**
 * The signal whose firing started the run, from its idempotency key (`trigger:TRIGGER:SIGNAL`, the dispatcher's
 * firingKey): only a run no one started (createdBy null) has a key the dispatcher set; null for any other run.
 */
function startingSignal(run: Run): string | null {
  if (run.trigger !== 'EVENT' || run.createdBy || !run.idempotencyKey) return null;
  const m = /^trigger:[0-9a-f-]{36}:([0-9a-f-]{36})$/.exec(run.idempotencyKey);
  return m ? m[1]! : null;
}

/** The signal's insert with its lookup, built once (server/db/prepared.ts): every top-level run's end sends it. */
const signalOfRun = sqlOnce<{
  runId: string;
  status: string;
  at: string;
  type: string;
  kind: string;
  subject: string;
  key: string;
  payload: string;
  workflowId: string;
  startedBy: string | null;
  step: number;
}>()<{ id: number }>(() => {
  const subject = sql`${sql.placeholder('subject')}::text`;
  // A success passes the chain on unchanged and a failure adds one, so a loop through successes is counted too.
  const chain = sql`coalesce((select (s.payload->>'failureChain')::int from signals s where s.id = ${sql.placeholder('startedBy')}::uuid), 0)
    + ${sql.placeholder('step')}::int`;
  return sql`insert into signals (type, team_id, subject, key, payload)
      select ${sql.placeholder('type')}::text, w.team_id, ${subject}, ${sql.placeholder('key')}::text,
        jsonb_set(jsonb_set(${sql.placeholder('payload')}::jsonb, '{workflow,name}', to_jsonb(w.name)), '{failureChain}', to_jsonb(${chain}))
      from workflows w
      where w.id = ${sql.placeholder('workflowId')}::uuid
        and exists (select 1 from workflow_triggers where kind = ${sql.placeholder('kind')}::text and match_subject = ${subject})
        and exists (select 1 from runs where runs.id = ${sql.placeholder('runId')}::uuid and runs.status = ${sql.placeholder('status')}::text
          and runs.finished_at = ${sql.placeholder('at')}::timestamptz)
      on conflict (key) do update set key = excluded.key
      returning id`;
});
