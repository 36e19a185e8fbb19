// The one implementation of Atelier's outgoing-request signature (Standard-Webhooks-like), shared by the control
// plane's webhooks (server/webhooks/) and the `webhook` deployer (plugins/deployers/webhook/): `Atelier-Signature:
// v1=HEX`, the HMAC-SHA256 under the secret of `ID.TIMESTAMP.BODY`, with the request's id in `Atelier-Webhook-Id` and
// Unix seconds in `Atelier-Webhook-Timestamp`. While a rotated-out secret is still in its overlap, the header carries
// one signature per secret, space-separated (the current one first), so a receiver still holding the old secret
// keeps verifying. Pure functions over node:crypto; it lives in plugins/ because plugins import nothing of server/.
import { createHmac, timingSafeEqual } from 'node:crypto';

/** How far a receiver lets a timestamp be off before it refuses the request as replayed (README "Webhooks"). */
export const SIGNATURE_TOLERANCE_S = 5 * 60;

export function signWebhook(secret: string, id: string, timestamp: number, body: string): string {
  return `v1=${createHmac('sha256', secret).update(`${id}.${timestamp}.${body}`).digest('hex')}`;
}

/** The headers of one request, signed under each of `secrets` (the current one first). */
export function webhookHeaders(
  secrets: readonly string[],
  id: string,
  body: string,
  now = Date.now(),
  userAgent = 'Atelier-Webhooks/1',
): Record<string, string> {
  const timestamp = Math.floor(now / 1000);
  return {
    'content-type': 'application/json',
    'user-agent': userAgent,
    'atelier-webhook-id': id,
    'atelier-webhook-timestamp': String(timestamp),
    'atelier-signature': secrets.map((secret) => signWebhook(secret, id, timestamp, body)).join(' '),
  };
}

/**
 * Checks a received request the way README "Webhooks" tells receivers to: any listed signature made with any of
 * `secrets` (compared in constant time), and a timestamp at most `SIGNATURE_TOLERANCE_S` off. Answers null when it
 * verifies, else why not (for a 401's message).
 */
export function webhookSignatureProblem(
  secrets: readonly string[],
  headers: Record<string, string | string[] | undefined>,
  body: string,
  now = Date.now(),
): string | null {
  const one = (name: string) => {
    const value = headers[name];
    return Array.isArray(value) ? value[0] : value;
  };
  const id = one('atelier-webhook-id');
  const timestamp = one('atelier-webhook-timestamp') ?? '';
  const given = (one('atelier-signature') ?? '').split(' ').filter(Boolean);
  if (!id || !/^\d+$/.test(timestamp) || given.length === 0)
    return 'not signed: Atelier-Webhook-Id, Atelier-Webhook-Timestamp and Atelier-Signature are required';
  if (Math.abs(now / 1000 - Number(timestamp)) > SIGNATURE_TOLERANCE_S)
    return `timestamp ${timestamp} is more than ${SIGNATURE_TOLERANCE_S} s off: a replayed or delayed request`;
  const matches = secrets.some((secret) => {
    const expected = Buffer.from(signWebhook(secret, id, Number(timestamp), body));
    return given.some((signature) => {
      const candidate = Buffer.from(signature);
      return candidate.length === expected.length && timingSafeEqual(candidate, expected);
    });
  });
  return matches ? null : 'the signature does not match any secret this service holds';
}
