// `POST /hooks/git`: a push event from CI or a git host builds and publishes a module version. Authenticated by
// a bearer token, or by an HMAC-SHA256 signature of `TIMESTAMP.DELIVERY.BODY` under the configured secret; every
// delivery has an id (X-Atelier-Delivery), remembered for the freshness window so a resent delivery is refused.
// The body is read only for a sender the headers vouch for: a token is checked first (a dead one refused with the
// body unread); a signed event's headers must be present and fresh first, and the bodies of signed events being read
// (not yet verified) hold at most UNSIGNED_BODIES_AT_ONCE × 1 MiB together.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ObjectStore } from '../../artifacts/store';
import { recordRefusal } from '../../audit/audit';
import { defineAbilityFor } from '../../auth/ability';
import { grantsOf } from '../../auth/grants';
import { refusal } from '../../auth/refuse';
import { ensureIdentity } from '../../auth/tokens';
import type { Db } from '../../db/client';
import type { Identity } from '../../db/tables/identities';
import { AtelierError, retryAfterHeader } from '../../errors';
import { checkDeliveryId, deliveryHeadersProblem, freshnessProblem, rememberDelivery, signatureProblem } from '../../modules/deliveries';
import { buildFromGit, parsePushEvent } from '../../modules/git-hook';
import type { OutboundAllow } from '../../net/outbound';
import { authenticated, tokenOf } from '../authenticate';
import { declaredLengthOver, firstHeader, jsonBody, readBodyWithin } from '../body';
import { peerOf } from '../peer';
import type { Route } from '../router';
import { createUploadBudget, uploadReservation } from '../upload-budget';
import { UNSIGNED_BODIES_AT_ONCE } from './trigger-hooks';

const GIT_HOOK_MAX_BYTES = 1024 * 1024;

export interface GitHookOptions {
  db: Db;
  store: ObjectStore;
  /** Shared secret for signed events (`X-Atelier-Signature`, `-Timestamp`, `-Delivery`); without it only tokens are accepted. */
  secret?: string;
  /** The service account signed events publish as. */
  account: string;
  /**
   * `allowed`: repositories an event may name (normalised, matched by whole path segments); `outboundAllow`: the
   * private ranges an unlisted one may be at (ATELIER_OUTBOUND_ALLOW_PRIVATE).
   */
  repositories: { allowed: string[]; outboundAllow: OutboundAllow };
  /** The most a module's files may hold. */
  maxUnpackedBytes?: number;
}

export function useGitHook(options: GitHookOptions): Route {
  const { db, store } = options;
  // Per replica: what unverified signed bodies may hold together while they are read.
  const unverified = createUploadBudget(UNSIGNED_BODIES_AT_ONCE * GIT_HOOK_MAX_BYTES, 'signed push events');

  type Sender = { identity: Identity; scopes: string[] | null; delivery: string };
  /**
   * Who sent the event, from its headers alone (before its body is read): a token's holder (with its scopes), a
   * signed event still to verify against its body (`'signed'`), or nobody (with why). A body-only signature
   * (GitHub's `X-Hub-Signature-256`) covers no timestamp or id: refused.
   */
  const sender = async (req: IncomingMessage): Promise<Sender | 'signed' | { refused: string }> => {
    const credentials = { authorization: req.headers.authorization, peer: peerOf(req) };
    const delivery = firstHeader(req.headers['x-atelier-delivery']);
    const timestamp = firstHeader(req.headers['x-atelier-timestamp']);
    if (tokenOf(credentials)) {
      const session = await authenticated(db, credentials);
      if (!session) return { refused: 'the bearer token is unknown, expired or revoked' };
      const stale = timestamp === undefined ? null : freshnessProblem(timestamp);
      if (stale) return { refused: stale };
      return { identity: session.identity, scopes: session.scopes, delivery: checkDeliveryId(delivery) };
    }
    if (!options.secret) return { refused: 'no credentials' };
    const problem = deliveryHeadersProblem({ signature: firstHeader(req.headers['x-atelier-signature']), timestamp, delivery });
    return problem ? { refused: problem } : 'signed';
  };

  /** The signed event's sender once its body is verified, or why not. */
  const signedSender = async (req: IncomingMessage, body: Buffer): Promise<Sender | { refused: string }> => {
    const delivery = firstHeader(req.headers['x-atelier-delivery'])!;
    const timestamp = firstHeader(req.headers['x-atelier-timestamp']);
    const problem = signatureProblem(options.secret!, body, { signature: firstHeader(req.headers['x-atelier-signature']), timestamp, delivery });
    if (problem) return { refused: problem };
    return { identity: await ensureIdentity(db, { name: options.account, kind: 'service', role: 'member' }), scopes: null, delivery };
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const reply = (status: number, body: unknown, headers: Record<string, string> = {}) =>
      void res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
    const fail = (error: AtelierError) =>
      reply(error.status, { error: { code: error.code, message: error.message, details: error.details } }, retryAfterHeader(error));
    if (req.method !== 'POST') return fail(new AtelierError('BAD_USER_INPUT', 'POST a push event as JSON to /hooks/git.'));
    const unauthenticated = (why: string) =>
      new AtelierError(
        'UNAUTHENTICATED',
        options.secret || tokenOf({ authorization: req.headers.authorization })
          ? `Refused: ${why}. Send a service token with an X-Atelier-Delivery id, or sign TIMESTAMP.DELIVERY.BODY with HMAC-SHA256 under ATELIER_GIT_HOOK_SECRET (headers X-Atelier-Timestamp: Unix seconds, X-Atelier-Delivery: a new UUID, X-Atelier-Signature: sha256=HEX); see the README's "From git (CI)".`
          : 'Send a service token (Authorization: Bearer …) with an X-Atelier-Delivery id; signed events need ATELIER_GIT_HOOK_SECRET set on the server.',
      );
    // Answered with the body unread: the connection is closed once the answer is out.
    const refuseUnread = (error: AtelierError) => {
      res.setHeader('connection', 'close'); // so a keep-alive client does not send its next request down it
      res.once('finish', () => req.destroy());
      return fail(error);
    };
    const tooLarge = () => refuseUnread(new AtelierError('PAYLOAD_TOO_LARGE', `A push event is at most ${GIT_HOOK_MAX_BYTES} bytes.`));
    if (declaredLengthOver(req, GIT_HOOK_MAX_BYTES)) return tooLarge();
    // Who sends it, from the headers alone, before a byte of the body is read.
    let known: Sender | 'signed';
    try {
      const from = await sender(req);
      if (typeof from === 'object' && 'refused' in from) throw unauthenticated(from.refused);
      if (from === 'signed') res.once('close', unverified.reserve(uploadReservation(req.headers['content-length'], GIT_HOOK_MAX_BYTES)));
      known = from;
    } catch (error) {
      if (!(error instanceof AtelierError)) throw error;
      return refuseUnread(error);
    }
    const body = await readBodyWithin(req, GIT_HOOK_MAX_BYTES).catch(() => null);
    if (!body) return tooLarge();
    let caller: Identity | null = null;
    try {
      const from = known === 'signed' ? await signedSender(req, body) : known;
      if ('refused' in from) return fail(unauthenticated(from.refused));
      const { identity, scopes, delivery } = from;
      caller = identity;
      const parsed = jsonBody(body, 'The push event', 'The body is not JSON.');
      const ability = defineAbilityFor(identity, await grantsOf(db, identity), scopes);
      if (!ability.can('publish', 'Module'))
        throw refusal(
          { identity, action: 'module.publish', subject: 'hook:git', rule: 'publishing needs "publish" on Module (a member role, and the token’s scopes)' },
          `${identity.name} may not publish modules.`,
        );
      const event = parsePushEvent(parsed);
      await rememberDelivery(db, identity.id, delivery);
      reply(
        200,
        await buildFromGit(
          {
            db,
            store,
            allowedRepositories: options.repositories.allowed,
            outboundAllow: options.repositories.outboundAllow,
            maxUnpackedBytes: options.maxUnpackedBytes,
          },
          ability,
          identity,
          event,
        ),
      );
    } catch (error) {
      if (!(error instanceof AtelierError)) throw error;
      // A refusal is audited before it is answered (its own record, or who was refused publishing what).
      if (error.code === 'FORBIDDEN' && caller)
        await recordRefusal(db, error, { identity: caller, action: 'module.publish', decision: 'deny', subject: 'hook:git', rule: error.message });
      return fail(error);
    }
  };

  return { name: 'git-hook', matches: (url) => url.pathname === '/hooks/git', handle };
}
