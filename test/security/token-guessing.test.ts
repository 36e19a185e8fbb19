// Guessing tokens: an address that presents too many unknown bearer tokens within a window is refused on every
// surface that takes a token (GraphQL over HTTP and SSE, graphql-ws, MLflow, artifacts, observations, trigger and git
// hooks) with 429 TOO_MANY_AUTH_FAILURES and Retry-After, a correct token from it included, before any lookup; other
// addresses are unaffected; and the failures are one audit record per address per window, with their count.
// The attacker connects from 127.0.0.2 (all of 127/8 is loopback), so the harness' own client (127.0.0.1) stays free.

import http from 'node:http';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { DEFAULT_TOKEN_FAILURE_LIMITS, sourceOf } from '../../server/auth/token-failures';
import { queryRows } from '../../server/db/client';
import { startTestApp, type TestApp } from '../harness/app';

const ATTACKER = '127.0.0.2';
const LIMIT = DEFAULT_TOKEN_FAILURE_LIMITS.limit;
let t: TestApp;
let adminToken = '';

interface Answer {
  status: number;
  retryAfter: string | undefined;
  body: string;
}

/** A request from `from` (a loopback address), its answer read whole. */
function send(from: string, path: string, options: { method?: string; token?: string; body?: string; headers?: Record<string, string> } = {}): Promise<Answer> {
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

/** The close code of a graphql-ws connection from `from` whose connection_init carries `token`. */
function wsCloseCode(from: string, token: string): Promise<number> {
  const socket = new WebSocket(t.url.replace(/^http/, 'ws') + '/graphql', 'graphql-transport-ws', { localAddress: from });
  return new Promise((resolve, reject) => {
    socket.on('open', () => socket.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${token}` } })));
    socket.on('close', (code) => resolve(code));
    socket.on('error', reject);
  });
}

beforeAll(async () => {
  t = await startTestApp();
  adminToken = t.app.adminToken;
}, 60_000);
afterAll(() => t?.stop());

describe('an address guessing tokens', () => {
  it('is answered 401 up to the limit, then 429 TOO_MANY_AUTH_FAILURES with Retry-After on every surface, a valid token too', async () => {
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

    // A correct token from the same address is refused alike: the answer never says a guess was right.
    const admin = await send(ATTACKER, '/graphql', { token: adminToken });
    expect(admin.status).toBe(429);

    const surfaces: Array<[string, Parameters<typeof send>[2]]> = [
      ['/graphql?query=subscription%7BallRunEvents%7B__typename%7D%7D', { method: 'GET', headers: { accept: 'text/event-stream' } }], // SSE
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
    expect(await wsCloseCode(ATTACKER, adminToken)).toBe(4429);
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

describe('sourceOf', () => {
  it('counts an IPv4-mapped peer as its IPv4 address, and an IPv6 peer by its /64', () => {
    expect(sourceOf('::ffff:10.1.2.3')).toBe('10.1.2.3');
    expect(sourceOf('2001:db8:0:12:aaaa::1')).toBe('2001:db8:0:12::/64');
    expect(sourceOf('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(sourceOf('::1')).toBe('0:0:0:0::/64');
    expect(sourceOf(undefined)).toBe('unknown');
  });
});
