// What an unauthenticated client can make the hooks read: a trigger or git hook checks a bearer token before it
// reads a byte of the body (a dead one is answered 401 with the body unsent), refuses a caller with neither a token
// nor a signed delivery's headers alike, and reads the bodies of signed deliveries (which only the body can verify)
// within a budget: four at the largest size at once, past which it answers 503 with Retry-After until one ends.
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../harness/app';
import { until } from '../triggers/world';

const MIB = 1024 * 1024;
let t: TestApp;

interface Answer {
  status: number;
  retryAfter: string | undefined;
  json: any;
}

/**
 * A POST whose headers declare `declared` bytes, of which only `body` is sent (none: the body is never sent). It
 * resolves when the server answers; `request` is the open request, to be destroyed by the caller when held.
 */
function post(path: string, headers: Record<string, string>, declared: number, body = ''): { answer: Promise<Answer>; request: http.ClientRequest } {
  const request = http.request(new URL(path, t.url), {
    method: 'POST',
    agent: false, // a connection of its own: the server closes one whose body it left unread
    headers: { 'content-type': 'application/json', 'content-length': String(declared), ...headers },
  });
  const answer = new Promise<Answer>((resolve, reject) => {
    request.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, retryAfter: res.headers['retry-after'], json: text ? JSON.parse(text) : null }));
      res.on('error', reject);
    });
    request.on('error', (error) => (request.destroyed ? undefined : reject(error)));
  });
  request.flushHeaders();
  if (body) request.write(body);
  if (body.length === declared) request.end();
  return { answer, request };
}

const signedHeaders = () => ({
  'x-atelier-signature': `sha256=${'0'.repeat(64)}`,
  'x-atelier-timestamp': String(Math.floor(Date.now() / 1000)),
  'x-atelier-delivery': randomUUID(),
});

beforeAll(async () => {
  t = await startTestApp({ ATELIER_GIT_HOOK_SECRET: 'a-shared-secret-0123456789' });
}, 60_000);
afterAll(() => t?.stop());

describe.each(['/hooks/trigger/anything', '/hooks/git'])('%s', (path) => {
  it('answers a dead token 401 before reading the body (the 1 MiB it declares is never sent)', async () => {
    const { answer, request } = post(path, { authorization: `Bearer atl_dead${'x'.repeat(30)}` }, MIB);
    const r = await answer;
    request.destroy();
    expect(r.status).toBe(401);
    expect(r.json.error.code).toBe('UNAUTHENTICATED');
  });

  it('answers a caller with neither a token nor a signed delivery’s headers 401 before reading the body', async () => {
    const { answer, request } = post(path, {}, MIB);
    const r = await answer;
    request.destroy();
    expect(r.status).toBe(401);
    expect(r.json.error.message).toMatch(/X-Atelier-Signature/);
  });

  it('reads unverified signed bodies four at the largest size at once; past that 503 with Retry-After, until one ends', async () => {
    // Four deliveries declare 1 MiB each and send nothing: the server holds room for them while it waits.
    const held = Array.from({ length: 4 }, () => post(path, signedHeaders(), MIB));
    const probe = () => post(path, signedHeaders(), 2, '{}').answer;
    const refused = await until('a fifth signed body refused while four are read', async () => {
      const r = await probe();
      return r.status === 503 ? r : null;
    });
    expect(refused.json.error.code).toBe('TOO_MANY_UPLOADS');
    expect(Number(refused.retryAfter)).toBeGreaterThan(0);
    for (const { request } of held) request.destroy();
    // Their room given back, a signed delivery is read again (and refused for its signature, which is wrong).
    const verified = await until('a signed body read once the held ones ended', async () => {
      const r = await probe();
      return r.status === 401 ? r : null;
    });
    expect(verified.json.error.message).toMatch(/signature does not match/);
  });
});
