// `POST /hooks/git`: a push event from CI or a git host builds and publishes a module version. Authenticated by
// a bearer token, or by an HMAC-SHA256 signature of the body under the configured secret.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ObjectStore } from '../../artifacts/store';
import { defineAbilityFor } from '../../auth/ability';
import { grantsOf } from '../../auth/grants';
import { ensureIdentity } from '../../auth/tokens';
import type { Db } from '../../db/client';
import type { Identity } from '../../db/tables/identities';
import { AtelierError } from '../../errors';
import { assertWithinInputLimits } from '../../errors/input-limits';
import { buildFromGit, parsePushEvent, verifySignature } from '../../modules/git-hook';
import { authenticated, tokenOf } from '../authenticate';
import { declaredLengthOver, firstHeader, readBodyWithin } from '../body';
import type { Route } from '../router';

const GIT_HOOK_MAX_BYTES = 1024 * 1024;

export interface GitHookOptions {
  db: Db;
  store: ObjectStore;
  /** Shared secret for signed events (`X-Atelier-Signature: sha256=…`); without it only tokens are accepted. */
  secret?: string;
  /** The service account signed events publish as. */
  account: string;
  /** Repositories an event may name (prefixes). */
  allowedRepositories: string[];
  /** The most a module's files may hold. */
  maxUnpackedBytes?: number;
}

export function useGitHook(options: GitHookOptions): Route {
  const { db, store } = options;

  /** Who sent the event: a token's holder (with its scopes), the hook's service account for a good signature, or nobody. */
  const sender = async (req: IncomingMessage, body: Buffer): Promise<{ identity: Identity; scopes: string[] | null } | null> => {
    const credentials = { authorization: req.headers.authorization };
    if (tokenOf(credentials)) return authenticated(db, credentials);
    const signature = firstHeader(req.headers['x-atelier-signature']) ?? firstHeader(req.headers['x-hub-signature-256']);
    if (!signature || !options.secret || !verifySignature(options.secret, body, signature)) return null;
    return { identity: await ensureIdentity(db, { name: options.account, kind: 'service', role: 'member' }), scopes: null };
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const reply = (status: number, body: unknown) => void res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    const fail = (error: AtelierError) => reply(error.status, { error: { code: error.code, message: error.message, details: error.details } });
    if (req.method !== 'POST') return fail(new AtelierError('BAD_USER_INPUT', 'POST a push event as JSON to /hooks/git.'));
    const body = declaredLengthOver(req, GIT_HOOK_MAX_BYTES) ? null : await readBodyWithin(req, GIT_HOOK_MAX_BYTES).catch(() => null);
    if (!body) {
      res.once('finish', () => req.destroy());
      return fail(new AtelierError('PAYLOAD_TOO_LARGE', `A push event is at most ${GIT_HOOK_MAX_BYTES} bytes.`));
    }
    const from = await sender(req, body);
    if (!from) {
      return fail(
        new AtelierError(
          'UNAUTHENTICATED',
          options.secret || tokenOf({ authorization: req.headers.authorization })
            ? 'The bearer token or the body signature is missing or wrong: sign the exact body with HMAC-SHA256 under ATELIER_GIT_HOOK_SECRET (X-Atelier-Signature: sha256=HEX), or send a service token.'
            : 'Send a service token (Authorization: Bearer …); signed events need ATELIER_GIT_HOOK_SECRET set on the server.',
        ),
      );
    }
    const { identity, scopes } = from;
    try {
      let parsed: unknown;
      try {
        parsed = JSON.parse(body.toString('utf8'));
      } catch {
        throw new AtelierError('BAD_USER_INPUT', 'The body is not JSON.');
      }
      assertWithinInputLimits(parsed, 'The push event');
      const ability = defineAbilityFor(identity, await grantsOf(db, identity), scopes);
      if (!ability.can('publish', 'Module')) throw new AtelierError('FORBIDDEN', `${identity.name} may not publish modules.`);
      reply(
        200,
        await buildFromGit(
          { db, store, allowedRepositories: options.allowedRepositories, maxUnpackedBytes: options.maxUnpackedBytes },
          ability,
          identity,
          parsePushEvent(parsed),
        ),
      );
    } catch (error) {
      if (error instanceof AtelierError) return fail(error);
      throw error;
    }
  };

  return { name: 'git-hook', matches: (url) => url.pathname === '/hooks/git', handle };
}
