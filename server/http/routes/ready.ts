// `GET /health/ready`: whether a load balancer should send this replica requests, where `GET /health` only says it is
// alive. Ready means: every part has started (migrations ran before any of them), the database answers, and the bus
// answers a JetStream request. A replica told to stop is unready at once, before its drain refuses requests. Not ready answers 503 with `{ "status": "unready", "reasons": [...] }`; a replica
// draining (SIGTERM) answers every request 503 from its drain (server/http/drain.ts), this one included.
import type { Db } from '../../db/client';
import type { Route } from '../router';

/** A probe unanswered this long counts as failed: a load balancer's probe has a deadline of its own. */
const PROBE_TIMEOUT_MS = 2000;

export interface ReadinessOptions {
  db: Db;
  /** Asks the bus something it must answer over its connection (the events consumer's progress). */
  probeBus: () => Promise<unknown>;
  /** Where the app is in its life: only `running` may be ready. */
  phase: () => 'starting' | 'running' | 'stopping';
}

const within = (work: Promise<unknown>, what: string): Promise<string | null> =>
  new Promise((resolve) => {
    const timer = setTimeout(() => resolve(`${what} did not answer within ${PROBE_TIMEOUT_MS / 1000} s`), PROBE_TIMEOUT_MS);
    work.then(
      () => resolve(null),
      (error: Error) => resolve(`${what} failed: ${error.message}`),
    );
    void work.finally(() => clearTimeout(timer)).catch(() => undefined);
  });

export function useReadinessCheck(options: ReadinessOptions): Route {
  return {
    name: 'ready',
    matches: (url) => url.pathname === '/health/ready',
    async handle(_req, res) {
      const phase = options.phase();
      const reasons =
        phase === 'running'
          ? (await Promise.all([within(options.db.execute('select 1' as never), 'the database'), within(options.probeBus(), 'the bus')])).filter(
              (r): r is string => r !== null,
            )
          : [phase === 'starting' ? 'starting: not every part of the control plane has started yet' : 'stopping: this replica is shutting down'];
      res
        .writeHead(reasons.length ? 503 : 200, { 'content-type': 'application/json', 'cache-control': 'no-store' })
        .end(JSON.stringify(reasons.length ? { status: 'unready', reasons } : { status: 'ready' }));
    },
  };
}
