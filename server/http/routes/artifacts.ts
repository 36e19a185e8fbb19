// `GET /artifacts/<digest>`: module archives for executor hosts in other processes, behind the API's bearer tokens.
import type { ObjectStore } from '../../artifacts/store';
import type { Db } from '../../db/client';
import { AtelierError } from '../../errors';
import { authenticated } from '../authenticate';
import type { Route } from '../router';

const PREFIX = '/artifacts/';

export function useArtifacts(options: { db: Db; store: ObjectStore }): Route {
  return {
    name: 'artifacts',
    matches: (url) => url.pathname.startsWith(PREFIX),
    async handle(req, res, url) {
      const session = await authenticated(options.db, { authorization: req.headers.authorization });
      if (!session) return void res.writeHead(401, { 'content-type': 'text/plain' }).end('Missing or unknown bearer token.\n');
      try {
        const bytes = await options.store.get(decodeURIComponent(url.pathname.slice(PREFIX.length)));
        // A digest names its bytes for good.
        res
          .writeHead(200, { 'content-type': 'application/gzip', 'content-length': bytes.length, 'cache-control': 'public, max-age=31536000, immutable' })
          .end(bytes);
      } catch (error) {
        const status = error instanceof AtelierError && error.code === 'NOT_FOUND' ? 404 : 400;
        res.writeHead(status, { 'content-type': 'text/plain' }).end(`${(error as Error).message}\n`);
      }
    },
  };
}
