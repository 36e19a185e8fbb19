// The listening side as a lifecycle service: a Node HTTP server answering the routes, with graphql-ws on the same
// port. Starting listens (port 0 picks a free one); stopping drains (./drain.ts): subscribers over graphql-ws are
// told the server restarts (1012, which their clients retry), requests in flight finish within `drainGraceMs`.
import { createServer, type Server } from 'node:http';
import { type AddressInfo, createServer as createNetServer } from 'node:net';
import type { Db } from '../db/client';
import type { Service } from '../lifecycle';
import { createDrain } from './drain';
import { attachGraphqlWs, type GraphqlWs } from './graphql-ws';
import { createPeerResolver } from './peer';
import { createRequestListener, type RequestCounter, type Route } from './router';
import type { ApiYoga } from './yoga';

export interface HttpServerOptions {
  port: number;
  host: string;
  routes: readonly Route[];
  yoga: ApiYoga;
  db: Db;
  /** The most one graphql-ws message may carry. */
  maxRequestBytes: number;
  /** How long stopping waits for requests in flight before dropping them (`ATELIER_SHUTDOWN_GRACE_SECONDS`). */
  drainGraceMs: number;
  log: (message: string) => void;
  /** Counts each request answered (the metrics' HTTP counters). */
  counted?: RequestCounter;
  /** Proxies whose X-Forwarded-For names the client (`ATELIER_TRUSTED_PROXIES`; none: the TCP peer, always). */
  trustedProxies?: readonly string[];
}

export interface HttpService extends Service {
  /** The base URL it listens on; only after `start`. */
  url(): string;
}

export function createHttpService(options: HttpServerOptions): HttpService {
  let server: Server | undefined;
  let ws: GraphqlWs | undefined;
  let url: string | undefined;
  const drain = createDrain();
  return {
    name: 'http',
    async start() {
      server = createServer(drain.listener(createRequestListener(options.routes, options.log, options.counted)));
      const listening = server;
      // Every request's peer (server/http/peer.ts) is resolved as it arrives, before any route or graphql-ws reads it.
      const peers = createPeerResolver(options.trustedProxies ?? []);
      listening.prependListener('request', (req) => peers.identify(req));
      listening.prependListener('upgrade', (req) => peers.identify(req));
      // graphql-ws is attached in the listen callback (before any connection can be read), not before: a WebSocket
      // server on a server that fails to listen re-emits the failure as "Internal error emitted on the WebSocket
      // server. Please check your implementation", which is neither true nor what to do.
      await new Promise<void>((resolve, reject) => {
        listening.once('error', (error) => reject(listenError(error, options)));
        listening.listen(options.port, options.host, () => {
          ws = attachGraphqlWs(listening, { yoga: options.yoga, db: options.db, maxPayloadBytes: options.maxRequestBytes });
          resolve();
        });
      });
      const address = listening.address() as AddressInfo;
      url = `http://${options.host.includes(':') ? `[${options.host}]` : options.host}:${address.port}`;
    },
    async stop() {
      if (!server) return;
      ws?.restart();
      if (drain.inFlight() > 0) options.log(`stopping: finishing ${drain.inFlight()} request(s) in flight (at most ${options.drainGraceMs / 1000} s)`);
      await drain.drain(server, options.drainGraceMs);
      ws?.close();
    },
    url() {
      if (!url) throw new Error('The HTTP server has not started.');
      return url;
    },
  };
}

/**
 * Fails, in the operator's terms, when `port` on `host` cannot be listened on now (taken, not allowed, not an address
 * of this machine): checked before the database opens, so that `npm start` on a taken port says so at once rather
 * than after the whole start (a first embedded database's set-up takes many seconds). The listen itself still decides.
 */
export async function checkListenable(options: { port: number; host: string }): Promise<void> {
  if (options.port === 0) return;
  const probe = createNetServer();
  await new Promise<void>((resolve, reject) => {
    probe.once('error', (error) => reject(listenError(error, options)));
    probe.listen(options.port, options.host, () => probe.close(() => resolve()));
  });
}

/** A failure to listen in the operator's terms: which address, and what to do about it. */
function listenError(error: NodeJS.ErrnoException, options: { port: number; host: string }): Error {
  const where = `${options.host}:${options.port}`;
  if (error.code === 'EADDRINUSE')
    return new Error(
      `Port ${options.port} on ${options.host} is already in use (another Atelier, or another program). Stop it, or start this one on another port: PORT=${options.port === 65535 ? 4001 : options.port + 1} npm start (PORT=0 picks a free one).`,
    );
  if (error.code === 'EACCES') return new Error(`Not allowed to listen on ${where} (ports below 1024 need privileges): choose another with PORT=…`);
  if (error.code === 'EADDRNOTAVAIL')
    return new Error(`${options.host} is not an address of this machine: set HOST to one of its addresses (or 0.0.0.0 for all).`);
  return error;
}
