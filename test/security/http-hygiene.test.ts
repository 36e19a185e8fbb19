// HTTP hygiene of the real listening server (issue 22, item 9), over raw node:http requests and net sockets: CORS
// answers only the configured origins (default: same origin, so no CORS headers at all), an authenticated artifact
// download is never cached publicly, every response says nosniff (and no-referrer, no framing), and a malformed
// Host header answers 400 with a message, never an empty 500.
import { request } from 'node:http';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../harness/app';

let t: TestApp; // default: same origin only
let open: TestApp; // ATELIER_CORS_ORIGINS lists one trusted origin
let digest: string;
const TRUSTED = 'https://dash.example.test';
const EVIL = 'https://evil.example.test';

beforeAll(async () => {
  t = await startTestApp();
  open = await startTestApp({ ATELIER_CORS_ORIGINS: `${TRUSTED}, http://localhost:5173` });
  digest = (await t.publishFixture('echo')).digest;
}, 120_000);
afterAll(async () => {
  await t?.stop();
  await open?.stop();
});

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One request over node:http: headers exactly as given (no fetch-imposed CORS mode, no forbidden-header rules). */
function send(base: string, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}${path}`, { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Writes raw bytes on a socket and returns everything the server answers until it closes the connection. */
function raw(base: string, bytes: string): Promise<string> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    // Written, not ended: a client's half-close (FIN) makes Node's HTTP server abort a request still being answered
    // (httpAllowHalfOpen is off), and /health answers after a database round trip. Every request says Connection: close.
    const socket = connect(Number(port), hostname, () => socket.write(bytes));
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('end', () => resolve(Buffer.concat(chunks).toString('latin1')));
    socket.on('error', reject);
    socket.setTimeout(20_000, () => socket.destroy(new Error('no answer')));
  });
}

const gqlPost = (app: TestApp, origin: string) =>
  send(
    app.url,
    'POST',
    '/graphql',
    { origin, authorization: `Bearer ${app.app.adminToken}`, 'content-type': 'application/json' },
    JSON.stringify({ query: '{ viewer { name } }' }),
  );
const preflight = (app: TestApp, origin: string) =>
  send(app.url, 'OPTIONS', '/graphql', { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' });

describe('CORS', () => {
  it('by default answers no foreign origin: no Access-Control-Allow-Origin, no credentials, on a request or a preflight', async () => {
    for (const answer of [await gqlPost(t, EVIL), await preflight(t, EVIL)]) {
      expect(answer.headers['access-control-allow-origin']).toBeUndefined();
      expect(answer.headers['access-control-allow-credentials']).toBeUndefined();
    }
  });

  it('with ATELIER_CORS_ORIGINS, allows exactly the listed origins and never reflects another one', async () => {
    const trusted = await gqlPost(open, TRUSTED);
    expect(trusted.status).toBe(200);
    expect(trusted.headers['access-control-allow-origin']).toBe(TRUSTED);
    expect(String(trusted.headers.vary)).toMatch(/origin/i);
    const pre = await preflight(open, 'http://localhost:5173');
    expect(pre.headers['access-control-allow-origin']).toBe('http://localhost:5173');
    expect(String(pre.headers['access-control-allow-headers'])).toMatch(/authorization/i);
    for (const answer of [await gqlPost(open, EVIL), await preflight(open, EVIL), await gqlPost(open, 'null')]) {
      expect(answer.headers['access-control-allow-origin']).toBeUndefined();
      expect(answer.headers['access-control-allow-credentials']).toBeUndefined();
    }
  });

  it('refuses a malformed ATELIER_CORS_ORIGINS at start with a message', async () => {
    await expect(startTestApp({ ATELIER_CORS_ORIGINS: 'not a url' })).rejects.toThrow(/ATELIER_CORS_ORIGINS/);
  });
});

describe('artifact downloads', () => {
  it('serves an authenticated download as private, never public', async () => {
    const answer = await send(t.url, 'GET', `/artifacts/${digest}`, { authorization: `Bearer ${t.app.adminToken}` });
    expect(answer.status).toBe(200);
    expect(answer.headers['cache-control']).toMatch(/private/);
    expect(answer.headers['cache-control']).toMatch(/no-store/);
    expect(answer.headers['cache-control']).not.toMatch(/public/);
  });
});

describe('security headers on every response', () => {
  const paths: [string, string, Record<string, string>][] = [
    ['GET', '/health', {}],
    ['GET', '/nowhere/../x.js', {}],
    ['GET', `/artifacts/${'sha256:'}${'0'.repeat(64)}`, {}], // 401
    ['GET', `/artifacts/sha256:${'0'.repeat(64)}`, { auth: '1' }], // 404
    ['POST', '/graphql', { body: '1' }],
    ['GET', '/graphql?query=%7Bviewer%7Bname%7D%7D', { auth: '1' }],
    ['POST', '/hooks/git', {}],
    ['GET', '/', {}],
  ];
  for (const [method, path, opts] of paths) {
    it(`${method} ${path}${opts.auth ? ' (token)' : ''}: nosniff, no-referrer, no framing`, async () => {
      const headers: Record<string, string> = opts.auth ? { authorization: `Bearer ${t.app.adminToken}` } : {};
      if (opts.body) headers['content-type'] = 'application/json';
      const answer = await send(t.url, method, path, headers, opts.body ? JSON.stringify({ query: '{ viewer { name } }' }) : undefined);
      expect(answer.headers['x-content-type-options']).toBe('nosniff');
      expect(answer.headers['referrer-policy']).toBe('no-referrer');
      expect(answer.headers['x-frame-options']).toBe('DENY');
    });
  }
});

describe('a malformed Host header', () => {
  const hosts = ['a b', 'exa mple.com:80', 'host:99999999', '[::1', 'bad/path', 'user@host', '%zz'];
  for (const host of hosts) {
    it(`Host: ${host} answers 400 with a message on /graphql and elsewhere`, async () => {
      for (const path of ['/graphql?query=%7Bviewer%7Bname%7D%7D', '/health']) {
        const answer = await raw(t.url, `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
        const [head, body] = answer.split('\r\n\r\n');
        expect(head).toMatch(/^HTTP\/1\.1 400 /);
        expect(body ?? '').toMatch(/Host/);
      }
    });
  }

  it('a well-formed Host still answers', async () => {
    const answer = await raw(t.url, `GET /health HTTP/1.1\r\nHost: atelier.example.test:8080\r\nConnection: close\r\n\r\n`);
    expect(answer).toMatch(/^HTTP\/1\.1 200 /);
  });
});
