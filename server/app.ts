// Builds the control plane from a config: database, bus, object store, orchestrator, event recorder, outbox
// relay, the GraphQL API (HTTP, graphql-ws and SSE on /graphql), and optionally an embedded executor host.
// Listening is `start()`; `server/main.ts` only reads the config and calls it.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { execute, subscribe, type ExecutionArgs } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import { createYoga, type YogaServerInstance } from 'graphql-yoga';
import { WebSocketServer } from 'ws';
import { createExecutorHost, type ExecutorHost } from '../plugins/host';
import { createExecutorRegistry } from '../plugins/registry';
import type { Executor } from '../plugins/sdk';
import { createLoaders, type Context, type Services } from '../schema/context';
import { schema } from '../schema';
import { createFileObjectStore } from './artifacts/store';
import { defineAbilityFor } from './auth/ability';
import { ensureIdentity, identityForToken, issueToken, mintToken } from './auth/tokens';
import { createMemoryBus } from './bus/memory';
import type { Bus, Subscription } from './bus/types';
import { defaultHostName, type Config } from './config';
import { executorsFromEnv } from './executors';
import { openDatabase, type Database } from './db/client';
import { AtelierError } from './errors';
import { createRunFeed, type FeedEvent } from './feed';
import { createOutboxRelay } from './outbox';
import { createHotClusterService } from './orchestrator/hot-clusters';
import { createOrchestrator } from './orchestrator/orchestrator';
import { DEFAULT_GPU_POOL } from './orchestrator/routing';
import { createScheduler } from './scheduler/scheduler'; // scheduler
import { serveStatic } from './http/static';

export interface App {
  yoga: YogaServerInstance<Record<string, unknown>, Context>;
  services: Services;
  bus: Bus;
  database: Database;
  adminToken: string;
  /** Listens on the configured port (0 picks a free one); resolves with the base URL. */
  start(): Promise<string>;
  stop(): Promise<void>;
}

export interface BuildOptions {
  /** Executors for the embedded host (default: local and noop). */
  executors?: Executor[];
  log?: (message: string) => void;
}

export async function buildApp(config: Config, options: BuildOptions = {}): Promise<App> {
  const log = options.log ?? (config.logLevel === 'silent' ? () => {} : (m: string) => console.log(m));
  await mkdir(config.dataDir, { recursive: true });

  const database = await openDatabase({ url: config.databaseUrl, dataDir: config.dataDir });
  const { db } = database;
  const bus = config.natsUrl ? await (await import('./bus/jetstream')).createJetStreamBus({ url: config.natsUrl }) : createMemoryBus();
  const store = createFileObjectStore(path.join(config.dataDir, 'objects'));
  // With NATS, live events go through the bus so subscribers on every replica see them.
  const feed = createRunFeed(bus.kind === 'jetstream' ? { publish: (events) => bus.publishFeed(events) } : undefined);
  const relay = createOutboxRelay({ db, bus, onError: (e) => log(`outbox relay: ${(e as Error).message} (will retry)`) });
  const planDefaults = {
    timeoutMs: config.defaultTaskTimeoutMs,
    executor: 'local',
    gpuRouting: { gpuPools: config.gpuPools, fallbackPool: DEFAULT_GPU_POOL },
    hostStaleMs: config.hostStaleMs,
  };
  const orchestrator = createOrchestrator({
    db,
    feed,
    onOutbox: () => relay.kick(),
    defaults: planDefaults,
    poolLimits: config.poolLimits,
    heartbeatTimeoutMs: config.heartbeatTimeoutMs,
  });
  // scheduler: cron schedules start runs; on Postgres only the replica holding the advisory lock fires them
  const scheduler = createScheduler({ db, orchestrator, clock: { now: () => new Date() }, leaderLock: database.kind === 'postgres', log: (m) => log(`scheduler: ${m}`) });
  const hotClusters = createHotClusterService({ db, bus, hostStaleMs: config.hostStaleMs });
  const services: Services = { db, store, feed, orchestrator, config, planDefaults, hotClusters };

  const adminToken = await seedAdmin(database, config);

  let host: ExecutorHost | undefined;
  if (config.embeddedExecutor) {
    host = createExecutorHost({
      bus,
      registry: createExecutorRegistry(options.executors ?? executorsFromEnv()),
      pools: config.pools,
      hostName: `${defaultHostName()}-embedded`,
      artifacts: { fetch: (digest) => store.path(digest) },
      workRoot: path.join(config.dataDir, 'work'),
      gpus: config.executorGpus,
      warn: (m) => log(`executor host: ${m}`),
    });
  }

  const yoga = createYoga<Record<string, unknown>, Context>({
    schema,
    graphqlEndpoint: '/graphql',
    landingPage: false,
    logging: config.logLevel === 'debug' ? 'debug' : 'warn',
    graphiql: { subscriptionsProtocol: 'WS' },
    batching: false,
    context: async (initial) => {
      const request = initial.request as Request | undefined;
      const connectionParams = (initial as { connectionParams?: Record<string, unknown> }).connectionParams;
      const token = bearer(request?.headers.get('authorization')) ?? bearer(connectionParams?.authorization) ?? stringOrNull(connectionParams?.token);
      if (!token) throw new AtelierError('UNAUTHENTICATED', 'Missing bearer token: send "Authorization: Bearer <token>" (the admin token is in $ATELIER_DATA_DIR/admin-token).');
      const identity = await identityForToken(db, token);
      if (!identity) throw new AtelierError('UNAUTHENTICATED', 'The bearer token is unknown, expired or revoked; ask an admin for a new one.');
      return { identity, ability: defineAbilityFor(identity), services, loaders: createLoaders(db) };
    },
  });

  let server: Server | undefined;
  let wss: WebSocketServer | undefined;
  let eventsSubscription: Subscription | undefined;
  let feedSubscription: Subscription | undefined;
  let heartbeatSubscription: Subscription | undefined;
  let ticker: NodeJS.Timeout | undefined;
  let ticking: Promise<void> | undefined;
  const dashboardsDir = path.join(path.dirname(new URL(import.meta.url).pathname), '..', 'dashboards');

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname === '/health') {
      const ok = await db.execute('select 1' as never).then(
        () => true,
        () => false,
      );
      res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify({ status: ok ? 'ok' : 'degraded', database: database.kind, bus: bus.kind }));
      return;
    }
    if (url.pathname.startsWith('/artifacts/')) return serveArtifact(req, res, url.pathname.slice('/artifacts/'.length));
    if (url.pathname === '/graphql' || url.pathname.startsWith('/graphql?')) {
      const length = Number(req.headers['content-length'] ?? 0);
      if (length > config.maxUploadBytes + 1024 * 1024) {
        res.writeHead(413, { 'content-type': 'application/json' }).end(JSON.stringify({ errors: [{ message: `Request body too large (limit ${config.maxUploadBytes} bytes).`, extensions: { code: 'PAYLOAD_TOO_LARGE' } }] }));
        return;
      }
      return yoga(req, res);
    }
    return serveStatic(req, res, dashboardsDir);
  };

  /** Module archives for executor hosts in other processes; same bearer tokens as the API. */
  const serveArtifact = async (req: IncomingMessage, res: ServerResponse, digest: string) => {
    const token = bearer(req.headers.authorization);
    const identity = token ? await identityForToken(db, token) : null;
    if (!identity) return void res.writeHead(401, { 'content-type': 'text/plain' }).end('Missing or unknown bearer token.\n');
    try {
      const bytes = await store.get(decodeURIComponent(digest));
      res.writeHead(200, { 'content-type': 'application/gzip', 'content-length': bytes.length, 'cache-control': 'public, max-age=31536000, immutable' }).end(bytes);
    } catch (error) {
      const status = error instanceof AtelierError && error.code === 'NOT_FOUND' ? 404 : 400;
      res.writeHead(status, { 'content-type': 'text/plain' }).end(`${(error as Error).message}\n`);
    }
  };

  const app: App = {
    yoga,
    services,
    bus,
    database,
    adminToken,
    async start() {
      if (bus.kind === 'jetstream') feedSubscription = await bus.subscribeFeed((events) => feed.deliver(events as FeedEvent[]));
      eventsSubscription = await bus.consumeEvents(
        async (deliveries) => {
          try {
            const events = deliveries.map((d) => d.data);
            await orchestrator.recordEvents(events);
            await hotClusters.recordEvents(events);
            await Promise.all(deliveries.map((d) => d.ack()));
          } catch (error) {
            log(`recording ${deliveries.length} executor events failed, will retry: ${(error as Error).message}`);
            for (const d of deliveries) d.nak(1000);
          }
        },
        { durable: 'control-plane', maxBatch: 512, maxInFlight: 4096, ackWaitMs: 30_000 },
      );
      heartbeatSubscription = await bus.subscribeControl('host-heartbeat', (heartbeat) => {
        hotClusters.onHeartbeat(heartbeat).catch((e) => log(`recording the heartbeat of host ${heartbeat.host}: ${(e as Error).message}`));
      });
      relay.start();
      scheduler.start(); // scheduler
      ticker = setInterval(() => {
        if (ticking) return; // a slow tick is never overlapped by the next
        ticking = orchestrator
          .tick()
          .then(() => hotClusters.tick())
          .catch((e) => log(`orchestrator tick: ${(e as Error).message} (will retry)`))
          .finally(() => (ticking = undefined));
      }, config.tickMs);
      ticker.unref();
      await host?.start();
      server = createServer((req, res) => {
        handle(req, res).catch((error) => {
          log(`unhandled request error: ${(error as Error).stack}`);
          if (!res.headersSent) res.writeHead(500).end();
        });
      });
      wss = new WebSocketServer({ server, path: '/graphql' });
      useServer(
        {
          execute: (args) => (args.rootValue as { execute: typeof execute }).execute(args as ExecutionArgs),
          subscribe: (args) => (args.rootValue as { subscribe: typeof subscribe }).subscribe(args as ExecutionArgs),
          onConnect: async (ctx) => {
            const params = ctx.connectionParams ?? {};
            const token = bearer(params.authorization) ?? stringOrNull(params.token);
            return Boolean(token && (await identityForToken(db, token)));
          },
          onSubscribe: async (ctx, _id, payload) => {
            const enveloped = yoga.getEnveloped({ ...ctx, req: ctx.extra.request, socket: ctx.extra.socket, params: payload, connectionParams: ctx.connectionParams });
            const args = {
              schema: enveloped.schema,
              operationName: payload.operationName,
              document: enveloped.parse(payload.query),
              variableValues: payload.variables,
              contextValue: await enveloped.contextFactory(),
              rootValue: { execute: enveloped.execute, subscribe: enveloped.subscribe },
            };
            const errors = enveloped.validate(args.schema, args.document);
            if (errors.length) return errors;
            return args;
          },
        },
        wss,
      );
      await new Promise<void>((resolve, reject) => {
        server!.once('error', reject);
        server!.listen(config.port, config.host, () => resolve());
      });
      const address = server.address() as AddressInfo;
      return `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${address.port}`;
    },
    async stop() {
      await new Promise<void>((resolve) => {
        for (const client of wss?.clients ?? []) client.terminate();
        wss?.close();
        server?.closeAllConnections?.();
        if (server?.listening) server.close(() => resolve());
        else resolve();
      });
      clearInterval(ticker);
      await ticking;
      await scheduler.stop(); // scheduler
      await host?.stop();
      await eventsSubscription?.stop();
      await feedSubscription?.stop();
      await heartbeatSubscription?.stop();
      await relay.stop();
      await bus.close();
      await database.close();
    },
  };
  return app;
}

/** Makes sure the admin identity exists and returns its token: ATELIER_ADMIN_TOKEN, the saved one, or a new one. */
async function seedAdmin(database: Database, config: Config): Promise<string> {
  const admin = await ensureIdentity(database.db, { name: 'admin', kind: 'user', role: 'admin' });
  const file = path.join(config.dataDir, 'admin-token');
  let token = config.adminToken;
  if (!token) {
    token = (await readFile(file, 'utf8').catch(() => '')).trim() || mintToken();
  }
  await issueToken(database.db, admin.id, 'admin', { token });
  await writeFile(file, `${token}\n`, { mode: 0o600 });
  return token;
}

function bearer(value: unknown): string | null {
  if (typeof value !== 'string') return null;
  const m = /^Bearer\s+(\S+)$/i.exec(value.trim());
  return m ? m[1]! : null;
}

function stringOrNull(value: unknown): string | null {
  return typeof value === 'string' && value ? value : null;
}
