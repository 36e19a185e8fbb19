// A GraphQL request's token is looked up as the route hands the request to yoga, so the lookup's round trip overlaps
// yoga's parsing and validation (issue 21): the route passes the lookup on in yoga's server context, and yoga's
// context awaits that answer instead of asking again. The answer is the one check's (server/http/authenticate.ts): a
// missing or dead token is refused by the route, before yoga. Real route and embedded database, yoga stood in for.
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ensureIdentity, issueToken } from '../../server/auth/tokens';
import { type Database, openDatabase } from '../../server/db/client';
import { useGraphql } from '../../server/http/routes/graphql';
import type { ApiYoga } from '../../server/http/yoga';
import { seedEmbeddedDatabase } from '../harness/pglite-template';

let dataDir: string;
let database: Database;
let token: string;

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'atelier-request-session-'));
  await seedEmbeddedDatabase(dataDir);
  database = await openDatabase({ dataDir });
  const identity = await ensureIdentity(database.db, { name: 'early-bird', kind: 'service', role: 'viewer' });
  token = await issueToken(database.db, identity.id, 'probe');
}, 60_000);

afterAll(async () => {
  await database?.close();
  await rm(dataDir, { recursive: true, force: true });
});

it("hands yoga the session of the request's token, asked for before yoga is called", async () => {
  const handed: unknown[] = [];
  const yoga = {
    fetch: async (_url: string, _init: RequestInit, context: { session?: unknown }) => {
      handed.push(context.session);
      return new Response('{}', { status: 200, headers: { 'content-type': 'application/json' } });
    },
  } as unknown as ApiYoga;
  const route = useGraphql({ yoga, db: database.db, maxRequestBytes: 1 << 20, maxUploadBytes: 1 << 20 });
  const server = http.createServer((req, res) => void route.handle(req, res, new URL(req.url ?? '/', 'http://localhost')));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`;
  try {
    const post = (headers: Record<string, string>) =>
      fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: '{"query":"{ __typename }"}' }).then(async (r) => ({
        status: r.status,
        body: (await r.json()) as { errors?: { extensions: { code: string } }[] },
      }));
    await post({ authorization: `Bearer ${token}` });
    // No token, or a dead one: refused by the route itself (its body unread), never handed to yoga.
    for (const headers of [{}, { authorization: 'Bearer atl_not-a-token' }] as Record<string, string>[]) {
      const refused = await post(headers);
      expect([refused.status, refused.body.errors?.[0]?.extensions.code]).toEqual([401, 'UNAUTHENTICATED']);
    }
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
  expect(handed).toHaveLength(1);
  await expect(handed[0]).resolves.toMatchObject({ token, identity: { name: 'early-bird' }, scopes: null });
});
