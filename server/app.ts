// Builds the control plane from a config: database, bus, object store, orchestrator, event recorder, outbox
// relay, the GraphQL API (HTTP, graphql-ws and SSE on /graphql), and optionally an embedded executor host.
// Listening is `start()`; `server/main.ts` only reads the config and calls it.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { execute, GraphQLError, subscribe, type DocumentNode, type ExecutionArgs } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import { EnvelopArmorPlugin } from '@escape.tech/graphql-armor';
import { createYoga, type YogaServerInstance } from 'graphql-yoga';
import { WebSocketServer } from 'ws';
import { createExecutorHost, type ExecutorHost } from '../plugins/host';
import { createExecutorRegistry } from '../plugins/registry';
import type { Executor } from '../plugins/sdk';
import { createLoaders, type Context, type Services } from '../schema/context';
import { schema } from '../schema';
import { createFileObjectStore } from './artifacts/store';
import { readableBy } from './cache/access';
import { createTaskCache } from './cache/store';
import { defineAbilityFor } from './auth/ability';
import { ensureIdentity, identityForToken, issueToken, mintToken, sessionForToken } from './auth/tokens';
import { createMemoryBus } from '../plugins/bus/memory';
import type { Bus, Subscription } from '../plugins/bus/types';
import { defaultHostName, type Config } from './config';
import { executorsFromEnv } from './executors';
import { openDatabase, type Database } from './db/client';
import { AtelierError } from './errors';
import { createRunFeed, type FeedEvent } from './feed';
import { createOutboxRelay } from './outbox';
import { createHotClusterService } from './orchestrator/hot-clusters';
import { createOrchestrator, type OrchestratorOptions } from './orchestrator/orchestrator';
import { DEFAULT_GPU_POOL } from './orchestrator/routing';
import { createScheduler } from './scheduler/scheduler'; // scheduler
import { serveStatic } from './http/static';
import { buildFromGit, parsePushEvent, verifySignature } from './modules/git-hook';
import { grantsOf } from './governance/grants';
import type { Identity } from './db/tables/identities';

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
  /** Who may reuse whose cached results (default: the starter's CASL ability reads the source run). */
  mayReuse?: OrchestratorOptions['mayReuse'];
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
  // An owner's reservation lives as long as its host may stay silent before the task is presumed lost.
  const cache = createTaskCache({ objects: store, reservationTtlMs: config.heartbeatTimeoutMs, maxBytes: config.cacheMaxBytes });
  const mayReuse = options.mayReuse ?? readableBy;
  const orchestrator = createOrchestrator({
    db,
    feed,
    onOutbox: () => relay.kick(),
    defaults: planDefaults,
    poolLimits: config.poolLimits,
    heartbeatTimeoutMs: config.heartbeatTimeoutMs,
    cache,
    mayReuse,
    catalogCeiling: config.catalogCeiling,
  });
  // scheduler: cron schedules start runs; on Postgres only the replica holding the advisory lock fires them
  const scheduler = createScheduler({ db, orchestrator, clock: { now: () => new Date() }, leaderLock: database.kind === 'postgres', log: (m) => log(`scheduler: ${m}`) });
  const hotClusters = createHotClusterService({ db, bus, hostStaleMs: config.hostStaleMs });
  const services: Services = { db, store, feed, orchestrator, config, planDefaults, cache, mayReuse, hotClusters };

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
    // Hostile documents are refused at validation, before any resolver runs, on HTTP, SSE and graphql-ws alike
    // (the graphql-ws server validates through the same envelop): deep nesting, alias floods, huge documents.
    plugins: [EnvelopArmorPlugin(armorConfig)],
    context: async (initial) => {
      const request = initial.request as Request | undefined;
      const connectionParams = (initial as { connectionParams?: Record<string, unknown> }).connectionParams;
      const token = bearer(request?.headers.get('authorization')) ?? bearer(connectionParams?.authorization) ?? stringOrNull(connectionParams?.token);
      if (!token) throw new AtelierError('UNAUTHENTICATED', 'Missing bearer token: send "Authorization: Bearer <token>" (the admin token is in $ATELIER_DATA_DIR/admin-token).');
      const session = await sessionForToken(db, token);
      if (!session) throw new AtelierError('UNAUTHENTICATED', 'The bearer token is unknown, expired or revoked; ask an admin for a new one.');
      const { identity, scopes, grants } = session;
      return { identity, token, scopes, ability: defineAbilityFor(identity, grants, scopes), grants, services, loaders: createLoaders(db) };
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

  /** Answers a request whose body was already read, streaming the response (SSE included) until either side ends. */
  const forward = async (req: IncomingMessage, res: ServerResponse, body: Buffer) => {
    const abort = new AbortController();
    res.on('close', () => abort.abort());
    const headers = new Headers();
    for (const [name, value] of Object.entries(req.headers)) if (typeof value === 'string') headers.set(name, value);
    headers.delete('content-length');
    const response = await yoga.fetch(`http://${req.headers.host ?? 'localhost'}${req.url ?? '/graphql'}`, { method: 'POST', headers, body, signal: abort.signal }, { req, res });
    res.writeHead(response.status, Object.fromEntries(response.headers));
    if (!response.body) return void res.end();
    try {
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        if (res.destroyed) break;
        if (!res.write(chunk)) await new Promise((resolve) => (res.once('drain', resolve), res.once('close', resolve)));
      }
    } catch {
      // the client went away: the stream was cancelled through the abort signal
    }
    res.end();
  };

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
    if (url.pathname === '/hooks/git') return gitHook(req, res);
    if (url.pathname === '/graphql' || url.pathname.startsWith('/graphql?')) {
      // File uploads may be large; any other request is a document and its variables, and is read whole first,
      // so a body past the limit is refused however it is sent (with a content length or chunked).
      const upload = (req.headers['content-type'] ?? '').startsWith('multipart/form-data');
      const limit = upload ? config.maxUploadBytes + 1024 * 1024 : config.maxRequestBytes;
      const tooLarge = () =>
        res
          .writeHead(413, { 'content-type': 'application/json', connection: 'close' })
          .end(JSON.stringify({ errors: [{ message: `Request body too large (limit ${limit} bytes${upload ? '' : '; set ATELIER_MAX_REQUEST_KB to allow more'}).`, extensions: { code: 'PAYLOAD_TOO_LARGE' } }] }), () => req.destroy());
      if (Number(req.headers['content-length'] ?? 0) > limit) return tooLarge();
      if (upload || req.method !== 'POST') return yoga(req, res);
      const body = await readBodyWithin(req, limit);
      if (!body) return tooLarge();
      return forward(req, res, body);
    }
    return serveStatic(req, res, dashboardsDir);
  };

  /** A push event from CI or a git host: authenticated by a bearer token or an HMAC signature of the body. */
  const gitHook = async (req: IncomingMessage, res: ServerResponse) => {
    const reply = (status: number, body: unknown) => void res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    const fail = (error: AtelierError) => reply(Number((error.extensions.http as { status: number }).status), { error: { code: error.code, message: error.message, details: error.details } });
    if (req.method !== 'POST') return fail(new AtelierError('BAD_USER_INPUT', 'POST a push event as JSON to /hooks/git.'));
    const body = Number(req.headers['content-length'] ?? 0) > GIT_HOOK_MAX_BYTES ? null : await readBodyWithin(req, GIT_HOOK_MAX_BYTES).catch(() => null);
    if (!body) {
      res.once('finish', () => req.destroy());
      return fail(new AtelierError('PAYLOAD_TOO_LARGE', `A push event is at most ${GIT_HOOK_MAX_BYTES} bytes.`));
    }
    const token = bearer(req.headers.authorization);
    let identity: Identity | null = null;
    let scopes: string[] | null = null;
    if (token) ({ identity, scopes } = (await sessionForToken(db, token)) ?? { identity: null, scopes: null });
    else {
      const signature = header(req.headers['x-atelier-signature']) ?? header(req.headers['x-hub-signature-256']);
      if (signature && config.gitHookSecret && verifySignature(config.gitHookSecret, body, signature)) {
        identity = await ensureIdentity(db, { name: config.gitHookAccount, kind: 'service', role: 'member' });
      }
    }
    if (!identity) {
      return fail(
        new AtelierError(
          'UNAUTHENTICATED',
          config.gitHookSecret || token
            ? 'The bearer token or the body signature is missing or wrong: sign the exact body with HMAC-SHA256 under ATELIER_GIT_HOOK_SECRET (X-Atelier-Signature: sha256=HEX), or send a service token.'
            : 'Send a service token (Authorization: Bearer …); signed events need ATELIER_GIT_HOOK_SECRET set on the server.',
        ),
      );
    }
    try {
      let parsed: unknown;
      try {
        parsed = JSON.parse(body.toString('utf8'));
      } catch {
        throw new AtelierError('BAD_USER_INPUT', 'The body is not JSON.');
      }
      const ability = defineAbilityFor(identity, await grantsOf(db, identity), scopes);
      if (!ability.can('publish', 'Module')) throw new AtelierError('FORBIDDEN', `${identity.name} may not publish modules.`);
      reply(200, await buildFromGit({ db, store, allowedRepositories: config.gitRepositories }, ability, identity, parsePushEvent(parsed)));
    } catch (error) {
      if (error instanceof AtelierError) return fail(error);
      throw error;
    }
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
      wss = new WebSocketServer({ server, path: '/graphql', maxPayload: config.maxRequestBytes });
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
            let document: DocumentNode;
            try {
              document = enveloped.parse(payload.query);
            } catch (error) {
              // A syntax error, or a document the parse-time limits refuse: answered as errors, never a closed socket.
              return [error instanceof GraphQLError ? error : new GraphQLError((error as Error).message)];
            }
            const args = {
              schema: enveloped.schema,
              operationName: payload.operationName,
              document,
              variableValues: payload.variables,
              contextValue: await enveloped.contextFactory(),
              rootValue: { execute: enveloped.execute, subscribe: enveloped.subscribe },
            };
            let errors: readonly GraphQLError[];
            try {
              errors = enveloped.validate(args.schema, args.document);
            } catch (error) {
              return [error instanceof GraphQLError ? error : new GraphQLError((error as Error).message)]; // the armor rules throw
            }
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

/** Limits on any one GraphQL document; the dashboards' and CLI's largest operations stay well inside them. */
const armorConfig = {
  maxDepth: { n: 12, ignoreIntrospection: true },
  maxAliases: { n: 30 },
  maxDirectives: { n: 20 },
  maxTokens: { n: 4000 },
  costLimit: { maxCost: 20_000 },
  blockFieldSuggestion: { enabled: true },
};

const header = (value: string | string[] | undefined): string | undefined => (Array.isArray(value) ? value[0] : value);

const GIT_HOOK_MAX_BYTES = 1024 * 1024;

/** The whole body, or null as soon as it passes `limit` bytes (the rest is not read). */
function readBodyWithin(req: IncomingMessage, limit: number): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) return void chunks.push(chunk);
      req.off('data', onData);
      req.pause();
      resolve(null);
    };
    req.on('data', onData);
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}
