// `GET /artifacts/<digest>`: module archives and model files for executor hosts in other processes, behind the API's
// bearer tokens and their scopes. A module archive is served when the database knows the digest as a module
// version's archive and the token may read module versions (`read:ModuleVersion`, `read:*` or unscoped); a model
// file when a task's own token asks for a file of a model version pinned on that task, or any token may read that
// version's files (server/registry/model-files.ts). Objects of any other kind would need their own rule here.
// Forbidden and missing answer the same 404, and no answer names a server path; an object the database names that
// the store lacks (a restore's mismatched pair) says so, to a caller who may read it.

import { pipeline } from 'node:stream/promises';
import type { ObjectStore } from '../../artifacts/store';
import { audit } from '../../audit/audit';
import { defineAbilityFor } from '../../auth/ability';
import type { Db } from '../../db/client';
import { AtelierError } from '../../errors';
import { versionWithDigest } from '../../modules/queries';
import { mayReadModelFile } from '../../registry/model-files';
import { authenticated } from '../authenticate';
import { peerOf } from '../peer';
import type { Route } from '../router';

const PREFIX = '/artifacts/';
const digestRe = /^sha256:[0-9a-f]{64}$/;

export function useArtifacts(options: { db: Db; store: ObjectStore }): Route {
  return {
    name: 'artifacts',
    matches: (url) => url.pathname.startsWith(PREFIX),
    async handle(req, res, url) {
      const text = (status: number, body: string) => void res.writeHead(status, { 'content-type': 'text/plain' }).end(`${body}\n`);
      const session = await authenticated(options.db, { authorization: req.headers.authorization, peer: peerOf(req) });
      if (!session) return text(401, 'Missing or unknown bearer token.');
      let digest: string;
      try {
        digest = decodeURIComponent(url.pathname.slice(PREFIX.length));
      } catch {
        digest = '';
      }
      if (!digestRe.test(digest)) return text(400, 'Not a digest: ask for /artifacts/sha256:<64 hex digits>.');
      const unavailable = () =>
        text(
          404,
          'No such module archive or model file that this token may read: check the digest, and that the token may read module versions (read:ModuleVersion) or the model version.',
        );
      const version = await versionWithDigest(options.db, digest);
      const ability = defineAbilityFor(session.identity, session.grants, session.scopes);
      if (!version) {
        if (!(await mayReadModelFile(options.db, { ability, task: session.task }, digest))) return unavailable();
      } else if (!ability.can('read', 'ModuleVersion', 'digest')) {
        await audit(options.db, {
          identity: session.identity,
          action: 'artifact.read',
          decision: 'deny',
          subject: `artifact:${digest}`,
          rule: 'a module archive needs read on ModuleVersion (token scope read:ModuleVersion or read:*)',
          details: { scopes: session.scopes },
        });
        return unavailable();
      }
      let object: { size: number; body: import('node:stream').Readable };
      try {
        object = await options.store.stream(digest);
      } catch (error) {
        // The caller may read it and the database names it, yet the store lacks it: the store is older than the
        // database (restored from an earlier copy) or another one. Said plainly, to a reader who may know of it.
        if (error instanceof AtelierError && error.code === 'NOT_FOUND')
          return text(
            404,
            `The object store lacks this ${version ? 'module archive' : 'model file'}, which the database names: restore the store from the copy taken with the database's backup (README: Backups and restore)${version ? ', or publish it again' : ''}.`,
          );
        if (error instanceof AtelierError) return text(error.status, error.message);
        throw error;
      }
      // Streamed from whichever backend holds it. A digest names its bytes for good. A stream that fails midway
      // (the store went away, or the bytes do not match the digest) cuts the response short, and the client,
      // which checks the digest too, retries.
      // Only for this token's holder: no shared cache (a proxy, a CDN) may keep or serve it to anyone else.
      res.writeHead(200, {
        'content-type': version ? 'application/gzip' : 'application/octet-stream',
        'content-length': object.size,
        'cache-control': 'private, no-store',
      });
      await pipeline(object.body, res).catch(() => res.destroy());
    },
  };
}
