// The signal a run succeeding records for triggers (server/signals/), in the transaction that ends it: only for a
// top-level run of a workflow some trigger listens to, so a run no trigger waits for writes nothing more.
import { and, eq, sql } from 'drizzle-orm';
import type { Tx } from '../db/client';
import type { Run } from '../db/tables/runs';
import { workflowTriggers } from '../db/tables/triggers';
import { workflows } from '../db/tables/workflows';
import { workflowSubject } from '../signals/signals';
import { runSucceededSignal } from '../signals/sources';

/** True when a signal was recorded (kick the trigger dispatcher after the commit). */
export async function runSucceeded(tx: Tx, run: Run): Promise<boolean> {
  if (!run.workflowId || run.parentRunId) return false;
  const [workflow] = await tx
    .select({
      name: workflows.name,
      teamId: workflows.teamId,
      listened: sql<boolean>`exists (select 1 from ${workflowTriggers} where ${and(eq(workflowTriggers.kind, 'RUN_SUCCEEDED'), eq(workflowTriggers.matchSubject, workflowSubject(run.workflowId)))})`,
    })
    .from(workflows)
    .where(eq(workflows.id, run.workflowId));
  if (!workflow?.listened) return false;
  await runSucceededSignal(tx, { runId: run.id, workflowId: run.workflowId, workflowName: workflow.name, teamId: workflow.teamId, domain: run.domain });
  return true;
}
