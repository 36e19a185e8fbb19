// How the `/graphql` route hands yoga's answers on (issue 21, S3's CPU): a whole result goes out in one write with its
// length, a streamed one (SSE) chunk by chunk as yoga yields it; the request's signal is aborted only for a client that
// went away before its answer was written. Real route, real HTTP server and client, yoga stood in for.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, expect, it } from 'vitest';
import type { ApiYoga } from '../yoga';
import { useGraphql } from './graphql';

let server: http.Server | undefined;

afterEach(async () => {
  await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
  server = undefined;
});

/** The route on a free port, answering with `answer`; every signal yoga was handed, in order. */
async function serve(answer: () => Response): Promise<{ url: string; signals: AbortSignal[] }> {
  const signals: AbortSignal[] = [];
  const yoga = {
    fetch: async (_url: string, init: RequestInit) => {
      signals.push(init.signal!);
      return answer();
    },
  } as unknown as ApiYoga;
  const route = useGraphql({ yoga, maxRequestBytes: 1 << 20, maxUploadBytes: 1 << 20 });
  server = http.createServer((req, res) => void route.handle(req, res, new URL(req.url ?? '/', 'http://localhost')));
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server!.address() as AddressInfo).port}/graphql`, signals };
}

/** A raw HTTP/1.1 POST: the status line and headers as sent, and the body. */
function post(url: string): Promise<{ headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => (body += chunk));
      res.on('end', () => resolve({ headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end('{"query":"{ __typename }"}');
  });
}

it('sends a whole result in one answer with its length in bytes, not chunked', async () => {
  const json = JSON.stringify({ data: { startRun: { id: 'r-1', note: 'ünïcødé ✓' } } });
  const { url, signals } = await serve(
    () => new Response(json, { status: 200, headers: { 'content-type': 'application/graphql-response+json; charset=utf-8' } }),
  );
  const { headers, body } = await post(url);
  expect(body).toBe(json);
  expect(headers['content-length']).toBe(String(Buffer.byteLength(json)));
  expect(headers['transfer-encoding']).toBeUndefined();
  expect(headers['content-type']).toBe('application/graphql-response+json; charset=utf-8');
  // Answered in full: nothing to cancel, so the request's signal stays as it was.
  await new Promise((resolve) => setTimeout(resolve, 50));
  expect(signals[0]!.aborted).toBe(false);
});

it('streams an SSE answer as yoga yields it, and aborts the request when its client goes away', async () => {
  let push!: (text: string) => void;
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      push = (text) => controller.enqueue(new TextEncoder().encode(text));
    },
  });
  const { url, signals } = await serve(() => new Response(stream, { status: 200, headers: { 'content-type': 'text/event-stream' } }));
  const first = await new Promise<{ res: http.IncomingMessage; chunk: string; req: http.ClientRequest }>((resolve, reject) => {
    const req = http.request(url, { method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
      res.setEncoding('utf8');
      res.once('data', (chunk: string) => resolve({ res, chunk, req }));
    });
    req.on('error', () => undefined);
    req.end('{"query":"subscription { allRunEvents { __typename } }"}');
    setTimeout(() => push('event: next\ndata: {"data":{}}\n\n'), 10);
    setTimeout(() => reject(new Error('no event while the stream stayed open')), 5_000);
  });
  expect(first.chunk).toBe('event: next\ndata: {"data":{}}\n\n');
  expect(first.res.headers['transfer-encoding']).toBe('chunked');
  expect(signals[0]!.aborted).toBe(false);
  first.req.destroy(); // the client goes away mid-stream
  await expect.poll(() => signals[0]!.aborted).toBe(true);
});
