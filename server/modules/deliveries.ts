// Git hook deliveries: each one carries an id and a timestamp that its signature covers (HMAC-SHA256 of
// `TIMESTAMP.DELIVERY.BODY` under the shared secret), is refused when stale or from the future, and is remembered
// by sender and id for the window so the same delivery sent again is refused as a replay.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { lt } from 'drizzle-orm';
import type { Db } from '../db/client';
import { gitHookDeliveries } from '../db/tables/modules';
import { AtelierError, badInput } from '../errors';

/** A delivery older than this is stale (and its id may be forgotten). */
export const DELIVERY_WINDOW_MS = 5 * 60_000;
/** How far ahead of the server's clock a sender's may be. */
export const DELIVERY_SKEW_MS = 30_000;

export interface DeliveryHeaders {
  /** `X-Atelier-Signature: sha256=HEX`. */
  signature?: string;
  /** `X-Atelier-Timestamp`: Unix seconds when the sender signed it. */
  timestamp?: string;
  /** `X-Atelier-Delivery`: unique per delivery (a UUID); a retry is a new delivery. */
  delivery?: string;
}

const deliveryRe = /^[A-Za-z0-9._:-]{1,128}$/;

/** The signature a sender puts in `X-Atelier-Signature`. */
export function signDelivery(secret: string, timestamp: string, delivery: string, body: Buffer | string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${delivery}.`).update(body).digest('hex')}`;
}

/** Why a signed delivery is refused, or null when its signature, id and timestamp hold. */
export function signatureProblem(secret: string, body: Buffer, headers: DeliveryHeaders, now: number = Date.now()): string | null {
  const early = deliveryHeadersProblem(headers, now);
  if (early) return early;
  const { signature, timestamp, delivery } = headers as Required<DeliveryHeaders>;
  const expected = Buffer.from(signDelivery(secret, timestamp, delivery, body));
  const given = Buffer.from(signature);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return 'the signature does not match the timestamp, delivery id and body';
  return null;
}

/**
 * Why a signed delivery's headers alone are refused (missing, malformed or stale), or null: checked before its body
 * is read, so a sender without them makes the server read nothing.
 */
export function deliveryHeadersProblem(headers: DeliveryHeaders, now: number = Date.now()): string | null {
  const { signature, timestamp, delivery } = headers;
  if (!signature?.startsWith('sha256=')) return 'the X-Atelier-Signature header (sha256=HEX) is missing';
  if (!timestamp || !/^\d{1,12}$/.test(timestamp)) return 'the X-Atelier-Timestamp header (Unix seconds) is missing or not a number';
  if (!delivery || !deliveryRe.test(delivery)) return 'the X-Atelier-Delivery header (a unique id such as a UUID) is missing or malformed';
  return freshnessProblem(timestamp, now);
}

/** Why a delivery's timestamp is refused (stale, or ahead of the clock), or null. */
export function freshnessProblem(timestamp: string, now: number = Date.now()): string | null {
  const at = Number(timestamp) * 1000;
  if (!/^\d{1,12}$/.test(timestamp) || !Number.isFinite(at)) return 'the X-Atelier-Timestamp header (Unix seconds) is not a number';
  if (at < now - DELIVERY_WINDOW_MS) return `the timestamp is more than ${DELIVERY_WINDOW_MS / 60_000} minutes old (a stale or replayed delivery)`;
  if (at > now + DELIVERY_SKEW_MS) return `the timestamp is more than ${DELIVERY_SKEW_MS / 1000} s ahead of the server's clock`;
  return null;
}

/** Checks a delivery id's shape (for token-authenticated deliveries, which have no signature). */
export function checkDeliveryId(delivery: string | undefined): string {
  if (!delivery || !deliveryRe.test(delivery))
    throw badInput('Send an X-Atelier-Delivery header with a unique id per delivery (a UUID; letters, digits, ".", "_", ":" or "-", at most 128).');
  return delivery;
}

/**
 * Records a delivery as received by its sender, and throws CONFLICT when it was received before within the window.
 * Ids older than the window are forgotten here, so the table holds a window's worth of deliveries.
 */
export async function rememberDelivery(db: Db, identityId: string, delivery: string, now: number = Date.now()): Promise<void> {
  await db.delete(gitHookDeliveries).where(lt(gitHookDeliveries.receivedAt, new Date(now - DELIVERY_WINDOW_MS - DELIVERY_SKEW_MS)));
  const fresh = await db.insert(gitHookDeliveries).values({ identityId, deliveryId: delivery }).onConflictDoNothing().returning();
  if (!fresh.length)
    throw new AtelierError(
      'CONFLICT',
      `Delivery ${delivery} was already received; nothing was done again. To build again, send a new delivery (a new X-Atelier-Delivery id and timestamp, signed again).`,
    );
}
