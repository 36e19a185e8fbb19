// `GET /metrics`: the control plane's own metrics in Prometheus' text format (server/metrics/). They name pools,
// executor kinds and counts of every team's work, so they answer the admin token and service tokens scoped
// `read:Metrics` only; `ATELIER_METRICS_PUBLIC=1` opens them for a scraper on a private network. Refusals answer JSON
// `{ "error": { "code", "message" } }` saying what to send, and a token refused is audited.
import { recordRefusal } from '../../audit/audit';
import { scopesAllow } from '../../auth/ability';
import { refusal } from '../../auth/refuse';
import type { Db } from '../../db/client';
import type { Instruments } from '../../metrics/instruments';
import { authenticated, type Session } from '../authenticate';
import { peerOf } from '../peer';
import type { Route } from '../router';

const PATH = '/metrics';

export interface MetricsRouteOptions {
  db: Db;
  instruments: Instruments;
  /** Answer without a token (ATELIER_METRICS_PUBLIC=1). */
  public: boolean;
}

/** Whether a session may read the metrics: an admin's token (unscoped, or scoped with read:Metrics), or a service token scoped read:Metrics. */
export const mayReadMetrics = (session: Session) =>
  !session.task &&
  ((session.identity.role === 'admin' && scopesAllow(session.scopes, 'read', 'Metrics')) ||
    (session.identity.kind === 'service' && session.scopes !== null && scopesAllow(session.scopes, 'read', 'Metrics')));

export function useMetrics(options: MetricsRouteOptions): Route {
  const { db, instruments } = options;
  return {
    name: 'metrics',
    matches: (url) => url.pathname === PATH,
    async handle(req, res) {
      const fail = (status: number, code: string, message: string) =>
        void res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify({ error: { code, message } }));
      if (req.method !== 'GET' && req.method !== 'HEAD') return fail(405, 'METHOD_NOT_ALLOWED', `Use GET ${PATH}.`);
      if (!options.public) {
        const session = await authenticated(db, { authorization: req.headers.authorization, peer: peerOf(req) });
        if (!session)
          return fail(
            401,
            'UNAUTHENTICATED',
            'Missing or unknown bearer token: send "Authorization: Bearer <token>" with a service token scoped read:Metrics (or the admin token); see README "Monitoring Atelier".',
          );
        if (!mayReadMetrics(session)) {
          const denied = refusal(
            {
              identity: session.identity,
              action: 'metrics.read',
              subject: 'Metrics',
              rule: 'the admin token and service tokens scoped read:Metrics read /metrics',
            },
            'This token may not read the metrics: use a service account token issued with the scope read:Metrics (or the admin token).',
          );
          await recordRefusal(db, denied);
          return fail(403, 'FORBIDDEN', denied.message);
        }
      }
      const text = await instruments.registry.metrics();
      res.writeHead(200, { 'content-type': instruments.registry.contentType, 'cache-control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : text);
    },
  };
}
