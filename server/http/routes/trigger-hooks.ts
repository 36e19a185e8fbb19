// `POST /hooks/trigger/NAME`: fires an HTTP trigger. Authenticated by a bearer token whose holder may start the
// workflow's runs, or by an HMAC-SHA256 signature of `TIMESTAMP.DELIVERY.BODY` under the trigger's secret
// (X-Atelier-Signature: sha256=HEX, X-Atelier-Timestamp: Unix seconds, within 5 minutes; X-Atelier-Delivery:
// required when signed, optional with a token: the same id again is the same signal, so a replay starts nothing). Answers 202 with the signal id, and the run id once started.
// The body is read only for a sender the headers vouch for: a token is checked first (a dead one is refused with the
// body unread); a signature needs the body, so a signed delivery's headers must be present and fresh first, and the
// bodies of signed deliveries being read (not yet verified) hold at most UNSIGNED_BODIES_AT_ONCE × 1 MiB together.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { recordRefusal } from '../../audit/audit';
import { defineAbilityFor } from '../../auth/ability';
import { grantsOf } from '../../auth/grants';
import type { Db } from '../../db/client';
import type { Identity } from '../../db/tables/identities';
import { AtelierError, retryAfterHeader } from '../../errors';
import { freshnessProblem } from '../../modules/deliveries';
import { assertMayFire, firingOf, hookHeadersProblem, hookSignatureProblem, httpTrigger, receiveHook } from '../../triggers/hooks';
import { authenticated, type Session, tokenOf } from '../authenticate';
import { declaredLengthOver, firstHeader, jsonBody, readBodyWithin } from '../body';
import { peerOf } from '../peer';
import type { Route } from '../router';
import { createUploadBudget, uploadReservation } from '../upload-budget';

const HOOK_MAX_BYTES = 1024 * 1024;
const PREFIX = '/hooks/trigger/';
/** How long the answer waits for the dispatcher to start the run, so it can name it. */
const RUN_WAIT_MS = 2000;
/** Signed deliveries whose bodies (not yet verified) may be read at once, at the largest size; smaller ones more. */
export const UNSIGNED_BODIES_AT_ONCE = 4;
const SIGNED_HOW =
  "Send a bearer token, or sign TIMESTAMP.DELIVERY.BODY with HMAC-SHA256 under the trigger's secret (headers X-Atelier-Timestamp: Unix seconds, X-Atelier-Delivery: a new UUID per delivery, X-Atelier-Signature: sha256=HEX); see docs/triggers.md.";

export interface TriggerHookOptions {
  db: Db;
  /** The dispatcher to kick once the signal committed. */
  kick: () => void;
}

export function useTriggerHooks(options: TriggerHookOptions): Route {
  const { db } = options;
  // Per replica: what unverified signed bodies may hold together while they are read.
  const unverified = createUploadBudget(UNSIGNED_BODIES_AT_ONCE * HOOK_MAX_BYTES, 'signed trigger deliveries');

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const reply = (status: number, body: unknown, headers: Record<string, string> = {}) =>
      void res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
    const fail = (error: AtelierError) =>
      reply(error.status, { error: { code: error.code, message: error.message, details: error.details } }, retryAfterHeader(error));
    const url = new URL(req.url ?? '/', 'http://x');
    const name = decodeURIComponent(url.pathname.slice(PREFIX.length));
    if (req.method !== 'POST') return fail(new AtelierError('BAD_USER_INPUT', `POST a JSON payload to ${PREFIX}NAME.`));
    // Answered with the body unread: the connection is closed once the answer is out.
    const refuseUnread = (error: AtelierError) => {
      res.setHeader('connection', 'close'); // so a keep-alive client does not send its next request down it
      res.once('finish', () => req.destroy());
      return fail(error);
    };
    const tooLarge = () => refuseUnread(new AtelierError('PAYLOAD_TOO_LARGE', `A trigger payload is at most ${HOOK_MAX_BYTES} bytes.`));
    if (declaredLengthOver(req, HOOK_MAX_BYTES)) return tooLarge();
    const delivery = firstHeader(req.headers['x-atelier-delivery']);
    const timestamp = firstHeader(req.headers['x-atelier-timestamp']);
    const signature = firstHeader(req.headers['x-atelier-signature']);
    const credentials = { authorization: req.headers.authorization, peer: peerOf(req) };
    // Who sends it, from the headers alone, before a byte of the body is read.
    let session: Session | null = null;
    try {
      if (tokenOf(credentials)) {
        session = await authenticated(db, credentials);
        if (!session) throw new AtelierError('UNAUTHENTICATED', 'Refused: the bearer token is unknown, expired or revoked.');
      } else {
        const problem = hookHeadersProblem({ signature, timestamp, delivery });
        if (problem) throw new AtelierError('UNAUTHENTICATED', `Refused: ${problem}. ${SIGNED_HOW}`);
        res.once('close', unverified.reserve(uploadReservation(req.headers['content-length'], HOOK_MAX_BYTES)));
      }
    } catch (error) {
      if (!(error instanceof AtelierError)) throw error;
      return refuseUnread(error);
    }
    const body = await readBodyWithin(req, HOOK_MAX_BYTES).catch(() => null);
    if (!body) return tooLarge();
    let caller: Identity | null = null;
    try {
      const trigger = await httpTrigger(db, name);
      if (session) {
        const stale = timestamp === undefined ? null : freshnessProblem(timestamp);
        if (stale) throw new AtelierError('UNAUTHENTICATED', `Refused: ${stale}.`);
        caller = session.identity;
        if (!trigger) throw new AtelierError('NOT_FOUND', `No HTTP trigger "${name}".`);
        await assertMayFire(db, defineAbilityFor(session.identity, await grantsOf(db, session.identity), session.scopes), session.identity, trigger);
      } else {
        const problem = hookSignatureProblem(trigger, body, { signature, timestamp, delivery });
        if (problem) throw new AtelierError('UNAUTHENTICATED', `Refused: ${problem}. ${SIGNED_HOW}`);
      }
      const payload = body.length ? jsonBody(body, 'The trigger payload', 'The body is not JSON.') : {};
      const { signalId } = await receiveHook(db, trigger!, payload, delivery);
      options.kick();
      const deadline = Date.now() + RUN_WAIT_MS;
      let firing = await firingOf(db, trigger!.id, signalId);
      while ((!firing || firing.outcome === 'PENDING') && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 10));
        firing = await firingOf(db, trigger!.id, signalId);
      }
      reply(202, { signalId, outcome: firing?.outcome ?? 'PENDING', runId: firing?.runId ?? null, message: firing?.message ?? null });
    } catch (error) {
      if (!(error instanceof AtelierError)) throw error;
      if (error.code === 'FORBIDDEN' && caller) await recordRefusal(db, error);
      return fail(error);
    }
  };

  return { name: 'trigger-hooks', matches: (url) => url.pathname.startsWith(PREFIX) && url.pathname.length > PREFIX.length, handle };
}
