// `POST /api/observations`: services push observations with a bearer token (a service account's or a person's),
// as `{ "observations": [{ "target": { "kind": "ALIAS", "ref": "ml/churn@champion" }, "metric": "...", "value": 0.93,
// "at": "...", "dimensions": { ... } }] }`. The same write path as the `recordObservations` mutation
// (server/monitoring/observations.ts); answers `{ "recorded": N }` or `{ "error": { "code", "message" } }`.
import { recordRefusal } from '../../audit/audit';
import { defineAbilityFor } from '../../auth/ability';
import type { Db } from '../../db/client';
import { AtelierError, badInput, domainErrorOf } from '../../errors';
import { assertMayOperate } from '../../monitoring/access';
import { type ObservationInput, recordObservations } from '../../monitoring/observations';
import { authenticated } from '../authenticate';
import { declaredLengthOver, jsonBody, readBodyWithin } from '../body';
import { peerOf } from '../peer';
import type { Route } from '../router';

const PATH = '/api/observations';
/** 10,000 observations of a few hundred bytes each, with room to spare. */
const MAX_BODY_BYTES = 8 * 1024 * 1024;

export function useObservations(options: { db: Db }): Route {
  const { db } = options;
  return {
    name: 'observations',
    matches: (url) => url.pathname === PATH,
    async handle(req, res) {
      const json = (status: number, body: unknown) =>
        void res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(body));
      const fail = (status: number, code: string, message: string) => json(status, { error: { code, message } });
      if (req.method !== 'POST') return fail(405, 'METHOD_NOT_ALLOWED', `Use POST ${PATH} with a JSON body { "observations": [...] }.`);
      const session = await authenticated(db, { authorization: req.headers.authorization, peer: peerOf(req) });
      if (!session) return fail(401, 'UNAUTHENTICATED', 'Missing or unknown bearer token: send "Authorization: Bearer <token>".');
      const caller = { identity: session.identity, ability: defineAbilityFor(session.identity, session.grants, session.scopes) };
      try {
        const tooLarge = () => new AtelierError('PAYLOAD_TOO_LARGE', 'A request body is at most 8 MB: send smaller batches.');
        // Whether this token may write observations at all, before 8 MB of body is read and parsed for it.
        assertMayOperate(caller, 'observation.record');
        if (declaredLengthOver(req, MAX_BODY_BYTES)) throw tooLarge();
        const body = await readBodyWithin(req, MAX_BODY_BYTES);
        if (!body) throw tooLarge();
        const parsed = jsonBody(body, 'The request body', 'The request body is not JSON: send { "observations": [...] }.');
        const list = parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as { observations?: unknown }).observations : undefined;
        if (!Array.isArray(list)) throw badInput('The request body must be { "observations": [...] }.');
        return json(200, await recordObservations(db, caller, list as ObservationInput[]));
      } catch (error) {
        const known = domainErrorOf(error);
        if (!known) throw error;
        if (known.code === 'FORBIDDEN') await recordRefusal(db, known);
        return fail(known.status, known.code, known.message);
      }
    },
  };
}
