// The registry's one event writer: every change calls `registryEvent` inside its own transaction, so the event
// exists exactly when the change does. Subscriptions and webhooks (later) read `registry_events` by `seq`.
import type { Tx } from '../db/client';
import type { Identity } from '../db/tables/identities';
import { registryEvents } from '../db/tables/registry';
import type { RegistryEventType } from '../vocabulary';

export async function registryEvent(tx: Tx, type: RegistryEventType, modelId: string, actor: Identity | null, payload: Record<string, unknown>): Promise<void> {
  await tx.insert(registryEvents).values({ type, modelId, actorId: actor?.id ?? null, payload });
}
