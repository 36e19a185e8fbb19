// The run events webhooks receive: `run.succeeded`, `run.failed`, `run.cancelled`, for runs of workflows a team owns,
// emitted by the orchestrator in the transaction that ends the run. The data is the run's meta fields only.
import { eq, sql } from 'drizzle-orm';
import type { Tx } from '../db/client';
import type { Run } from '../db/tables/runs';
import { webhooks } from '../db/tables/webhooks';
import { workflows } from '../db/tables/workflows';
import { emitWebhookEvent } from './emit';

export const RUN_EVENT_TYPES = ['run.succeeded', 'run.failed', 'run.cancelled'] as const;

/** Emits the run's end to its workflow's team's webhooks; true when a delivery was written (kick the worker after commit). */
export async function emitRunEnded(tx: Tx, run: Run, status: 'SUCCEEDED' | 'FAILED' | 'CANCELLED', message: string | null, at: Date): Promise<boolean> {
  if (!run.workflowId) return false;
  // One lookup on every run's end: the workflow, and whether its team has any active webhook at all.
  const [workflow] = await tx
    .select({
      id: workflows.id,
      name: workflows.name,
      teamId: workflows.teamId,
      hooked: sql<boolean>`exists (select 1 from ${webhooks} where ${webhooks.teamId} = ${workflows.teamId} and ${webhooks.active})`,
    })
    .from(workflows)
    .where(eq(workflows.id, run.workflowId));
  if (!workflow?.teamId || !workflow.hooked) return false;
  const written = await emitWebhookEvent(tx, {
    type: `run.${status.toLowerCase()}`,
    team: workflow.teamId,
    subject: `run:${run.id}`,
    at,
    payload: {
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
      workflow: { id: workflow.id, name: workflow.name },
    },
  });
  return written > 0;
}
