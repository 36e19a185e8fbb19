// The signature every delivery carries (Standard-Webhooks-like): `Atelier-Signature: v1=HEX`, the HMAC-SHA256 under the
// webhook's secret of `ID.TIMESTAMP.BODY`, with the event id in `Atelier-Webhook-Id` and Unix seconds in
// `Atelier-Webhook-Timestamp`. Receivers verify it (README "Webhooks" has a verifier), refuse stale timestamps and
// dedupe by id. While a rotated-out secret is still in its overlap, the header carries one signature per secret,
// space-separated (the current one first), so a receiver still holding the old secret keeps verifying.
import { createHmac, randomBytes } from 'node:crypto';

/** A new signing secret: `whsec_` and 32 random bytes (base64url); the HMAC key is the whole string. */
export const newWebhookSecret = () => `whsec_${randomBytes(32).toString('base64url')}`;

export function signWebhook(secret: string, id: string, timestamp: number, body: string): string {
  return `v1=${createHmac('sha256', secret).update(`${id}.${timestamp}.${body}`).digest('hex')}`;
}

/** The headers of one POST, signed under each of `secrets` (the current one first). */
export function webhookHeaders(secrets: readonly string[], id: string, body: string, now = Date.now()): Record<string, string> {
  const timestamp = Math.floor(now / 1000);
  return {
    'content-type': 'application/json',
    'user-agent': 'Atelier-Webhooks/1',
    'atelier-webhook-id': id,
    'atelier-webhook-timestamp': String(timestamp),
    'atelier-signature': secrets.map((secret) => signWebhook(secret, id, timestamp, body)).join(' '),
  };
}
