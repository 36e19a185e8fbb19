// A deployment's event log: every change (a revision created, refused or failed, a step, a promotion, a rollback, a
// failover and its restore) is a row written in the transaction of the change, and those people and other systems
// act on are also sent to the owning team's webhooks as `deployment.*` (docs/webhooks.md).
import type { Tx } from '../db/client';
import { type DeploymentEventKind, type DeploymentRow, deploymentEvents } from '../db/tables/deployments';
import type { Identity } from '../db/tables/identities';
import { emitWebhookEvent } from '../webhooks/emit';

const webhookTypes: Partial<Record<DeploymentEventKind, string>> = {
  ROLLED_BACK: 'deployment.rolled_back',
  PROMOTED: 'deployment.promoted',
  COMPLETED: 'deployment.promoted',
  FAILED_OVER: 'deployment.failed_over',
  RESTORED: 'deployment.restored',
  REVISION_FAILED: 'deployment.revision_failed',
  REVISION_REFUSED: 'deployment.revision_refused',
};

export async function deploymentEvent(
  tx: Tx,
  deployment: DeploymentRow,
  kind: DeploymentEventKind,
  input: { revision?: number | null; actor?: Identity | null; reason?: string | null; details?: Record<string, unknown> },
): Promise<number> {
  const [row] = await tx
    .insert(deploymentEvents)
    .values({
      deploymentId: deployment.id,
      kind,
      revision: input.revision ?? null,
      actorId: input.actor?.id ?? null,
      reason: input.reason ?? null,
      details: input.details ?? {},
    })
    .returning({ id: deploymentEvents.id });
  const type = webhookTypes[kind];
  if (type)
    await emitWebhookEvent(tx, {
      type,
      team: deployment.teamId,
      subject: `deployment:${deployment.id}`,
      payload: {
        deployment: { id: deployment.id, name: deployment.name, domain: deployment.domain, deployer: deployment.deployer },
        revision: input.revision ?? null,
        automatic: kind === 'COMPLETED' || !input.actor,
        actor: input.actor ? { id: input.actor.id, name: input.actor.name } : null,
        reason: input.reason ?? null,
        ...(input.details ?? {}),
      },
    });
  return row!.id;
}
