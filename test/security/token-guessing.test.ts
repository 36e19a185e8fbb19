// Guessing tokens: an address that presents too many unknown bearer tokens within a window has its dead tokens
// refused on every surface that takes a token (GraphQL over HTTP and SSE, graphql-ws, MLflow, artifacts,
// observations, trigger and git hooks) with 429 TOO_MANY_AUTH_FAILURES and Retry-After; a live minted token from it
// still passes, the operator's chosen ATELIER_ADMIN_TOKEN does not; other addresses are unaffected; and the failures
// are one audit record per address per window, with their count. The address is the request's peer as
// server/http/peer.ts resolves it: behind a trusted proxy, the client it names in X-Forwarded-For.
// The attacker connects from 127.0.0.2 (all of 127/8 is loopback), so the harness' own client (127.0.0.1) stays free;
// the trusted proxy connects from 127.0.0.3, an untrusted peer that forges X-Forwarded-For from 127.0.0.4.

import http from 'node:http';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { DEFAULT_TOKEN_FAILURE_LIMITS, sourceOf } from '../../server/auth/token-failures';
import { queryRows } from '../../server/db/client';
import { startTestApp, type TestApp } from '../harness/app';

const ATTACKER = '127.0.0.2';
const PROXY = '127.0.0.3';
const FORGER = '127.0.0.4';
/** Two clients behind the one trusted proxy. */
const CLIENT_A = '203.0.113.5';
const CLIENT_B = '203.0.113.6';
const LIMIT = DEFAULT_TOKEN_FAILURE_LIMITS.limit;
/** A secret the operator chose (ATELIER_ADMIN_TOKEN), not one the control plane minted. */
const CHOSEN_ADMIN_TOKEN = 'our-admin-token-for-automation-2026';
let t: TestApp;
let adminToken = '';
/** A token the control plane minted (a user's). */
let minted = '';

interface Answer {
  status: number;
  retryAfter: string | undefined;
  body: string;
}

/** A request from `from` (a loopback address), its answer read whole. */
function send(
  from: string,
  path: string,
  options: { method?: string; token?: string; body?: string; headers?: Record<string, string>; headersOnly?: boolean } = {},
): Promise<Answer> {
  const url = new URL(path, t.url);
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      {
        method: options.method ?? 'POST',
        localAddress: from,
        agent: false, // a connection of its own: a hook closes one whose body it left unread
        headers: {
          'content-type': 'application/json',
          ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
          ...options.headers,
        },
      },
      (res) => {
        // A stream (an SSE subscription that was let in) never ends: its status is the answer.
        if (options.headersOnly && res.statusCode === 200) return void (resolve({ status: 200, retryAfter: undefined, body: '' }), res.destroy());
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode!, retryAfter: res.headers['retry-after'], body }));
      },
    );
    req.on('error', reject);
    req.end(options.body ?? (options.method === 'GET' ? undefined : '{"query":"{ viewer { name } }"}'));
  });
}

const guess = (i: number) => `atl_guess${i}${'x'.repeat(20)}`;

const failureRecords = async (source: string) =>
  queryRows<{ details: { failures: number; windowSeconds: number } }>(
    t.app.services.db,
    sql`select details from audit_events where action = 'auth.token' and decision = 'deny' and subject = ${`source:${source}`}`,
  );

/**
 * What a graphql-ws connection from `from` whose connection_init carries `token` comes to: 'ack' when it is let in,
 * else its close code.
 */
function wsOutcome(from: string, token: string, forwardedFor?: string): Promise<number | 'ack'> {
  const headers = forwardedFor ? { 'x-forwarded-for': forwardedFor } : undefined;
  const socket = new WebSocket(t.url.replace(/^http/, 'ws') + '/graphql', 'graphql-transport-ws', { localAddress: from, headers });
  return new Promise((resolve, reject) => {
    socket.on('open', () => socket.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${token}` } })));
    socket.on('message', (data) => {
      if (JSON.parse(String(data)).type === 'connection_ack') resolve('ack');
      socket.close();
    });
    socket.on('close', (code) => resolve(code));
    socket.on('error', reject);
  });
}

const SSE: [string, Parameters<typeof send>[2]] = [
  '/graphql?query=subscription%7BallRunEvents%7B__typename%7D%7D',
  { method: 'GET', headers: { accept: 'text/event-stream' }, headersOnly: true },
];

beforeAll(async () => {
  t = await startTestApp({ ATELIER_ADMIN_TOKEN: CHOSEN_ADMIN_TOKEN, ATELIER_TRUSTED_PROXIES: `${PROXY},192.0.2.0/24` });
  adminToken = t.app.adminToken;
  minted = (await t.user('alice')).token;
}, 60_000);
afterAll(() => t?.stop());

describe('an address guessing tokens', () => {
  it('is answered 401 up to the limit, then 429 TOO_MANY_AUTH_FAILURES with Retry-After on every surface for a dead token', async () => {
    for (let i = 0; i < LIMIT; i++) {
      const r = await send(ATTACKER, '/graphql', { token: guess(i) });
      expect(r.status).toBe(401);
    }
    const locked = await send(ATTACKER, '/graphql', { token: guess(LIMIT) });
    expect(locked.status).toBe(429);
    expect(Number(locked.retryAfter)).toBeGreaterThan(0);
    expect(Number(locked.retryAfter)).toBeLessThanOrEqual(DEFAULT_TOKEN_FAILURE_LIMITS.windowMs / 1000);
    expect(JSON.parse(locked.body).errors[0].extensions.code).toBe('TOO_MANY_AUTH_FAILURES');
    expect(JSON.parse(locked.body).errors[0].message).toMatch(/retry in \d+ s/);

    // The operator's chosen admin token is refused alike: the answer never says a guess of it was right.
    expect(adminToken).toBe(CHOSEN_ADMIN_TOKEN);
    const admin = await send(ATTACKER, '/graphql', { token: adminToken });
    expect(admin.status).toBe(429);
    expect(JSON.parse(admin.body).errors[0].extensions.code).toBe('TOO_MANY_AUTH_FAILURES');

    const surfaces: Array<[string, Parameters<typeof send>[2]]> = [
      SSE,
      ['/api/2.0/mlflow/experiments/search', { body: '{}' }],
      ['/api/2.0/mlflow-artifacts/artifacts/x/y', { method: 'GET' }],
      [`/artifacts/sha256:${'0'.repeat(64)}`, { method: 'GET' }],
      ['/api/observations', { body: '{"observations":[]}' }],
      ['/hooks/trigger/anything', { body: '{}' }],
      ['/hooks/git', { body: '{}' }],
    ];
    for (const [path, options] of surfaces) {
      for (const token of [guess(99), adminToken]) {
        const r = await send(ATTACKER, path, { ...options, token });
        expect({ path, status: r.status, retryAfter: Number(r.retryAfter) > 0 }).toEqual({ path, status: 429, retryAfter: true });
        expect(r.body).toContain(path.startsWith('/api/2.0') ? 'REQUEST_LIMIT_EXCEEDED' : 'TOO_MANY_AUTH_FAILURES');
      }
    }
    expect(await wsOutcome(ATTACKER, guess(98))).toBe(4429);
    expect(await wsOutcome(ATTACKER, adminToken)).toBe(4429);
  });

  it('still lets a live token the control plane minted through, on every surface', async () => {
    const viewer = await send(ATTACKER, '/graphql', { token: minted });
    expect(viewer.status).toBe(200);
    expect(JSON.parse(viewer.body)).toEqual({ data: { viewer: { name: 'alice' } } });
    expect((await send(ATTACKER, SSE[0], { ...SSE[1], token: minted })).status).toBe(200);
    expect((await send(ATTACKER, '/api/2.0/mlflow/experiments/search', { body: '{}', token: minted })).status).toBe(200);
    expect((await send(ATTACKER, `/artifacts/sha256:${'0'.repeat(64)}`, { method: 'GET', token: minted })).status).toBe(404);
    expect(await wsOutcome(ATTACKER, minted)).toBe('ack');
    // And a dead token after it is refused still: passing a live one resets nothing.
    expect((await send(ATTACKER, '/graphql', { token: guess(97) })).status).toBe(429);
  });

  it('leaves other addresses alone', async () => {
    expect((await send('127.0.0.1', '/graphql', { token: adminToken })).status).toBe(200);
    expect(await t.api.gql(`{ viewer { name } }`)).toEqual({ viewer: { name: 'admin' } });
  });

  it('is audited as one record for the window, whose count grows with the tries (refused ones included)', async () => {
    const records = await failureRecords(ATTACKER);
    expect(records).toHaveLength(1);
    expect(records[0]!.details.windowSeconds).toBe(DEFAULT_TOKEN_FAILURE_LIMITS.windowMs / 1000);
    // Rewritten at the limit and at each doubling past it: at least the limit, never more than were sent.
    expect(records[0]!.details.failures).toBeGreaterThanOrEqual(LIMIT);
    expect(records[0]!.details.failures).toBeLessThanOrEqual(LIMIT + 1 + 1 + 2 * 7 + 1);
  });
});

describe('behind a trusted reverse proxy', () => {
  const via = (client: string, token: string) => send(PROXY, '/graphql', { token, headers: { 'x-forwarded-for': `${client}, 192.0.2.7` } });

  it('locks out one forwarded client without locking out another forwarded through the same proxy', async () => {
    for (let i = 0; i < LIMIT; i++) expect((await via(CLIENT_A, guess(i))).status).toBe(401);
    expect((await via(CLIENT_A, guess(LIMIT))).status).toBe(429);
    expect((await via(CLIENT_B, guess(0))).status).toBe(401);
    expect((await via(CLIENT_B, adminToken)).status).toBe(200);
    // The proxy itself, and a client that wrote an X-Forwarded-For of its own before the proxy appended its address,
    // count apart from client A: the left-most address is the client's to write.
    expect((await send(PROXY, '/graphql', { token: guess(1) })).status).toBe(401);
    expect((await send(PROXY, '/graphql', { token: guess(2), headers: { 'x-forwarded-for': `${CLIENT_A}, ${CLIENT_B}` } })).status).toBe(401);
    expect((await failureRecords(CLIENT_A))[0]!.details.failures).toBeGreaterThanOrEqual(LIMIT);
    expect(await failureRecords(CLIENT_B)).toHaveLength(1);
    expect(await failureRecords(PROXY)).toHaveLength(1);
  });

  it('counts graphql-ws and SSE under the same forwarded client as GraphQL over HTTP', async () => {
    const forwarded = (client: string) => ({ 'x-forwarded-for': client });
    expect(await wsOutcome(PROXY, guess(50), CLIENT_A)).toBe(4429);
    expect(await wsOutcome(PROXY, guess(51), CLIENT_B)).toBe(4403);
    expect(await wsOutcome(PROXY, minted, CLIENT_A)).toBe('ack');
    expect((await send(PROXY, SSE[0], { ...SSE[1], token: guess(52), headers: { ...SSE[1]!.headers, ...forwarded(CLIENT_A) } })).status).toBe(429);
    expect((await send(PROXY, SSE[0], { ...SSE[1], token: guess(53), headers: { ...SSE[1]!.headers, ...forwarded(CLIENT_B) } })).status).toBe(401);
  });

  it('ignores the X-Forwarded-For of a peer that is not a trusted proxy: rotating it does not dodge the throttle', async () => {
    for (let i = 0; i < LIMIT; i++) {
      const r = await send(FORGER, '/graphql', { token: guess(i), headers: { 'x-forwarded-for': `198.51.100.${i}` } });
      expect(r.status).toBe(401);
    }
    const locked = await send(FORGER, '/graphql', { token: guess(LIMIT), headers: { 'x-forwarded-for': '198.51.100.250' } });
    expect(locked.status).toBe(429);
    expect(await wsOutcome(FORGER, guess(99), '198.51.100.251')).toBe(4429);
    expect(await failureRecords(FORGER)).toHaveLength(1);
    expect(await failureRecords('198.51.100.0')).toHaveLength(0);
  });
});

describe('a chosen admin token presented to a replica that did not set it', () => {
  // A rotation under way: this replica restarted with a new ATELIER_ADMIN_TOKEN while clients still use the old one,
  // which another replica set. Both were chosen by a person; the origin is stored with the token, so every replica
  // throttles both (it once knew only the one of its own configuration, and let the other through a lockout).
  const ROTATED = 'our-rotated-admin-token-for-automation-2026';
  const GUESSER = '127.0.0.5';
  let replica: TestApp | undefined;
  afterAll(() => replica?.stop());

  // A second replica needs Postgres (the embedded database is one process's).
  it.runIf(!process.env.ATELIER_TEST_DATABASE?.includes('embedded'))(
    'refuses both chosen tokens from a locked-out address, and lets a minted one through',
    async () => {
      replica = await startTestApp({ DATABASE_URL: t.databaseUrl!, ATELIER_ADMIN_TOKEN: ROTATED, ATELIER_OBJECTS_DIR: `${t.dataDir}/objects` });
      const other = t;
      t = replica; // `send` talks to `t`
      try {
        expect((await send(GUESSER, '/graphql', { token: CHOSEN_ADMIN_TOKEN })).status).toBe(200);
        for (let i = 0; i < LIMIT; i++) expect((await send(GUESSER, '/graphql', { token: guess(i) })).status).toBe(401);
        for (const token of [ROTATED, CHOSEN_ADMIN_TOKEN]) {
          const r = await send(GUESSER, '/graphql', { token });
          expect({ status: r.status, code: JSON.parse(r.body).errors?.[0]?.extensions?.code }).toEqual({ status: 429, code: 'TOO_MANY_AUTH_FAILURES' });
        }
        expect(await wsOutcome(GUESSER, CHOSEN_ADMIN_TOKEN)).toBe(4429);
        expect((await send(GUESSER, '/graphql', { token: minted })).status).toBe(200);
      } finally {
        t = other;
      }
    },
    60_000,
  );
});

describe('sourceOf', () => {
  it('counts an IPv4-mapped peer as its IPv4 address, and an IPv6 peer by its /64', () => {
    expect(sourceOf('::ffff:10.1.2.3')).toBe('10.1.2.3');
    expect(sourceOf('2001:db8:0:12:aaaa::1')).toBe('2001:db8:0:12::/64');
    expect(sourceOf('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(sourceOf('::1')).toBe('0:0:0:0::/64');
    expect(sourceOf(undefined)).toBe('unknown');
  });
});
