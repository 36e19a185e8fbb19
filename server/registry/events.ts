// The registry's one event writer: every change calls `registryEvent` inside its own transaction, so the event
// exists exactly when the change does. Each is kept in `registry_events` (read by `seq`) and handed to the model's
// team's webhooks as `model.<type>` (`model.version.registered`, `model.alias.moved`…), delivered after the commit.
import { eq } from 'drizzle-orm';
import type { Tx } from '../db/client';
import type { Identity } from '../db/tables/identities';
import { registeredModels, registryEvents } from '../db/tables/registry';
import { namespaces } from '../db/tables/teams';
import type { RegistryEventType } from '../vocabulary';
import { emitWebhookEvent } from '../webhooks/emit';

/** `payload` carries ids and names only (never metrics, lineage or other run data): webhooks receive it as it is. */
export async function registryEvent(tx: Tx, type: RegistryEventType, modelId: string, actor: Identity | null, payload: Record<string, unknown>): Promise<void> {
  const [event] = await tx
    .insert(registryEvents)
    .values({ type, modelId, actorId: actor?.id ?? null, payload })
    .returning();
  const [model] = await tx
    .select({ namespace: registeredModels.namespace, name: registeredModels.name, teamId: namespaces.teamId })
    .from(registeredModels)
    .leftJoin(namespaces, eq(namespaces.name, registeredModels.namespace))
    .where(eq(registeredModels.id, modelId));
  if (!model) return;
  const ref = `${model.namespace}/${model.name}`;
  await emitWebhookEvent(tx, {
    type: type.startsWith('model.') ? type : `model.${type}`,
    team: model.teamId,
    subject: `model:${ref}`,
    at: event!.createdAt,
    payload: { model: { id: modelId, name: ref }, actor: actor ? { id: actor.id, name: actor.name } : null, ...payload },
  });
}
