// The one entry point for events out: called inside the transaction of the change, it writes one delivery row per
// active webhook of the event's team that subscribes to its type. The rows are the webhooks' outbox: the delivery
// worker (worker.ts) posts them after the commit, so an event is sent if and only if its change committed.
import { randomUUID } from 'node:crypto';
import { and, eq } from 'drizzle-orm';
import type { Db, Tx } from '../db/client';
import { webhookDeliveries, webhooks } from '../db/tables/webhooks';

export interface WebhookEvent {
  /** Dotted event name: `run.succeeded`, `model.version.registered`. */
  type: string;
  /** The owning team's id: only its webhooks receive the event. Null: no team owns it, and no webhook receives it. */
  team: string | null;
  /** What it is about (`run:ID`), for the delivery log. */
  subject: string;
  /** The event's `data`: meta fields only, never run data (parameters, outputs, metrics) nor anything derived from it. */
  payload: Record<string, unknown>;
  /** When it happened (default: now). */
  at?: Date;
}

/** Whether a subscription's event list takes `type`: an exact name, a `prefix.*`, or `*`. */
export function subscribes(events: readonly string[], type: string): boolean {
  return events.some((e) => e === '*' || e === type || (e.endsWith('.*') && type.startsWith(e.slice(0, -1))));
}

/** Writes the deliveries of one event in `tx`; returns how many (kick the worker after the commit when any). */
export async function emitWebhookEvent(tx: Db | Tx, event: WebhookEvent): Promise<number> {
  if (!event.team) return 0;
  const subscribed = (
    await tx
      .select({ id: webhooks.id, events: webhooks.events })
      .from(webhooks)
      .where(and(eq(webhooks.teamId, event.team), eq(webhooks.active, true)))
  ).filter((w) => subscribes(w.events, event.type));
  if (!subscribed.length) return 0;
  const id = randomUUID();
  const createdAt = (event.at ?? new Date()).toISOString();
  const body = { id, type: event.type, createdAt, data: event.payload };
  await tx.insert(webhookDeliveries).values(subscribed.map((w) => ({ webhookId: w.id, eventId: id, eventType: event.type, subject: event.subject, body })));
  return subscribed.length;
}
