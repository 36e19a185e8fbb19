// The delivery log of a webhook: its deliveries newest first (a page at a time), the attempts of each, and replaying
// one (queued again with a fresh retry budget and the same event id, so receivers dedupe it).
import { and, asc, desc, eq, getTableColumns, inArray, lt, type SQL, sql } from 'drizzle-orm';
import { audit } from '../audit/audit';
import { assertCan } from '../auth/ability';
import type { Db } from '../db/client';
import { beyondCursor, cursorTime, decodeTimeCursor, encodeTimeCursor, type TimeCursor } from '../db/keyset';
import { type WebhookAttempt, type WebhookDelivery, type WebhookDeliveryStatus, webhookAttempts, webhookDeliveries } from '../db/tables/webhooks';
import { notFound } from '../errors';
import { OWNERSHIP_RULE } from '../teams/ownership';
import { type Caller, managedWebhook } from './subscriptions';

export const encodeDeliveryCursor = (d: WebhookDelivery & { cursorAt?: string }) => encodeTimeCursor({ at: d.cursorAt ?? d.createdAt.toISOString(), id: d.id });

export function decodeDeliveryCursor(cursor: string): TimeCursor {
  const decoded = decodeTimeCursor(cursor);
  if (!decoded) throw notFound('That cursor is not one this list gave; start again without it.');
  return decoded;
}

/** One page of a webhook's deliveries, newest first (`inverted`: from the oldest end, for `last`/`before`). */
export async function deliveriesPage(
  db: Db,
  caller: Caller,
  webhookId: string,
  filter: { status?: WebhookDeliveryStatus | null },
  page: { after?: TimeCursor; before?: TimeCursor; limit: number; inverted: boolean },
): Promise<(WebhookDelivery & { cursorAt: string })[]> {
  assertCan(caller.ability, 'read', 'Webhook', 'read webhook deliveries');
  await managedWebhook(db, caller, webhookId, 'webhook.deliveries');
  const where: (SQL | undefined)[] = [eq(webhookDeliveries.webhookId, webhookId)];
  if (filter.status) where.push(eq(webhookDeliveries.status, filter.status));
  if (page.after) where.push(beyondCursor(webhookDeliveries.createdAt, webhookDeliveries.id, page.after, 'older'));
  if (page.before) where.push(beyondCursor(webhookDeliveries.createdAt, webhookDeliveries.id, page.before, 'newer'));
  const order = page.inverted ? [asc(webhookDeliveries.createdAt), asc(webhookDeliveries.id)] : [desc(webhookDeliveries.createdAt), desc(webhookDeliveries.id)];
  return db
    .select({ ...getTableColumns(webhookDeliveries), cursorAt: cursorTime(webhookDeliveries.createdAt) })
    .from(webhookDeliveries)
    .where(and(...where))
    .orderBy(...order)
    .limit(page.limit);
}

/** The attempts of these deliveries, in order, by delivery. */
export async function attemptsOf(db: Db, deliveryIds: string[]): Promise<WebhookAttempt[]> {
  if (!deliveryIds.length) return [];
  return db.select().from(webhookAttempts).where(inArray(webhookAttempts.deliveryId, deliveryIds)).orderBy(asc(webhookAttempts.id));
}

export const deliveriesByIds = (db: Db, ids: string[]): Promise<WebhookDelivery[]> =>
  ids.length ? db.select().from(webhookDeliveries).where(inArray(webhookDeliveries.id, ids)) : Promise.resolve([]);

/**
 * Queues a delivery again, due now, with a fresh retry budget; the body and event id stay the same. One of another
 * team's webhooks answers like one that does not exist (audited). Kick the worker afterwards.
 */
export async function replayDelivery(db: Db, caller: Caller, id: string): Promise<WebhookDelivery> {
  assertCan(caller.ability, 'update', 'Webhook', 'replay webhook deliveries');
  const [delivery] = await deliveriesByIds(db, [id]);
  if (!delivery) throw notFound(`No webhook delivery ${id}; \`webhookDeliveries(webhookId: ID)\` lists a webhook's deliveries.`);
  await managedWebhook(db, caller, delivery.webhookId, 'webhook.replay').catch((error) => {
    throw (error as { code?: string }).code === 'NOT_FOUND'
      ? notFound(`No webhook delivery ${id}; \`webhookDeliveries(webhookId: ID)\` lists a webhook's deliveries.`)
      : error;
  });
  const [queued] = await db
    .update(webhookDeliveries)
    .set({ status: 'PENDING', roundAttempts: 0, nextAttemptAt: sql`now()`, lastError: null })
    .where(eq(webhookDeliveries.id, id))
    .returning();
  await audit(db, { identity: caller.identity, action: 'webhook.replay', decision: 'allow', subject: `webhook-delivery:${id}`, rule: OWNERSHIP_RULE });
  return queued!;
}

/** Deletes finished deliveries (with their attempts) created more than `days` ago; pending ones stay. */
export async function pruneWebhookDeliveries(db: Db, days: number): Promise<number> {
  const pruned = await db
    .delete(webhookDeliveries)
    .where(and(inArray(webhookDeliveries.status, ['SUCCEEDED', 'FAILED']), lt(webhookDeliveries.createdAt, sql`now() - ${`${days} days`}::interval`)))
    .returning({ id: webhookDeliveries.id });
  return pruned.length;
}
