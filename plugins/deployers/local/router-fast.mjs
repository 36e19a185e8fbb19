// The router's fast path: a client connection's plain requests (HTTP/1.1, the whole request in hand, a content-length
// body or none) are passed to a revision's server as the bytes they came in, one write, on a kept-alive connection of
// its own pool, and the answer's bytes passed back as they come, its head retagged; node:http is not in the way, which
// halves the router's own cost per prediction (docs/deployers.md). The first request it does not take (http1.mjs
// says which) hands the connection, with its unread bytes, to the node:http router for the rest of its life.
import { connect } from 'node:net';
import { chunkedEnd, readRequest, readResponse } from './http1.mjs';

const FIRST_REQUEST_MS = 60_000; // node:http's headersTimeout, for a connection that has not asked anything yet
const MODEL_IDLE_MS = 4_000; // a model's idle connection is let go before a 5 s keep-alive (node's, uvicorn's) ends it

/**
 * `{ accept(socket), close() }`. `route(pin)` → `[rev, port]` (port undefined when no revision takes it); `handOver
 * (socket)` gives a connection to node:http; `isOwn(url)` keeps the router's own paths for it. At most
 * `maxConnections` connections to one revision's server, busy and idle together (as node:http's agent's
 * `maxSockets`): a request past them waits for one to come free, in the order they came. `record(rev, code, ms)`
 * counts each request a revision answered (serving-stats.mjs; 502 for one it did not answer whole).
 */
export function createFastPath({ route, handOver, isOwn, keepAliveMs, maxConnections, record }) {
  const pools = new Map(); // port → idle sockets to that revision's server
  const open = new Map(); // port → its sockets open, busy and idle
  const waiting = new Map(); // port → requests waiting for a socket: each a function given one
  const clients = new Set();
  const keepAliveS = Math.floor(keepAliveMs / 1000);
  let closing = false; // the router is stopping: each connection closes once its answer is out

  /** A socket to `port`'s server: an idle one, else a new one, else (at `maxConnections`) null. */
  function upstream(port) {
    const idle = pools.get(port);
    while (idle?.length) {
      const socket = idle.pop();
      if (!socket.destroyed) {
        if (socket.isPaused()) socket.resume(); // paused for a slow client of its last answer
        return socket;
      }
    }
    if ((open.get(port) ?? 0) >= maxConnections) return null;
    open.set(port, (open.get(port) ?? 0) + 1);
    const socket = connect({ port, host: '127.0.0.1', noDelay: true });
    socket.on('data', (chunk) => (socket.exchange ? socket.exchange.data(chunk) : socket.destroy()));
    socket.on('error', (error) => socket.exchange?.fail(error));
    socket.on('close', () => {
      open.set(port, open.get(port) - 1);
      const idle = pools.get(port);
      if (idle?.includes(socket)) idle.splice(idle.indexOf(socket), 1);
      socket.exchange?.fail(null);
      // A place came free (unless the failed exchange's client took it at once): the next waiting request gets it.
      const queue = waiting.get(port);
      if (queue?.length) {
        const fresh = upstream(port);
        if (fresh) queue.shift()(fresh);
      }
    });
    // Idle timers are set once and left running: one that fires on a model still computing is let be (an answer's
    // bytes arm it again), cheaper than setting and clearing timers around each request.
    socket.idleMs = MODEL_IDLE_MS;
    socket.setTimeout(MODEL_IDLE_MS);
    socket.on('timeout', () => socket.exchange || socket.destroy());
    return socket;
  }

  function release(socket, port, idleMs) {
    socket.exchange = null;
    if (socket.destroyed) return;
    if (socket.idleMs !== idleMs) socket.setTimeout((socket.idleMs = idleMs));
    const next = waiting.get(port)?.shift();
    if (next) {
      if (socket.isPaused()) socket.resume();
      return next(socket);
    }
    if (!pools.has(port)) pools.set(port, []);
    pools.get(port).push(socket);
  }

  function accept(client) {
    client.setNoDelay(true);
    let pending = null; // bytes read from the client and not yet passed on
    let exchange = null; // the request being answered
    const own = { client, busy: () => exchange !== null };
    clients.add(own);
    client.setTimeout(FIRST_REQUEST_MS);

    const onData = (chunk) => {
      pending = pending ? Buffer.concat([pending, chunk]) : chunk;
      if (exchange) {
        if (pending.length > 1 << 20) client.pause(); // a client sending far ahead of its answers waits
      } else next();
    };
    // A client ending its side has given up, as node:http takes it: what it asked is let go, the connection closed.
    const onEnd = () => {
      exchange?.cancel();
      pending = null;
      client.end();
    };
    const onTimeout = () => exchange || client.destroy(); // idle only: a slow answer is the model's to time
    let asked = false;
    const onClose = () => {
      clients.delete(own);
      exchange?.cancel();
    };
    client.on('data', onData);
    client.on('end', onEnd);
    client.on('timeout', onTimeout);
    client.on('close', onClose);
    client.on('error', () => {});

    function next() {
      if (closing) {
        client.end();
        return;
      }
      if (!pending) return;
      const request = readRequest(pending, isOwn);
      if (!request) {
        // Not one the fast path takes: node:http reads the connection from here on, these bytes first.
        for (const [event, listener] of [
          ['data', onData],
          ['end', onEnd],
          ['timeout', onTimeout],
          ['close', onClose],
        ])
          client.removeListener(event, listener);
        client.removeAllListeners('error');
        clients.delete(own);
        client.setTimeout(0);
        client.unshift(pending);
        pending = null;
        handOver(client);
        return;
      }
      if (!asked) {
        asked = true;
        client.setTimeout(keepAliveMs);
      }
      const bytes = pending.subarray(0, request.end);
      pending = request.end < pending.length ? pending.subarray(request.end) : null;
      const [rev, port] = route(request.pin);
      if (port === undefined) return answer(503, undefined, '{"error":"no revision has traffic"}');
      exchange = send(rev, port, bytes, request.method === 'HEAD');
    }

    function answer(code, rev, body) {
      const reason = code === 502 ? 'Bad Gateway' : 'Service Unavailable';
      const tag = rev === undefined ? '' : `x-atelier-revision: ${rev}\r\n`;
      const connection = `Connection: keep-alive\r\nKeep-Alive: timeout=${keepAliveS}\r\n`;
      client.write(
        `HTTP/1.1 ${code} ${reason}\r\ncontent-type: application/json\r\n${tag}content-length: ${Buffer.byteLength(body)}\r\n${connection}\r\n${body}`,
      );
      next();
    }

    function send(rev, port, bytes, headRequest) {
      const began = performance.now();
      let socket = null; // none yet while the request waits for a place
      let buf = null; // a response head not yet whole
      let started = false; // the client has had a head: past that, a failure can only cut its connection
      let body = null; // the final response's framing, once its head is read
      let left = 0;
      let scan = null;
      const forward = (chunk) => {
        if (!client.write(chunk)) {
          socket.pause();
          client.once('drain', () => socket.resume());
        }
      };
      const done = () => {
        exchange = null;
        record(rev, body.code, performance.now() - began);
        if (body.reusable) release(socket, port, body.keepAliveMs ? Math.max(body.keepAliveMs - 1_000, 500) : MODEL_IDLE_MS);
        else {
          socket.exchange = null;
          socket.destroy();
        }
        if (client.isPaused()) client.resume();
        next();
      };
      const ex = {
        data(chunk) {
          if (body) return ex.body(chunk, null);
          buf = buf ? Buffer.concat([buf, chunk]) : chunk;
          for (;;) {
            let read;
            try {
              read = readResponse(buf, headRequest, `x-atelier-revision: ${rev}\r\n`, keepAliveS);
            } catch (error) {
              return ex.fail(error);
            }
            if (!read) return;
            if (read.code === 101) return ex.fail(new Error('the model switched protocols unasked'));
            started = true;
            const rest = buf.subarray(read.headLength);
            buf = null;
            if (read.code < 200) {
              forward(read.head); // 1xx: the final answer follows
              if (!rest.length) return;
              buf = rest;
              continue;
            }
            body = read;
            left = read.length;
            if (read.body === 'chunked') scan = chunkedEnd();
            return ex.body(rest, read.head);
          }
        },
        /** Passes a piece of the body on (after `head` when given), up to its end; done at the end. */
        body(chunk, head) {
          let end = -1;
          if (body.body === 'none') end = 0;
          else if (body.body === 'length') {
            const take = Math.min(left, chunk.length);
            left -= take;
            if (left === 0) end = take;
          } else if (body.body === 'chunked') {
            try {
              end = scan(chunk, 0);
            } catch (error) {
              return ex.fail(error);
            }
          }
          const part = end < 0 ? chunk : chunk.subarray(0, end);
          if (head) forward(part.length ? Buffer.concat([head, part]) : head);
          else if (part.length) forward(part);
          if (end < 0) return;
          if (end < chunk.length) body.reusable = false; // bytes past the answer: not a connection to trust again
          done();
        },
        fail(error) {
          if (exchange !== ex) return;
          ex.cancel();
          if (body?.body === 'close' && error === null) {
            record(rev, body.code, performance.now() - began);
            client.end(); // the model closed: that is the end of an answer delimited by its close
            return;
          }
          record(rev, 502, performance.now() - began);
          if (started) return client.destroy(); // mid-answer: the client sees the connection cut, not a spliced body
          answer(502, rev, JSON.stringify({ error: `revision ${rev} did not answer: ${error?.message ?? 'socket hang up'}` }));
        },
        cancel() {
          exchange = null;
          if (!socket) {
            const queue = waiting.get(port);
            const at = queue ? queue.indexOf(start) : -1;
            if (at >= 0) queue.splice(at, 1);
            return;
          }
          socket.exchange = null;
          socket.destroy();
        },
      };
      const start = (given) => {
        socket = given;
        socket.exchange = ex;
        socket.write(bytes);
      };
      const given = upstream(port);
      if (given) start(given);
      else {
        if (!waiting.has(port)) waiting.set(port, []);
        waiting.get(port).push(start);
      }
      return ex;
    }
  }

  return {
    accept,
    /** Stops: idle connections close now, busy ones once their answers are out. */
    close() {
      closing = true;
      for (const { client, busy } of clients) if (!busy()) client.destroy();
      for (const idle of pools.values()) for (const socket of idle) socket.destroy();
    },
  };
}
