// The listening side as a lifecycle service: a Node HTTP server answering the routes, with graphql-ws on the same
// port. Starting listens (port 0 picks a free one); stopping drops open sockets and connections at once.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Db } from '../db/client';
import type { Service } from '../lifecycle';
import { attachGraphqlWs, type GraphqlWs } from './graphql-ws';
import { createRequestListener, type Route } from './router';
import type { ApiYoga } from './yoga';

export interface HttpServerOptions {
  port: number;
  host: string;
  routes: readonly Route[];
  yoga: ApiYoga;
  db: Db;
  /** The most one graphql-ws message may carry. */
  maxRequestBytes: number;
  log: (message: string) => void;
}

export interface HttpService extends Service {
  /** The base URL it listens on; only after `start`. */
  url(): string;
}

export function createHttpService(options: HttpServerOptions): HttpService {
  let server: Server | undefined;
  let ws: GraphqlWs | undefined;
  let url: string | undefined;
  return {
    name: 'http',
    async start() {
      server = createServer(createRequestListener(options.routes, options.log));
      ws = attachGraphqlWs(server, { yoga: options.yoga, db: options.db, maxPayloadBytes: options.maxRequestBytes });
      const listening = server;
      await new Promise<void>((resolve, reject) => {
        listening.once('error', reject);
        listening.listen(options.port, options.host, () => resolve());
      }).catch((error: unknown) => {
        ws?.close(); // a start that fails is not stopped: let go of what it made
        throw error;
      });
      const address = listening.address() as AddressInfo;
      url = `http://${options.host.includes(':') ? `[${options.host}]` : options.host}:${address.port}`;
    },
    async stop() {
      await new Promise<void>((resolve) => {
        ws?.close();
        server?.closeAllConnections?.();
        if (server?.listening) server.close(() => resolve());
        else resolve();
      });
    },
    url() {
      if (!url) throw new Error('The HTTP server has not started.');
      return url;
    },
  };
}
