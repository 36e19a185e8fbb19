// `GET /health`: whether the database answers, and which database and bus this replica runs on.
import type { Db } from '../../db/client';
import type { Route } from '../router';

export interface HealthCheckOptions {
  db: Db;
  database: 'pglite' | 'postgres';
  bus: 'memory' | 'jetstream';
}

export function useHealthCheck(options: HealthCheckOptions): Route {
  return {
    name: 'health',
    matches: (url) => url.pathname === '/health',
    async handle(_req, res) {
      const ok = await options.db.execute('select 1' as never).then(
        () => true,
        () => false,
      );
      res
        .writeHead(ok ? 200 : 503, { 'content-type': 'application/json' })
        .end(JSON.stringify({ status: ok ? 'ok' : 'degraded', database: options.database, bus: options.bus }));
    },
  };
}
