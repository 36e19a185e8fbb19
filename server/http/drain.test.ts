import { createServer, request, type Server } from 'node:http';
import { type AddressInfo, connect, type Socket } from 'node:net';
import { afterEach, expect, it } from 'vitest';
import { createDrain } from './drain';

let server: Server | undefined;
afterEach(() => {
  server?.closeAllConnections();
  server?.close();
});

/** A server whose `/slow` answers once `release` is called, `/stream` opens an SSE stream, anything else answers at once. */
async function serve() {
  const drain = createDrain();
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let started!: () => void;
  const slowStarted = new Promise<void>((resolve) => (started = resolve));
  server = createServer(
    drain.listener((req, res) => {
      if (req.url === '/slow') {
        started();
        void released.then(() => res.end('slow done'));
      } else if (req.url === '/stream') {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write(': open\n\n');
      } else res.end('ok');
    }),
  );
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return { drain, release, slowStarted, port, server };
}

const get = (port: number, path: string) =>
  new Promise<{ status: number; body: string; headers: Record<string, unknown> }>((resolve, reject) => {
    request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.once('end', () => resolve({ status: res.statusCode!, body, headers: res.headers }));
      res.once('error', reject);
    })
      .once('error', reject)
      .end();
  });

/** Everything a raw socket receives until it closes. */
const received = (socket: Socket) =>
  new Promise<string>((resolve) => {
    let text = '';
    socket.on('data', (c: Buffer) => (text += c.toString()));
    socket.once('close', () => resolve(text));
  });

it('finishes the request in flight, ends live streams at once, and refuses new connections', async () => {
  const { drain, release, slowStarted, port, server } = await serve();
  const slow = get(port, '/slow');
  await slowStarted;
  const stream = connect(port, '127.0.0.1');
  const streamed = received(stream);
  const opened = new Promise<void>((resolve) => stream.once('data', () => resolve()));
  stream.write('GET /stream HTTP/1.1\r\nHost: x\r\n\r\n');
  await opened;

  const drained = drain.drain(server, 60_000);
  expect(await streamed).toMatch(/: open/); // ended without waiting for the slow request
  await expect(get(port, '/')).rejects.toThrow(/ECONNREFUSED/);
  release();
  expect(await slow).toMatchObject({ status: 200, body: 'slow done', headers: { connection: 'close' } });
  await drained;
});

it('drops what is still in flight once the grace has passed', async () => {
  const { drain, slowStarted, port, server } = await serve();
  const slow = get(port, '/slow');
  await slowStarted;
  await drain.drain(server, 50);
  await expect(slow).rejects.toThrow(/socket hang up|ECONNRESET/);
});
