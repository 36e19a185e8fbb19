// The local deployer's router: one small process per deployment, listening on the deployment's port and passing each
// request to a revision's server by the traffic split (weighted random; a request naming a revision in
// x-atelier-pin-revision goes there). It reads its routes file at start and again on SIGHUP, so the deployer switches
// traffic with one signal and confirms it on GET /__atelier/routes. A separate process, so serving outlives the
// control plane that started it. Plain JavaScript: it runs under `node` with no build step. Connections come to the
// fast path (router-fast.mjs) first; what it does not take, node:http below answers (the router's own paths too).
// Its own paths answer only the control plane: a request carrying the routes file's key in x-atelier-router-key (the
// deployment's clients reach the same port, and its revisions, split and traffic are not theirs to read).
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Agent, createServer, request } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { createFastPath } from './router-fast.mjs';
import { createServingStats } from './serving-stats.mjs';

const routesFile = process.argv[2];
// At most this many connections to one revision’s server from each path, busy and idle (a test sets fewer).
const MODEL_CONNECTIONS = Number(process.env.ATELIER_ROUTER_MODEL_CONNECTIONS) || 256;
const agent = new Agent({ keepAlive: true, maxSockets: MODEL_CONNECTIONS });
let routes = load();

function load() {
  const r = JSON.parse(readFileSync(routesFile, 'utf8'));
  const entries = Object.entries(r.split).filter(([, pct]) => pct > 0);
  return { ...r, entries };
}

function pick(pinned) {
  // A revision of the routes' own: "constructor" or "__proto__" named Object's, whose "port" crashed the router.
  if (typeof pinned === 'string' && Object.hasOwn(routes.targets, pinned)) return pinned;
  let x = Math.random() * 100;
  for (const [rev, pct] of routes.entries) {
    x -= pct;
    if (x < 0) return rev;
  }
  return routes.entries.at(-1)?.[0];
}

// The model's connection fields are its own (RFC 9110 §7.6.1): the client gets the router's, as on the fast path.
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade']);

/** The answer's end-to-end fields, as they came, tagged with the revision. */
function endToEnd(up, rev) {
  const named = String(up.headers.connection ?? '')
    .toLowerCase()
    .split(/[ \t]*,[ \t]*/);
  const fields = [];
  for (let i = 0; i < up.rawHeaders.length; i += 2) {
    const name = up.rawHeaders[i].toLowerCase();
    if (!HOP_BY_HOP.has(name) && !named.includes(name)) fields.push(up.rawHeaders[i], up.rawHeaders[i + 1]);
  }
  fields.push('x-atelier-revision', rev);
  return fields;
}

/** Whether `given` (a request's x-atelier-router-key) is the routes' key; no key in the routes file admits none. */
function keyed(given) {
  if (typeof routes.key !== 'string' || !routes.key || typeof given !== 'string') return false;
  const digest = (text) => createHash('sha256').update(text).digest();
  return timingSafeEqual(digest(given), digest(routes.key));
}

const ROUTES_PATH = '/__atelier/routes';
const STATS_PATH = '/__atelier/stats';
const stats = createServingStats();
const KEEP_ALIVE_MS = 5_000;

// node:http times a request's head (headersTimeout) and its whole body (requestTimeout) with a check it starts when
// it listens, and `slow` never listens: a connection handed over with half a head, or a body that never ends, held its
// socket (and, for a body, a connection to the model) for ever, and enough of them took every file the router may
// open. The router times them itself: a head within HEAD_MS of the connection's hand-over or of its last answer, a
// body within BODY_MS of its head (an answer is the model's to time). A test sets shorter ones.
const HEAD_MS = Number(process.env.ATELIER_ROUTER_HEAD_MS) || 60_000;
const BODY_MS = Number(process.env.ATELIER_ROUTER_BODY_MS) || 300_000;
const deadline = Symbol('deadline');
function expireIn(socket, ms) {
  clearTimeout(socket[deadline]);
  socket[deadline] = ms ? setTimeout(() => socket.destroy(), ms) : undefined;
}

let stopping = false; // SIGTERM: each connection closes once its answer is out
// The connections node:http reads, each with whether a request of it is being answered. Its closeIdleConnections
// tracks only a listening server's, and `slow` never listens: on SIGTERM an idle one (a client's kept-alive
// connection) held the router's exit until its keep-alive ran out, or the deployer's SIGKILL two seconds on.
const handed = new Map(); // socket → requests of it not yet answered
// Never listening: it reads the connections the fast path hands it.
const slow = createServer((req, res) => {
  if (stopping) res.shouldKeepAlive = false;
  const socket = req.socket;
  handed.set(socket, (handed.get(socket) ?? 0) + 1);
  expireIn(socket, BODY_MS);
  req.once('end', () => res.writableFinished || expireIn(socket, 0));
  res.once('close', () => handed.has(socket) && handed.set(socket, handed.get(socket) - 1));
  res.once('finish', () => expireIn(socket, HEAD_MS)); // the next request's head
  if ((req.url === ROUTES_PATH || req.url === STATS_PATH) && !keyed(req.headers['x-atelier-router-key'])) {
    res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found"}');
    return;
  }
  if (req.url === ROUTES_PATH) {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ version: routes.version, split: routes.split }));
    return;
  }
  if (req.url === STATS_PATH) {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(stats));
    return;
  }
  const began = performance.now();
  const rev = pick(req.headers['x-atelier-pin-revision']);
  const port = rev && routes.targets[rev];
  if (!port) {
    res.writeHead(503, { 'content-type': 'application/json' }).end('{"error":"no revision has traffic"}');
    return;
  }
  // The client hung up before its answer ended: no failure of the model's (nor counted as one, as on the fast path:
  // else any client could raise a revision's error rate, and roll a canary back, by asking and hanging up).
  let clientGone = false;
  const upstream = request({ host: '127.0.0.1', port, method: req.method, path: req.url, headers: req.headers, agent }, (up) => {
    if (stopping) res.shouldKeepAlive = false;
    // What node:http cannot pass on (a model's status "099", which its parser takes and writeHead throws on, outside
    // any handler: the router's crash, every revision's traffic with it) is the model's failure, answered 502 below.
    try {
      res.writeHead(up.statusCode ?? 502, endToEnd(up, rev));
    } catch (error) {
      return upstream.destroy(new Error(`its answer cannot be passed on (${error.message})`));
    }
    // A model gone mid-answer: the client sees its connection cut, as below, not an answer that never ends.
    up.on('close', () => {
      if (up.complete || clientGone) return;
      res.destroy();
      stats.record(rev, 502, performance.now() - began);
    });
    res.on('finish', () => stats.record(rev, up.statusCode ?? 502, performance.now() - began));
    up.pipe(res);
  });
  upstream.on('error', (error) => {
    if (clientGone) return;
    // Mid-response there is no status left to send: the client sees the connection cut, not a spliced body.
    if (res.headersSent) return res.destroy();
    stats.record(rev, 502, performance.now() - began);
    res.writeHead(502, { 'content-type': 'application/json', 'x-atelier-revision': rev });
    res.end(JSON.stringify({ error: `revision ${rev} did not answer: ${error.message}` }));
  });
  // A client gone before its answer ends (its timeout, a hung model) takes the upstream request with it: else the
  // request's socket stays taken from the pool for as long as the model keeps it, and a paused answer forever.
  res.on('close', () => {
    if (res.writableFinished) return;
    clientGone = true;
    upstream.destroy();
  });
  req.pipe(upstream);
});
slow.keepAliveTimeout = KEEP_ALIVE_MS;

const fast = createFastPath({
  route(pinned) {
    const rev = pick(pinned);
    return [rev, rev && routes.targets[rev]];
  },
  handOver: (socket) => {
    expireIn(socket, HEAD_MS);
    handed.set(socket, 0);
    socket.once('close', () => {
      expireIn(socket, 0);
      handed.delete(socket);
    });
    slow.emit('connection', socket);
  },
  isOwn: (url) => url === ROUTES_PATH || url === STATS_PATH,
  record: stats.record,
  keepAliveMs: KEEP_ALIVE_MS,
  maxConnections: MODEL_CONNECTIONS,
});
// Half-open like node:http's own server, so that each side closes as node:http would (router-fast.mjs).
const server = createNetServer({ allowHalfOpen: true, noDelay: true }, fast.accept);
server.on('error', (error) => {
  process.stderr.write(`router: ${error.message}\n`);
  process.exit(2);
});
process.on('SIGHUP', () => {
  try {
    routes = load();
  } catch (error) {
    process.stderr.write(`router: kept the old routes, the new file did not parse: ${error.message}\n`);
  }
});
process.on('SIGTERM', () => {
  stopping = true;
  server.close(() => process.exit(0));
  fast.close();
  for (const [socket, answering] of handed) if (answering === 0) socket.destroy();
});
server.listen(routes.port, '127.0.0.1');
