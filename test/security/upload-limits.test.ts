// A file upload (multipart, the one body yoga streams rather than the route reading it whole) is held to
// ATELIER_MAX_UPLOAD_MB however it is sent: with a length or chunked without one, it is refused with the route's
// 413 PAYLOAD_TOO_LARGE as soon as it passes the limit, and nothing is published. yoga's own 25 MB limit used to
// decide instead: a chunked upload far past a smaller limit was held in memory whole before the resolver refused it,
// past 25 MB the answer was a 400 BAD_REQUEST, and a limit set above 25 MB could never be used.
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { moduleVersions } from '../../server/db/tables/modules';
import { startTestApp, type TestApp } from '../harness/app';
import { PUBLISH } from '../harness/client';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ ATELIER_MAX_UPLOAD_MB: '1' });
}, 60_000);
afterAll(async () => t?.stop());

/** A publish whose file has `size` bytes, sent with its length or chunked, over a raw HTTP request. */
function upload(app: TestApp, size: number, chunked: boolean): Promise<{ status: number; body: any }> {
  const boundary = 'upload-limits-boundary';
  const head = Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="operations"\r\n\r\n${JSON.stringify({ query: PUBLISH, variables: { artifact: null } })}\r\n` +
      `--${boundary}\r\nContent-Disposition: form-data; name="map"\r\n\r\n${JSON.stringify({ 0: ['variables.artifact'] })}\r\n` +
      `--${boundary}\r\nContent-Disposition: form-data; name="0"; filename="m.tar.gz"\r\nContent-Type: application/gzip\r\n\r\n`,
  );
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  const url = new URL(`${app.url}/graphql`);
  return new Promise((resolve) => {
    const req = request(
      {
        host: url.hostname,
        port: url.port,
        path: '/graphql',
        method: 'POST',
        headers: {
          authorization: `Bearer ${app.app.adminToken}`,
          'graphql-require-preflight': '1',
          'content-type': `multipart/form-data; boundary=${boundary}`,
          ...(chunked ? {} : { 'content-length': String(head.length + size + tail.length) }),
        },
      },
      (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(text) }));
      },
    );
    req.on('error', () => undefined); // the server may close the connection before all was sent
    req.write(head);
    const chunk = Buffer.alloc(64 * 1024, 1);
    let sent = 0;
    const more = () => {
      while (sent < size) {
        sent += chunk.length;
        if (!req.write(chunk)) return void req.once('drain', more);
      }
      req.end(tail);
    };
    more();
  });
}

const code = (r: { body: any }) => r.body.errors?.[0]?.extensions?.code;

describe('an upload past ATELIER_MAX_UPLOAD_MB', () => {
  it('is refused at the edge with 413 PAYLOAD_TOO_LARGE, chunked or not, and publishes nothing', async () => {
    for (const [size, chunked] of [
      [5 * 1024 * 1024, true],
      [30 * 1024 * 1024, true],
      [5 * 1024 * 1024, false],
    ] as const) {
      const r = await upload(t, size, chunked);
      expect([r.status, code(r)], `${size} bytes${chunked ? ', chunked' : ''}: ${JSON.stringify(r.body)}`).toEqual([413, 'PAYLOAD_TOO_LARGE']);
      expect(r.body.errors[0].message).toMatch(/^Request body too large \(limit \d+ bytes\)/);
    }
    expect(await t.app.services.db.select().from(moduleVersions)).toEqual([]);
    // and one within the limit is still published
    await t.publishFixture('echo');
    expect(await t.app.services.db.select().from(moduleVersions)).toHaveLength(1);
  });
});

it('an upload limit above 25 MB is the limit (yoga’s own default no longer decides)', async () => {
  const big = await startTestApp({ ATELIER_MAX_UPLOAD_MB: '64' });
  try {
    const r = await upload(big, 30 * 1024 * 1024, true);
    expect(r.status).not.toBe(413);
    expect(code(r)).not.toBe('PAYLOAD_TOO_LARGE');
    expect(code(r)).not.toBe('BAD_REQUEST'); // read whole: the archive itself is what is refused
  } finally {
    await big.stop();
  }
}, 120_000);
