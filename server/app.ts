// The composition root: builds the control plane from a config (database, bus, object store, orchestrator, services,
// GraphQL API, HTTP routes) and lists what runs in start order; `server/main.ts` reads the config and calls `start()`.
import { randomUUID } from 'node:crypto';
import { DEFAULT_MAX_PAYLOAD_BYTES } from '../plugins/bus/payload-limit';
import type { Bus } from '../plugins/bus/types';
import type { Executor } from '../plugins/sdk';
import type { Services } from '../schema/context';
import { checkAtTokenChanges } from '../schema/live-access';
import { objectCollector } from './artifacts/collect';
import { partialsSweep } from './artifacts/partials';
import { objectStoreClaim } from './artifacts/replicas';
import { createTokenCache, useTokenCache } from './auth/token-cache';
import { tokenWatch } from './auth/token-watch';
import { readableBy } from './cache/access';
import { createTaskCache } from './cache/store';
import { createHotClusterService } from './compute/hot-clusters';
import { DEFAULT_GPU_POOL } from './compute/routing';
import { type Config, defaultHostName } from './config';
import type { Database } from './db/client';
import { deploymentServiceFor } from './deployments/from-config';
import { alsoKicking, type DeploymentServiceOptions } from './deployments/service';
import { createClaimServer } from './events/claims';
import { createRunFeed } from './events/feed';
import { feedFromBus } from './events/feed-from-bus';
import { createLiveSubscriptions } from './events/live-subscriptions';
import { createOutboxRelay } from './events/outbox-relay';
import { createEventRecorder, EVENTS_DURABLE } from './events/recorder';
import { EMBEDDED_HOST_SUFFIX, embeddedExecutorHost } from './executors';
import { openFoundations } from './foundations';
import { createFreshnessCheck } from './governance/freshness';
import { useArtifacts } from './http/routes/artifacts';
import { useDashboards } from './http/routes/dashboards';
import { useGitHook } from './http/routes/git-hook';
import { useGraphql } from './http/routes/graphql';
import { useHealthCheck } from './http/routes/health';
import { useMetrics } from './http/routes/metrics';
import { useMlflow } from './http/routes/mlflow';
import { useObservations } from './http/routes/observations';
import { useReadinessCheck } from './http/routes/ready';
import { useTriggerHooks } from './http/routes/trigger-hooks';
import { createHttpService } from './http/server';
import { createUploadBudget, UPLOADS_AT_THE_LIMIT } from './http/upload-budget';
import { urlFileService } from './http/url-file';
import { type ApiYoga, createApiYoga } from './http/yoga';
import { createLifecycle, periodic } from './lifecycle';
import { createLivePages } from './live-pages';
import { registerDatabaseGauges } from './metrics/database-gauges';
import { createInstruments } from './metrics/instruments';
import { createAlertActionWorker } from './monitoring/actions';
import { createMonitorEvaluator } from './monitoring/evaluator';
import { freshnessAlerts } from './monitoring/freshness-alerts';
import { pruneObservations } from './monitoring/observations';
import { busProbes, createOrchestrator, type OrchestratorOptions } from './orchestrator/orchestrator';
import { ClaimReservations } from './orchestrator/reservations';
import { createRegistrationHandler } from './registry/from-tasks';
import { acrossReplicas, createRegistryFeed } from './registry/live';
import { createScheduler } from './scheduler/scheduler';
import { pruneHandledSignals } from './signals/signals';
import { pruneExpiredTaskTokens, taskTracking } from './tracking/task-tokens';
import { createTriggerDispatcher } from './triggers/dispatcher';
import { pruneWebhookDeliveries } from './webhooks/deliveries';
import { createWebhookWorker } from './webhooks/worker';

/** How often successes whose model registrations a crash interrupted are looked for (server/registry/from-tasks.ts). */
const REGISTRATION_RECOVERY_MS = 60_000;
/** How often expired task tokens are deleted (one is minted per attempt). */
const TASK_TOKEN_PRUNE_MS = 10 * 60_000;
/** How often records past their retention (finished webhook deliveries, handled signals, observations) are deleted. */
const RETENTION_MS = 60 * 60_000;

export interface App {
  yoga: ApiYoga;
  services: Services;
  bus: Bus;
  database: Database;
  adminToken: string;
  /** Listens on the configured port (0 picks a free one); resolves with the base URL. */
  start(): Promise<string>;
  /** Stops everything `start` started, in reverse order, then closes the bus and the database; idempotent. */
  stop(): Promise<void>;
}

export interface BuildOptions {
  /** Executors for the embedded host (default: local and noop). */
  executors?: Executor[];
  log?: (message: string) => void;
  /** Who may reuse whose cached results (default: the starter's CASL ability reads the source run). */
  mayReuse?: OrchestratorOptions['mayReuse'];
  /** Deployers beside the local one (kserve, webhook, …), and the local deployer's options. */
  deployments?: Pick<DeploymentServiceOptions, 'deployers' | 'localDeployer'>;
  /** Waits a test shortens: the database gauges' cache (default DATABASE_GAUGES_TTL_MS), the event recorder's ack wait (10 s). */
  waits?: { databaseGaugesTtlMs?: number; eventAckWaitMs?: number };
  /** The dashboards folder whose build is served (default the repository's `dashboards/`; tests build one of their own). */
  dashboardsDir?: string;
}

export async function buildApp(config: Config, options: BuildOptions = {}): Promise<App> {
  const log = options.log ?? (config.logLevel === 'silent' ? () => {} : (m: string) => console.log(m));
  const { bus, database, store, adminToken, adminTokenHold } = await openFoundations(config, log);
  const { db } = database;
  // With NATS, live events go through the bus to every replica's subscribers; the database numbers and keeps them (feed.ts).
  // This app's own metrics (GET /metrics), in a registry of its own.
  const instruments = createInstruments();
  registerDatabaseGauges(instruments.registry, { db, hostStaleMs: config.hostStaleMs, ttlMs: options.waits?.databaseGaugesTtlMs });
  const feed = createRunFeed({ db, transport: bus.kind === 'jetstream' ? { publish: (events, tooLarge) => bus.publishFeed(events, tooLarge) } : undefined });
  // Deployments and executor hosts, live: change signals where they are learned, read once per replica (live-changes.ts).
  const live = createLivePages(db, bus, config.hostStaleMs, log);
  const relay = createOutboxRelay({ db, bus, instruments, onError: (e) => log(`outbox relay: ${(e as Error).message} (will retry)`) });
  const webhooks = createWebhookWorker({ db, config: config.webhooks, log });
  const freshness = createFreshnessCheck({
    db,
    alerts: freshnessAlerts,
    onRecorded: () => {
      webhooks.kick();
      triggers.kick(); // an alert it opened may start runs
    },
    log,
  });
  const registrations = createRegistrationHandler({ db, store, feed, log });
  // With NATS, every replica's registry feed reads when any replica commits registry events.
  const registryLog = (e: unknown) => log(`registry events: ${(e as Error).message}`);
  const localRegistryFeed = createRegistryFeed(db, registryLog);
  const shared =
    bus.kind === 'jetstream'
      ? acrossReplicas(
          localRegistryFeed,
          {
            publish: () => bus.publishControl('registry-changed', { at: new Date().toISOString() }),
            subscribe: (onKick) => bus.subscribeControl('registry-changed', () => onKick()),
          },
          registryLog,
        )
      : null;
  const registryFeed = alsoKicking(shared?.feed ?? localRegistryFeed, () => deployments.kick());
  const planDefaults = {
    timeoutMs: config.defaultTaskTimeoutMs,
    executor: 'local',
    gpuRouting: { gpuPools: config.gpuPools, fallbackPool: DEFAULT_GPU_POOL },
    hostStaleMs: config.hostStaleMs,
  };
  // An owner's reservation lives as long as its host may stay silent before the task is presumed lost.
  const cache = createTaskCache({ objects: store, reservationTtlMs: config.heartbeatTimeoutMs, maxBytes: config.cacheMaxBytes });
  const mayReuse = options.mayReuse ?? readableBy;
  // Unique to this start, not only to this host and pid: a container restarted runs `npm start` under the same hostname
  // and, often, the same pid, and the earlier start's attempts would pass for this one's (not known ended).
  const embeddedHostName = `${defaultHostName()}-${randomUUID().slice(0, 8)}${EMBEDDED_HOST_SUFFIX}`;
  // MLflow clients in a task log to the URL hosts reach the control plane at (ATELIER_PUBLIC_URL, or where it listens).
  const tracking = taskTracking(db, () => config.publicUrl ?? http.url());
  // Small dispatches reserve their attempts' first claims; the claim server answers those from memory.
  const reservations = config.claimReservations ? new ClaimReservations({ tracking: tracking.known }) : undefined;
  const orchestrator = createOrchestrator({
    reservations,
    db,
    feed,
    onOutbox: () => {
      relay.kick();
      webhooks.kick();
      triggers.kick();
    },
    publishCommitted: (messages) => {
      relay.publishCommitted(messages);
      live.hosts.poolsChanged(); // tasks queued: the executors page's waiting counts
    },
    takePublished: () => relay.takePublished(),
    maxMessageBytes: () => bus.maxPayloadBytes?.() ?? DEFAULT_MAX_PAYLOAD_BYTES,
    maxLogBytes: config.executorMaxLogBytes,
    maxLogLines: config.maxLogLines,
    taskBatchMax: config.taskBatchMax,
    instruments,
    defaults: planDefaults,
    poolLimits: config.poolLimits,
    heartbeatTimeoutMs: config.heartbeatTimeoutMs,
    endedHosts: database.kind === 'pglite' ? { suffix: EMBEDDED_HOST_SUFFIX, current: embeddedHostName } : undefined,
    ...busProbes(bus, EVENTS_DURABLE),
    cache,
    mayReuse,
    catalogCeiling: config.catalogCeiling,
    onRegistrations: (batch) =>
      registrations.register(batch).finally(() => {
        webhooks.kick();
        registryFeed.kick();
        triggers.kick();
      }),
  });
  // Cron schedules start runs; on Postgres only the replica holding the advisory lock fires them.
  const scheduler = createScheduler({
    db,
    orchestrator,
    clock: { now: () => new Date() },
    leaderLock: database.kind === 'postgres',
    log: (m) => log(`scheduler: ${m}`),
    onWebhooks: () => webhooks.kick(),
  });
  // Triggers start runs on signals (new dataset versions, alias moves, runs succeeding, alerts, inbound hooks).
  const triggers = createTriggerDispatcher({
    db,
    orchestrator,
    leaderLock: database.kind === 'postgres',
    pollMs: config.triggerPollMs,
    log: (m) => log(`triggers: ${m}`),
  });
  // What an alert's opening does besides notifying: start a retraining run, roll an alias back (once per alert).
  const monitorActions = createAlertActionWorker({
    db,
    orchestrator,
    pollMs: config.monitorEvalMs,
    log,
    afterPass: () => {
      webhooks.kick(); // alias.moved of a rollback
      triggers.kick(); // ALIAS_MOVED triggers
    },
  });
  const hotClusters = createHotClusterService({
    db,
    bus,
    hostStaleMs: config.hostStaleMs,
    maxIdleMs: config.hotClusterMaxIdleMs,
    pools: config.hotClusterPools,
    onChange: (name) => live.hosts.clusterChanged(name),
  });
  // A rollback's alert may start ALERT_OPENED triggers.
  const deployments = deploymentServiceFor(
    config,
    { db, store, bus, log, afterCommit: [webhooks, triggers], changes: live.changes, metrics: instruments.registry },
    options.deployments,
  );
  const subscriptions = createLiveSubscriptions({ perToken: config.maxSubscriptionsPerToken, total: config.maxSubscriptions });
  instruments.gaugeOf('subscriptions_open', 'Live subscriptions (graphql-ws and SSE) open on this replica.', () => subscriptions.count());
  // Live tokens' sessions, remembered a moment; a change ends them here, on the other replicas, and rechecks subscriptions.
  const tokens = useTokenCache(db, createTokenCache({ ttlMs: config.tokenCacheTtlMs }));
  checkAtTokenChanges(tokens, subscriptions);
  const services: Services = {
    db,
    store,
    feed,
    subscriptions,
    orchestrator,
    config,
    planDefaults,
    cache,
    mayReuse,
    hotClusters,
    webhooks,
    registryFeed,
    triggers,
    deployments,
    liveChanges: live.changes,
    deploymentWatch: live.deploymentWatch,
  };

  const yoga = createApiYoga({ services, logLevel: config.logLevel, instruments });
  const uploads = createUploadBudget(UPLOADS_AT_THE_LIMIT * (config.maxUploadBytes + 1024 * 1024));
  const http = createHttpService({
    port: config.port,
    host: config.host,
    yoga,
    db,
    maxRequestBytes: config.maxRequestBytes,
    drainGraceMs: config.shutdownGraceMs,
    log,
    counted: instruments.httpRequest,
    trustedProxies: config.trustedProxies,
    // Asked in order; the dashboards answer whatever no other route does.
    routes: [
      useHealthCheck({ db, database: database.kind, bus: bus.kind }),
      useReadinessCheck({ db, probeBus: () => bus.eventBacklog(EVENTS_DURABLE), phase: () => phase }),
      useMetrics({ db, instruments, public: config.metricsPublic }),
      useArtifacts({ db, store }),
      useGitHook({
        db,
        store,
        secret: config.gitHookSecret,
        account: config.gitHookAccount,
        repositories: { allowed: config.gitRepositories, outboundAllow: config.outboundAllow },
        maxUnpackedBytes: config.maxUnpackedBytes,
      }),
      useTriggerHooks({ db, kick: () => triggers.kick() }),
      useObservations({ db }),
      useMlflow({
        db,
        feed,
        store,
        maxArtifactBytes: config.maxUploadBytes,
        uploads,
        afterWrite: () => {
          registryFeed.kick();
          webhooks.kick();
          triggers.kick();
        },
      }),
      useGraphql({
        yoga,
        db: database.db,
        maxRequestBytes: config.maxRequestBytes,
        maxUploadBytes: config.maxUploadBytes,
        uploads,
        corsOrigins: config.corsOrigins,
      }),
      useDashboards({ root: options.dashboardsDir, settings: { fallbackPollMs: config.fallbackPollMs } }),
    ],
  });

  const recorderConsumer = { ackWaitMs: options.waits?.eventAckWaitMs, maxInFlightBytes: config.eventInFlightBytes };
  // Started in this order, stopped in reverse: the outbox relay outlives everything that writes outbox rows, and
  // the HTTP server, which takes new work, stops first.
  const lifecycle = createLifecycle([
    objectStoreClaim({ db, store, name: defaultHostName(), adminToken: config.adminToken, adminTokenHold, log }),
    partialsSweep({ store, log }),
    objectCollector({ db, store, ...config.objectGc, leaderLock: database.kind === 'postgres', log }),
    { name: 'outbox relay', start: () => relay.start(), stop: () => relay.stop() },
    webhooks,
    freshness,
    ...(bus.kind === 'jetstream' ? [feedFromBus(bus, feed)] : []),
    ...(shared ? [shared.service] : []),
    live.service,
    tokenWatch(tokens, database, log),
    periodic('run feed check', config.feedCheckMs, () => feed.check(), log),
    createEventRecorder({ bus, ...live.recording(orchestrator, hotClusters), log, instruments, ...recorderConsumer }),
    // Before any host of this process asks whether it may run an attempt.
    createClaimServer({
      bus,
      orchestrator,
      log,
      heartbeatTimeoutMs: config.heartbeatTimeoutMs,
      tracking,
      reservations,
    }),
    { name: 'scheduler', start: () => scheduler.start(), stop: () => scheduler.stop() },
    { name: 'trigger dispatcher', start: () => triggers.start(), stop: () => triggers.stop() },
    periodic('task token pruning', TASK_TOKEN_PRUNE_MS, () => pruneExpiredTaskTokens(db).then(() => undefined), log),
    periodic(
      'model registration recovery',
      REGISTRATION_RECOVERY_MS,
      async () => {
        if (await registrations.recover()) {
          webhooks.kick();
          registryFeed.kick();
        }
      },
      log,
    ),
    periodic(
      'retention',
      RETENTION_MS,
      async () => {
        await pruneWebhookDeliveries(db, config.webhooks.retentionDays);
        await pruneHandledSignals(db, config.retention.signalDays);
        await pruneObservations(db, config.retention.observationDays);
      },
      log,
    ),
    createMonitorEvaluator({
      db,
      pollMs: config.monitorEvalMs,
      log,
      afterOpen: () => {
        webhooks.kick();
        triggers.kick(); // ALERT_OPENED triggers
        monitorActions.kick(); // the monitors' START_WORKFLOW and ROLLBACK_ALIAS actions
      },
    }),
    monitorActions,
    deployments,
    periodic('orchestrator tick', config.tickMs, () => orchestrator.tick().then(() => hotClusters.tick()), log),
    http,
    urlFileService(config.dataDir, () => http.url()),
    // Last, so it stops first: within its stop grace its attempts finish and report while the replica still serves
    // them (artifacts, MLflow calls) and the orchestrator still records their outcomes.
    ...(config.embeddedExecutor ? [embeddedExecutorHost(config, { bus, store, executors: options.executors, hostName: embeddedHostName, log })] : []),
  ]);

  let stopping: Promise<void> | undefined;
  let phase: 'starting' | 'running' | 'stopping' = 'starting';
  return {
    yoga,
    services,
    bus,
    database,
    adminToken,
    async start() {
      await lifecycle.start();
      phase = 'running';
      return http.url();
    },
    stop() {
      phase = 'stopping';
      stopping ??= (async () => {
        await lifecycle.stop();
        subscriptions.endAll(); // closing the sockets ended them all already: nothing may outlive the app
        await store.close();
        await bus.close();
        await adminTokenHold?.release(); // never started
        await database.close();
      })();
      return stopping;
    },
  };
}
