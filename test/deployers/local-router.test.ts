// The local deployer's router process (plugins/deployers/local/router.mjs) on its own, between real sockets: a scripted
// model server that answers each request with the bytes a test gives it (every framing a model may use, split across
// writes), and raw clients that send what node's own client would not (pipelined requests, chunked bodies, 100-continue).
// Both of the router's paths are crossed: its fast path for plain requests and node:http for the rest of a connection.
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { freePort } from '../../plugins/deployers/local/processes';

const routerScript = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'plugins', 'deployers', 'local', 'router.mjs');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface ModelRequest {
  head: string;
  body: string;
}
type Part = string | Buffer | { wait: number } | 'close' | 'destroy';

/** A model server answering each request with `reply(request)`'s parts, written one by one. */
function scriptedModel() {
  const requests: ModelRequest[] = [];
  let connections = 0;
  let reply: (req: ModelRequest) => Part[] = () => ['HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok'];
  const server: Server = createServer((socket) => {
    connections++;
    let buf = '';
    let busy = Promise.resolve();
    socket.on('error', () => {});
    socket.on('data', (chunk) => {
      buf += chunk.toString('latin1');
      for (;;) {
        const headEnd = buf.indexOf('\r\n\r\n');
        if (headEnd < 0) return;
        const head = buf.slice(0, headEnd);
        let end: number;
        if (/\r\ntransfer-encoding: *chunked/i.test(head)) {
          end = buf.indexOf('\r\n0\r\n\r\n', headEnd);
          if (end < 0) return;
          end += 7;
        } else end = headEnd + 4 + Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
        if (buf.length < end) return;
        const req = { head, body: buf.slice(headEnd + 4, end) };
        buf = buf.slice(end);
        requests.push(req);
        const parts = reply(req);
        busy = busy.then(async () => {
          for (const part of parts) {
            if (part === 'close') socket.end();
            else if (part === 'destroy') socket.destroy();
            else if (typeof part === 'object' && 'wait' in part) await sleep(part.wait);
            else socket.write(part);
          }
        });
      }
    });
  });
  return {
    server,
    requests,
    connections: () => connections,
    answer: (f: typeof reply) => {
      reply = f;
    },
  };
}

/** A raw client connection: `send` bytes, `until` the text read so far matches. */
function rawClient(port: number) {
  const socket: Socket = connect(port, '127.0.0.1');
  let text = '';
  let closed = false;
  socket.on('data', (chunk) => {
    text += chunk.toString('latin1');
  });
  socket.on('close', () => {
    closed = true;
  });
  socket.on('error', () => {});
  return {
    send: (bytes: string) => socket.write(bytes),
    async until(done: (text: string, closed: boolean) => boolean, what: string): Promise<string> {
      const deadline = Date.now() + 5_000;
      while (!done(text, closed)) {
        if (Date.now() > deadline) throw new Error(`waited for ${what}; read ${JSON.stringify(text.slice(-400))} (closed: ${closed})`);
        await sleep(5);
      }
      return text;
    },
    closed: () => closed,
    close: () => socket.destroy(),
  };
}

const count = (text: string, s: string) => text.split(s).length - 1;

describe('the local deployer’s router', () => {
  let dir: string;
  let router: ChildProcess;
  let port: number;
  let deadPort: number;
  const model = scriptedModel();
  const other = scriptedModel();
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const routerKey = 'the-control-plane-s-key';
  const keyed = { 'x-atelier-router-key': routerKey };

  /** One request by node's client on a kept-alive connection. */
  const call = (options: { path?: string; method?: string; headers?: Record<string, string>; body?: string | Buffer } = {}) =>
    new Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }>((resolve, reject) => {
      const req = request(
        { host: '127.0.0.1', port, agent, method: options.method ?? 'POST', path: options.path ?? '/predict', headers: options.headers },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(options.body);
    });

  const setRoutes = async (targets: Record<string, number>) => {
    await writeFile(path.join(dir, 'routes.json'), JSON.stringify({ port, version: 1, split: { 1: 100 }, targets, key: routerKey }));
  };

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'atelier-router-'));
    await new Promise<void>((resolve) => model.server.listen(0, '127.0.0.1', resolve));
    await new Promise<void>((resolve) => other.server.listen(0, '127.0.0.1', resolve));
    [port, deadPort] = [await freePort(), await freePort()];
    const address = (s: Server) => (s.address() as { port: number }).port;
    await setRoutes({ 1: address(model.server), 2: address(other.server), 3: deadPort });
    router = spawn(process.execPath, [routerScript, path.join(dir, 'routes.json')], { stdio: ['ignore', 'inherit', 'inherit'] });
    for (;;) {
      const ok = await new Promise((resolve) =>
        connect(port, '127.0.0.1', function (this: Socket) {
          this.destroy();
          resolve(true);
        }).on('error', () => resolve(false)),
      );
      if (ok) break;
      await sleep(20);
    }
  });
  afterAll(async () => {
    agent.destroy();
    router.kill('SIGKILL');
    model.server.close();
    other.server.close();
    await rm(dir, { recursive: true, force: true });
  });
  beforeEach(() => {
    model.answer(() => ['HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok']);
  });

  it('passes a request on as it came and tags the answer; the model’s connection fields stay with it', async () => {
    model.answer(() => [
      'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nConnection: keep-alive, x-hop\r\nx-hop: 1\r\nKeep-Alive: timeout=30\r\ntransfer-encoding: chunked\r\n\r\n',
      '2\r\n{}\r\n0\r\n\r\n',
    ]);
    const seen = model.requests.length;
    const answer = await call({ headers: { 'content-type': 'application/json', 'X-Custom': 'a  b' }, body: '{"features":[1,2,3,4]}' });
    expect(answer.status).toBe(200);
    expect(answer.body.toString()).toBe('{}');
    expect(answer.headers['x-atelier-revision']).toBe('1');
    expect(answer.headers['content-type']).toBe('application/json');
    // The router's own keep-alive, not the model's: its clients are kept 5 s, whatever the model keeps the router.
    expect(answer.headers['keep-alive']).toBe('timeout=5');
    expect(answer.headers['x-hop'], 'a field the model named in Connection is the model’s own hop').toBeUndefined();
    expect(answer.headers.date, 'a Date, as node:http adds one when the model sends none').toMatch(/^\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT$/);
    const got = model.requests[seen]!;
    expect(got.head).toMatch(/^POST \/predict HTTP\/1\.1\r\n/);
    expect(got.head).toContain('\r\nX-Custom: a  b');
    expect(got.body).toBe('{"features":[1,2,3,4]}');
  });

  it('keeps one connection to the model for a client’s requests one after another', async () => {
    const before = model.connections();
    for (let i = 0; i < 5; i++) expect((await call({ body: `{"i":${i}}` })).body.toString()).toBe('ok');
    expect(model.connections() - before).toBeLessThanOrEqual(1);
  });

  it('sends a request naming a revision in x-atelier-pin-revision there', async () => {
    other.answer(() => ['HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nother']);
    const answer = await call({ headers: { 'x-atelier-pin-revision': '2' }, body: '{}' });
    expect([answer.headers['x-atelier-revision'], answer.body.toString()]).toEqual(['2', 'other']);
    expect((await call({ headers: { 'x-atelier-pin-revision': '9' }, body: '{}' })).headers['x-atelier-revision'], 'an unknown pin follows the split').toBe(
      '1',
    );
  });

  it('routes by the split a pin that names no revision of its own (constructor, __proto__), on either path, and lives on', async () => {
    for (const pin of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) {
      for (const framing of ['Content-Length: 2\r\n\r\n{}', 'Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n']) {
        const client = rawClient(port);
        try {
          client.send(`POST /predict HTTP/1.1\r\nHost: x\r\nx-atelier-pin-revision: ${pin}\r\n${framing}`);
          const text = await client.until((t) => t.endsWith('\r\n\r\nok'), `an answer pinned to ${pin}`);
          expect(text, pin).toContain('x-atelier-revision: 1\r\n');
        } finally {
          client.close();
        }
      }
    }
    expect(router.exitCode).toBeNull();
  });

  it('passes every framing a model may answer with, split anywhere, and the connection serves on after each', async () => {
    const framings: Array<[string, Part[], string]> = [
      ['length', ['HTTP/1.1 200 OK\r\ncontent-le', 'ngth: 11\r\n\r\nhello', { wait: 5 }, ' world'], '\r\n\r\nhello world'],
      [
        'chunked, extensions and trailers',
        ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=1\r\nhel', 'lo\r\n', '6\r', '\n world\r\n0\r\nx-t: 1\r\n', '\r\n'],
        '\r\n\r\n5;x=1\r\nhello\r\n6\r\n world\r\n0\r\nx-t: 1\r\n\r\n',
      ],
      ['1xx first', ['HTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi'], '\r\n\r\nhi'],
      ['204', ['HTTP/1.1 204 No Content\r\n\r\n'], 'Keep-Alive: timeout=5\r\n\r\n'],
    ];
    const client = rawClient(port);
    try {
      let read = 0;
      for (const [name, parts, end] of framings) {
        model.answer(() => parts);
        client.send('POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}');
        // Passed on as framed, up to its end and no further.
        const text = await client.until((t) => t.length > read && t.endsWith(end), name);
        expect(text.slice(read), name).toContain('x-atelier-revision: 1');
        read = text.length;
      }
      await sleep(20);
      expect(client.closed()).toBe(false);
      model.answer(() => ['HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nhead']);
      client.send('HEAD /predict HTTP/1.1\r\nHost: x\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\n\r\n');
      // HEAD's answer has no body, whatever content-length says: the model's next answer follows at once.
      const text = await client.until((t) => count(t.slice(read), 'HTTP/1.1 200') === 2, 'HEAD then GET, pipelined');
      expect(text.slice(read)).toMatch(/content-length: 4\r\n[\s\S]*\r\n\r\nHTTP\/1\.1 200 OK[\s\S]*\r\n\r\nhead$/);
    } finally {
      client.close();
    }
  });

  it('an answer the model ends by closing reaches the client whole', async () => {
    model.answer(() => ['HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nuntil', { wait: 5 }, ' close', 'close']);
    const answer = await call({ method: 'GET', path: '/stream' });
    expect([answer.status, answer.body.toString(), answer.headers['x-atelier-revision']]).toEqual([200, 'until close', '1']);
  });

  it('answers pipelined requests in order, a chunked one and a 100-continue one among them (node:http’s part)', async () => {
    model.answer((req) => [`HTTP/1.1 200 OK\r\ncontent-length: ${req.body.length + 2}\r\n\r\n<${req.body}>`]);
    const client = rawClient(port);
    try {
      client.send(
        'POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\none' +
          'POST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\ntwo\r\n0\r\n\r\n' +
          'POST /c HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nthree',
      );
      let text = await client.until((t) => t.includes('<three>'), 'three answers');
      expect(text.indexOf('<one>')).toBeLessThan(text.indexOf('two'));
      expect(text.indexOf('two')).toBeLessThan(text.indexOf('<three>'));
      client.send('POST /d HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n');
      text = await client.until((t) => t.includes('100 Continue'), '100 Continue');
      client.send('four');
      await client.until((t) => t.includes('<four>'), 'the answer after 100-continue');
    } finally {
      client.close();
    }
  });

  it('streams a large answer and a large upload through unchanged', async () => {
    const big = Buffer.alloc(4 << 20, 7);
    for (let i = 0; i < big.length; i += 4096) big[i] = i % 251;
    model.answer(() => {
      const parts: Part[] = ['HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n'];
      for (let i = 0; i < big.length; i += 1 << 20) parts.push(`100000\r\n`, big.subarray(i, i + (1 << 20)), '\r\n');
      return [...parts, '0\r\n\r\n'];
    });
    const down = await call({ method: 'GET', path: '/big' });
    const digest = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
    expect([down.body.length, digest(down.body)]).toEqual([big.length, digest(big)]);
    const up = big.subarray(0, 1 << 20).toString('latin1');
    model.answer((req) => [`HTTP/1.1 200 OK\r\ncontent-length: 64\r\n\r\n${digest(Buffer.from(req.body, 'latin1'))}`]);
    expect((await call({ body: Buffer.from(up, 'latin1') })).body.toString()).toBe(digest(Buffer.from(up, 'latin1')));
  });

  it('answers 502 naming the revision when it does not answer, and the client’s connection serves on', async () => {
    const client = rawClient(port);
    try {
      client.send('POST /predict HTTP/1.1\r\nHost: x\r\nx-atelier-pin-revision: 3\r\nContent-Length: 2\r\n\r\n{}');
      let text = await client.until((t) => t.includes('"}'), 'the 502');
      expect(text).toMatch(/^HTTP\/1\.1 502 [\s\S]*x-atelier-revision: 3\r\n[\s\S]*revision 3 did not answer: connect ECONNREFUSED/);
      for (const [what, parts] of [
        ['not HTTP', ['SSH-2.0-OpenSSH\r\n\r\n']],
        ['closed before answering', ['destroy']],
      ] as Array<[string, Part[]]>) {
        model.answer(() => parts);
        const read = text.length;
        client.send('POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}');
        text = await client.until((t) => t.slice(read).includes('"}'), what);
        expect(text.slice(read), what).toMatch(/^HTTP\/1\.1 502 [\s\S]*revision 1 did not answer/);
      }
      model.answer(() => ['HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok']);
      client.send('POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}');
      await client.until((t) => t.endsWith('\r\n\r\nok'), 'an answer after the 502s');
    } finally {
      client.close();
    }
  });

  it('answers 502 for a status it cannot pass on (a model’s "099"), on either path, and lives on', async () => {
    model.answer(() => ['HTTP/1.1 099 Odd\r\ncontent-length: 2\r\n\r\nok']);
    for (const framing of ['Content-Length: 2\r\n\r\n{}', 'Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n']) {
      const client = rawClient(port);
      try {
        client.send(`POST /predict HTTP/1.1\r\nHost: x\r\n${framing}`);
        const text = await client.until((t) => t.includes('"}'), `the 502 (${framing.split(':')[0]})`);
        expect(text).toMatch(/^HTTP\/1\.1 502 [\s\S]*revision 1 did not answer/);
      } finally {
        client.close();
      }
    }
    model.answer(() => ['HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok']);
    expect((await call()).status).toBe(200);
    expect(router.exitCode).toBeNull();
  });

  it('cuts the client’s connection when the model fails mid-answer, rather than end a spliced body', async () => {
    model.answer(() => ['HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial', { wait: 10 }, 'destroy']);
    const client = rawClient(port);
    client.send('POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}');
    const text = await client.until((_, closed) => closed, 'the cut');
    expect(text).toContain('partial');
    expect(text).not.toContain('502');
  });

  it('node:http’s part answers the same: the router’s connection fields, and a cut when the model fails mid-answer', async () => {
    const client = rawClient(port);
    try {
      // A chunked request: node:http reads this connection from here on.
      model.answer(() => ['HTTP/1.1 200 OK\r\nConnection: keep-alive, x-hop\r\nx-hop: 1\r\nKeep-Alive: timeout=30\r\ncontent-length: 2\r\n\r\nok']);
      client.send('POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n');
      const text = await client.until((t) => t.endsWith('\r\n\r\nok'), 'the answer');
      expect(text).toContain('x-atelier-revision: 1\r\n');
      expect(text).toContain('Keep-Alive: timeout=5\r\n');
      expect(text).not.toMatch(/timeout=30|x-hop/);
      model.answer(() => ['HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial', { wait: 10 }, 'destroy']);
      client.send('POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}');
      expect(await client.until((_, closed) => closed, 'the cut')).toMatch(/partial$/);
    } finally {
      client.close();
    }
  });

  it('a request whose framing could be read two ways goes to node:http, which refuses it: the model gets none of it', async () => {
    const ambiguous = {
      'two content-lengths': 'Content-Length: 2\r\nContent-Length: 40',
      'a space before the colon': 'Content-Length : 40',
      'a folded line': 'Content-Length: 2\r\n x: 40',
      'content-length and chunked': 'Content-Length: 40\r\nTransfer-Encoding: chunked',
      'a bare LF': 'Content-Length: 2\nX: 1',
      'a signed length': 'Content-Length: +2',
    };
    const before = model.requests.length;
    for (const [what, fields] of Object.entries(ambiguous)) {
      const client = rawClient(port);
      try {
        client.send(`POST /predict HTTP/1.1\r\nHost: x\r\n${fields}\r\n\r\n${'x'.repeat(40)}`); // whole, read either way
        expect(await client.until((t) => t.includes('\r\n\r\n'), what), what).toMatch(/^HTTP\/1\.1 400 /);
      } finally {
        client.close();
      }
    }
    expect(model.requests.length).toBe(before);
  });

  it('serves the router’s own routes path', async () => {
    const answer = await call({ method: 'GET', path: '/__atelier/routes', headers: keyed });
    expect(JSON.parse(answer.body.toString())).toEqual({ version: 1, split: { 1: 100 } });
  });

  it('answers its own paths (routes, stats) to no client without the routes’ key, on either path', async () => {
    // A deployment's clients reach the router's port: its revisions, split and traffic are the control plane's to read.
    for (const own of ['/__atelier/routes', '/__atelier/stats'])
      for (const headers of [{}, { 'x-atelier-router-key': 'guess' }, { 'x-atelier-router-key': '' }] as Record<string, string>[]) {
        const answer = await call({ method: 'GET', path: own, headers });
        expect(answer.status, `${own} ${JSON.stringify(headers)}`).toBe(404);
        expect(answer.body.toString()).not.toMatch(/split|revisions|epoch/);
        const client = rawClient(port); // the fast path's first request, handed over
        try {
          const fields = Object.entries(headers)
            .map(([k, v]) => `${k}: ${v}\r\n`)
            .join('');
          client.send(`GET ${own} HTTP/1.1\r\nHost: x\r\n${fields}\r\n`);
          expect(await client.until((t) => t.includes('\r\n\r\n'), own)).toMatch(/^HTTP\/1\.1 404 /);
        } finally {
          client.close();
        }
      }
  });

  it('counts no error against a revision for a request its client gave up on, on either path', async () => {
    // Else any client could raise a canary's serving.error_rate (and roll it back) by asking and hanging up.
    const errorsOf2 = async () =>
      JSON.parse((await call({ method: 'GET', path: '/__atelier/stats', headers: keyed })).body.toString()).revisions['2']?.errors ?? 0;
    const before = await errorsOf2();
    const giveUp = async (request: string, answered: (text: string) => boolean) => {
      const seen = other.requests.length;
      const client = rawClient(port);
      client.send(request);
      await client.until((text) => other.requests.length > seen && answered(text), 'the model to have the request');
      client.close();
    };
    const pinned = 'Host: x\r\nx-atelier-pin-revision: 2\r\n';
    other.answer(() => [{ wait: 300 }, 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok']);
    await giveUp(`POST /fast HTTP/1.1\r\n${pinned}Content-Length: 2\r\n\r\n{}`, () => true);
    await giveUp(`POST /slow HTTP/1.1\r\n${pinned}Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n`, () => true);
    // node:http's part, mid-answer.
    other.answer(() => ['HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\npart', { wait: 300 }, 'ial-rest']);
    await giveUp(`POST /mid HTTP/1.1\r\n${pinned}Connection: close\r\nContent-Length: 2\r\n\r\n{}`, (text) => text.includes('part'));
    await sleep(100); // the router's side of the hang-ups
    other.answer(() => ['HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok']);
    expect((await call({ headers: { 'x-atelier-pin-revision': '2' } })).status).toBe(200);
    expect(await errorsOf2()).toBe(before);
  });

  it('on SIGTERM, answers what it is answering, closes idle connections (on either path), and exits', async () => {
    const idle = rawClient(port);
    idle.send('GET /x HTTP/1.1\r\nHost: x\r\n\r\n');
    await idle.until((t) => t.endsWith('\r\n\r\nok'), 'a first answer');
    // node:http's, as the deployer's own kept-alive probes of the routes path are: it held the exit until the deployer's SIGKILL
    const idleChunked = rawClient(port);
    idleChunked.send('POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n');
    await idleChunked.until((t) => t.endsWith('\r\n\r\nok'), 'a first answer by node:http');
    model.answer(() => [{ wait: 200 }, 'HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nlate']);
    const seen = model.requests.length;
    const busy = rawClient(port);
    busy.send('GET /slow HTTP/1.1\r\nHost: x\r\n\r\n');
    const busyChunked = rawClient(port); // node:http's
    busyChunked.send('POST /slow HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n');
    while (model.requests.length < seen + 2) await sleep(5);
    const exited = new Promise((resolve) => router.once('exit', resolve));
    router.kill('SIGTERM');
    expect(await busy.until((_, closed) => closed, 'the answer, then the close')).toMatch(/\r\n\r\nlate$/);
    expect(await busyChunked.until((_, closed) => closed, 'node:http’s answer, then the close')).toMatch(/\r\n\r\nlate$/);
    await idle.until((_, closed) => closed, 'the idle connection closed');
    await idleChunked.until((_, closed) => closed, 'node:http’s idle connection closed');
    expect(await exited).toBe(0);
  });
});

describe('the local deployer’s router, at its cap of connections to a model', () => {
  it('opens no more than the cap to one revision’s server; requests past it wait their turn and are all answered', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'atelier-router-cap-'));
    let open = 0;
    let most = 0;
    // A model taking 150 ms an answer, counting the connections it has open at once.
    const model = createServer((socket) => {
      most = Math.max(most, ++open);
      socket.on('close', () => open--);
      socket.on('error', () => {});
      let buf = '';
      socket.on('data', (chunk) => {
        buf += chunk.toString('latin1');
        while (buf.includes('\r\n\r\n')) {
          buf = buf.slice(buf.indexOf('\r\n\r\n') + 4);
          setTimeout(() => socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok'), 150);
        }
      });
    });
    await new Promise<void>((resolve) => model.listen(0, '127.0.0.1', resolve));
    const port = await freePort();
    const targets = { 1: (model.address() as { port: number }).port };
    await writeFile(path.join(dir, 'routes.json'), JSON.stringify({ port, version: 1, split: { 1: 100 }, targets }));
    const router = spawn(process.execPath, [routerScript, path.join(dir, 'routes.json')], {
      stdio: ['ignore', 'inherit', 'inherit'],
      env: { ...process.env, ATELIER_ROUTER_MODEL_CONNECTIONS: '2' },
    });
    const clients: ReturnType<typeof rawClient>[] = [];
    try {
      for (let up = false; !up; await sleep(20))
        up = await new Promise((resolve) =>
          connect(port, '127.0.0.1', function (this: Socket) {
            this.destroy();
            resolve(true);
          }).on('error', () => resolve(false)),
        );
      // Six clients at once, each on its own connection (the fast path), and a seventh that gives up while it waits.
      for (let i = 0; i < 7; i++) clients.push(rawClient(port));
      for (const client of clients) client.send('POST /predict HTTP/1.1\r\nHost: m\r\ncontent-length: 2\r\n\r\n{}');
      await sleep(50);
      clients[6]!.close();
      for (const client of clients.slice(0, 6)) await client.until((text) => text.includes('\r\n\r\nok'), 'its answer');
      expect(most, 'connections the model had open at once').toBe(2);
      // Each answered client's connection is free for another request (the cancelled one left no place taken).
      for (const client of clients.slice(0, 2)) client.send('GET /again HTTP/1.1\r\nHost: m\r\n\r\n');
      for (const client of clients.slice(0, 2)) await client.until((text) => count(text, '\r\n\r\nok') === 2, 'a second answer');
      expect(most).toBe(2);
    } finally {
      for (const client of clients) client.close();
      router.kill('SIGKILL');
      model.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('the local deployer’s router, against clients that never finish a request (slowloris)', () => {
  it('closes a connection whose head or body does not arrive in time, and the model’s connection with it; a whole request is answered', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'atelier-router-slow-'));
    const model = scriptedModel();
    await new Promise<void>((resolve) => model.server.listen(0, '127.0.0.1', resolve));
    let modelClosed = 0;
    model.server.on('connection', (socket: Socket) => socket.on('close', () => modelClosed++));
    const port = await freePort();
    const targets = { 1: (model.server.address() as { port: number }).port };
    await writeFile(path.join(dir, 'routes.json'), JSON.stringify({ port, version: 1, split: { 1: 100 }, targets }));
    const router = spawn(process.execPath, [routerScript, path.join(dir, 'routes.json')], {
      stdio: ['ignore', 'inherit', 'inherit'],
      env: { ...process.env, ATELIER_ROUTER_HEAD_MS: '300', ATELIER_ROUTER_BODY_MS: '300' },
    });
    const clients: ReturnType<typeof rawClient>[] = [];
    try {
      for (let up = false; !up; await sleep(20))
        up = await new Promise((resolve) =>
          connect(port, '127.0.0.1', function (this: Socket) {
            this.destroy();
            resolve(true);
          }).on('error', () => resolve(false)),
        );
      // Half a head, sent and never finished (node:http's part reads it: the fast path takes only whole requests).
      const head = rawClient(port);
      // A whole head whose body never ends: passed on to the model as it comes.
      const body = rawClient(port);
      // A chunked body whose last chunk never comes.
      const chunked = rawClient(port);
      clients.push(head, body, chunked);
      head.send('POST /predict HTTP/1.1\r\nHost: m\r\n');
      body.send('POST /predict HTTP/1.1\r\nHost: m\r\ncontent-length: 100\r\n\r\n{"features":');
      chunked.send('POST /predict HTTP/1.1\r\nHost: m\r\ntransfer-encoding: chunked\r\n\r\n2\r\n{}\r\n');
      for (const [client, what] of [
        [head, 'half a head'],
        [body, 'a body that never ends'],
        [chunked, 'a chunked body that never ends'],
      ] as const)
        await client.until((_text, closed) => closed, `the router to close the connection sending ${what}`);
      expect(model.requests).toEqual([]);
      // The model's connections the unfinished bodies held are let go too.
      const deadline = Date.now() + 5_000;
      while (modelClosed < 2 && Date.now() < deadline) await sleep(10);
      expect(modelClosed).toBeGreaterThanOrEqual(2);
      // A request that is whole, through node:http's part too, is answered as ever.
      const whole = rawClient(port);
      clients.push(whole);
      whole.send('POST /predict HTTP/1.1\r\nHost: m\r\ntransfer-encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n');
      expect(await whole.until((text) => text.includes('\r\n\r\nok'), 'its answer')).toMatch(/^HTTP\/1\.1 200/);
    } finally {
      for (const client of clients) client.close();
      router.kill('SIGKILL');
      model.server.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
