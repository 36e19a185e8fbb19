// The signature every delivery carries: one implementation, in plugins/webhook-signature.ts (the `webhook` deployer
// signs its requests with it too, and plugins import nothing of server/). Receivers verify it (README "Webhooks" has a
// verifier), refuse stale timestamps and dedupe by id. This file adds what only the control plane needs: new secrets.
import { randomBytes } from 'node:crypto';

export { signWebhook, webhookHeaders } from '../../plugins/webhook-signature';

/** A new signing secret: `whsec_` and 32 random bytes (base64url); the HMAC key is the whole string. */
export const newWebhookSecret = () => `whsec_${randomBytes(32).toString('base64url')}`;
