// Configuration from environment variables, with defaults (defaults.ts) that run everything embedded on one machine.
import os from 'node:os';
import path from 'node:path';
import { DEFAULT_DEPLOY_PORTS, type PortRange, parsePortRange } from '../../plugins/deployers/local/ports';
import { redactUrl } from '../../plugins/redact-url';
import { type OutboundAllow, parseOutboundAllow } from '../net/outbound';
import { type Level, levels, normaliseCategories } from '../vocabulary';
import {
  DEFAULT_CATALOG_CEILING,
  DEFAULT_DATA_DIR,
  DEFAULT_EVENT_IN_FLIGHT_MB,
  DEFAULT_HEARTBEAT_TIMEOUT_MS,
  DEFAULT_HOST,
  DEFAULT_HOST_STALE_MS,
  DEFAULT_HOT_CLUSTER_MAX_IDLE_MS,
  DEFAULT_MAX_SUBSCRIPTIONS,
  DEFAULT_MAX_SUBSCRIPTIONS_PER_TOKEN,
  DEFAULT_MAX_UNPACKED_MB,
  DEFAULT_MONITOR_EVAL_MS,
  DEFAULT_PORT,
  DEFAULT_TASK_BATCH_MAX,
  DEFAULT_TOKEN_CACHE_TTL_MS,
} from './defaults';
import { parseCorsOrigins, parseHotClusterPools, parsePoolCounts, parseWebhookAllowlist } from './lists';
import { type ObjectStoreConfig, parseDownloadRetryMs, parseObjectStore } from './object-store';
import {
  addressRanges,
  ConfigError,
  executorStopGraceMs,
  flag,
  httpUrl,
  int,
  listenHost,
  maxLogBytes,
  maxLogLines,
  poolList,
  taskInFlightBytes,
} from './parse';
import { adminTokenOf, gitHookSecretOf } from './secrets';

export type { ObjectStoreConfig } from './object-store';

export interface Config {
  port: number;
  host: string;
  /** Real Postgres when set; embedded PGlite under `dataDir` otherwise. */
  databaseUrl?: string;
  /** NATS JetStream when set; the in-process bus otherwise. */
  natsUrl?: string;
  dataDir: string;
  /** Run an executor host inside the control plane (default: only without NATS). */
  embeddedExecutor: boolean;
  /** Pools the embedded executor host serves. */
  pools: string[];
  /**
   * Small dispatches reserve their attempts' first claims, answered from memory (server/orchestrator/reservations.ts).
   * Off: every claim is answered by the claim query (several replicas whose hosts' claims mostly reach another one).
   */
  claimReservations: boolean;
  /** A fixed admin token (otherwise one is minted and kept in `$dataDir/admin-token`). */
  adminToken?: string;
  defaultTaskTimeoutMs: number;
  /** Most bytes an uploaded artifact may have. */
  maxUploadBytes: number;
  /** The most an uploaded or built module archive may inflate to; inflation stops there (`ATELIER_MAX_UNPACKED_MB`). */
  maxUnpackedBytes: number;
  /** The most a GraphQL request that is not a file upload may carry (JSON body or graphql-ws message). */
  maxRequestBytes: number;
  publicUrl?: string;
  /** `GET /metrics` answers without a token (`ATELIER_METRICS_PUBLIC=1`): only for a scraper on a private network. */
  metricsPublic: boolean;
  /** Most tasks queued or running at once per pool (`ATELIER_POOL_LIMITS=gpu=2,local=8`). */
  poolLimits: Record<string, number>;
  /** A running task whose host sent nothing for this long is presumed lost and retried. */
  heartbeatTimeoutMs: number;
  /** Postgres leaving a probe unanswered this long is out of reach: requests answered UNAVAILABLE (server/db/reachability.ts). */
  databaseUnreachableMs: number;
  /** Stopping (SIGTERM) waits this long for HTTP requests in flight before dropping them (`ATELIER_SHUTDOWN_GRACE_SECONDS`). */
  shutdownGraceMs: number;
  /** Most tasks one bus message carries (`ATELIER_TASK_BATCH_MAX`; 1: a message per task, for hosts below protocol 3). */
  taskBatchMax: number;
  /** An executor host silent for this long is stale: not counted as live when routing and listing. */
  hostStaleMs: number;
  /** Declared GPU pools, GPUs per host (`ATELIER_GPU_POOLS=gpu-a100=8,gpu-t4=1`); see compute/routing.ts. */
  gpuPools: Record<string, number>;
  /** The longest idle timeout a hot cluster may be given (`ATELIER_HOT_CLUSTER_MAX_IDLE_SECONDS`, default 24 h). */
  hotClusterMaxIdleMs: number;
  /**
   * The pools members may create hot clusters on, each for some teams or all (`ATELIER_HOT_CLUSTER_POOLS=gpu-a100:vision+nlp,local`);
   * null (unset): any pool no other owner's live cluster holds. Admins may use any pool.
   */
  hotClusterPools: Record<string, string[] | '*'> | null;
  /** GPUs the embedded executor host advertises. */
  executorGpus: number;
  /** On SIGTERM, how long the embedded host's running attempts may finish before the rest are handed back (`ATELIER_EXECUTOR_STOP_GRACE_SECONDS`). */
  executorStopGraceMs: number;
  /** The most log bytes the embedded host publishes, and the control plane records, per attempt (`ATELIER_MAX_LOG_BYTES`; default: the host's). */
  executorMaxLogBytes: number | undefined;
  /** The most bytes of executor events a replica holds off the bus, not yet recorded (`ATELIER_EVENT_IN_FLIGHT_MB`). */
  eventInFlightBytes: number;
  /** The most log lines the control plane records per attempt (`ATELIER_MAX_LOG_LINES`; default: DEFAULT_MAX_LOG_LINES). */
  maxLogLines: number | undefined;
  /** Attempts the embedded executor host runs at once (`ATELIER_EXECUTOR_CONCURRENCY`; default: the CPUs). */
  executorConcurrency: number | undefined;
  /** The most bytes of task messages the embedded host holds per pool (`ATELIER_TASK_IN_FLIGHT_MB`; default: the host's). */
  executorTaskInFlightBytes: number | undefined;
  /** How often the monitor evaluator looks for due monitors (server/monitoring/evaluator.ts). */
  monitorEvalMs: number;
  /** How often the orchestrator looks for due retries, lost hosts, free slots and waiting runs. */
  tickMs: number;
  /** How often each watched run's stored live events are compared with what the feed delivered (gaps are filled). */
  feedCheckMs: number;
  /** The trigger dispatcher's fallback poll (it is kicked after commits that record signals). */
  triggerPollMs: number;
  /** The deployment reconciler's fallback poll (it is kicked after registry changes); also how often rollouts step. */
  deploymentPollMs: number;
  /** How long a dead replica's claim on a deployment blocks the others (`ATELIER_DEPLOYMENT_LEASE_MS`, default 30 s; renewed while held). */
  deploymentLeaseMs: number;
  /** How often each deployment's serving observations (requests, error rate, latency per revision) are recorded. */
  deploymentStatsMs: number;
  /** How long a deployment its deployer serves and no row names (after a restore) runs on before it is stopped. */
  deploymentOrphanGraceMs: number;
  /** Whether such orphans are stopped (`ATELIER_DEPLOYMENT_STOP_ORPHANS`, default true) or only reported. */
  deploymentStopOrphans: boolean;
  /** The ports a local deployment's `settings.port` may name (`ATELIER_LOCAL_DEPLOY_PORTS`, default 8100-8199). */
  localDeployPorts: PortRange;
  /** Size budget of the task cache's entries: beyond it the least recently used are evicted. */
  cacheMaxBytes: number;
  logLevel: 'silent' | 'info' | 'debug';
  /** Shared secret for HMAC-signed `POST /hooks/git` deliveries (HMAC-SHA256 of `TIMESTAMP.DELIVERY.BODY`, see the README). */
  gitHookSecret?: string;
  /** The service account HMAC-signed git events publish as (it needs team membership like anyone else). */
  gitHookAccount: string;
  /** Repositories `POST /hooks/git` may clone (normalised, matched by whole path segments); local paths only when listed. */
  gitRepositories: string[];
  /**
   * Private, loopback and link-local ranges the server may reach for a user's request (a webhook, an unlisted
   * repository): `ATELIER_OUTBOUND_ALLOW_PRIVATE=10.0.0.0/8,127.0.0.1` or `all`. Empty (the default): public addresses only.
   */
  outboundAllow: OutboundAllow;
  /** How often the tokens of open subscriptions are checked again (a revoked one ends them). */
  tokenRecheckMs: number;
  /** How long a live token's session is remembered (0: looked up on every request); a change said over the bus ends it sooner. */
  tokenCacheTtlMs: number;
  /** How often a dashboard's live page asks again while its WebSocket is down (`ATELIER_FALLBACK_POLL_MS`; served with the pages). */
  fallbackPollMs: number;
  /** Live subscriptions one token may hold at once, over graphql-ws and SSE together (`ATELIER_MAX_SUBSCRIPTIONS_PER_TOKEN`). */
  maxSubscriptionsPerToken: number;
  /** Live subscriptions this replica holds at most, all tokens together (`ATELIER_MAX_SUBSCRIPTIONS`). */
  maxSubscriptions: number;
  /**
   * What the interactive dataset catalog may show: every column at most `level` and in none of
   * `deniedCategories` (`ATELIER_CATALOG_CEILING=CONFIDENTIAL`, `ATELIER_CATALOG_DENY_CATEGORIES=PII`, or `none`).
   */
  catalogCeiling: { level: Level; deniedCategories: string[] };
  /** Where module archives and outputs live (`ATELIER_OBJECT_STORE=local|s3|nats`); replicas must share one. */
  objectStore: ObjectStoreConfig;
  /**
   * The object store's collector (server/artifacts/collect.ts): a pass every `everyMs` (`ATELIER_OBJECT_GC_HOURS`,
   * 0: never) deletes objects no row references and untouched for `graceMs` (`ATELIER_OBJECT_GC_GRACE_HOURS`, 1 at least).
   */
  objectGc: { everyMs: number; graceMs: number };
  /** How long downloads from the control plane retry connection errors and 5xx (`ATELIER_DOWNLOAD_RETRY_SECONDS`). */
  downloadRetryMs: number;
  /**
   * Origins whose pages may call the API from a browser (`ATELIER_CORS_ORIGINS=https://a.example,http://localhost:5173`);
   * `*` allows any origin without credentials. Empty (the default): same origin only, no CORS headers at all.
   */
  corsOrigins: string[];
  /**
   * Reverse proxies in front of the control plane (`ATELIER_TRUSTED_PROXIES=10.0.0.0/8,::1`): from one of them, a
   * request's address is the right-most X-Forwarded-For address that is not a listed proxy (server/http/peer.ts).
   * Empty (the default): the TCP peer, X-Forwarded-For ignored.
   */
  trustedProxies: string[];
  /** Outgoing webhooks: where they may post, and how they retry (see server/webhooks/). */
  webhooks: WebhookConfig;
  retention: RetentionConfig;
}

export interface WebhookConfig {
  /**
   * Origins or host patterns webhooks may post to (`ATELIER_WEBHOOK_ALLOWLIST=https://hooks.example.com,https://*.example.org,http://127.0.0.1:*`).
   * Empty (the default): none; every webhook URL is refused until it is set.
   */
  allowlist: string[];
  /** Private ranges webhooks may reach besides the allowlist's IP literals (the server's `outboundAllow`). */
  outboundAllow?: OutboundAllow;
  /** The first retry's delay; each next one doubles, with jitter (`ATELIER_WEBHOOK_BACKOFF_MS`, default 30 s: 8 tries span about an hour). */
  backoffMs: number;
  /** Tries per delivery before it is FAILED (`ATELIER_WEBHOOK_MAX_ATTEMPTS`, default 8). */
  maxAttempts: number;
  /** How long one POST may take (`ATELIER_WEBHOOK_TIMEOUT_MS`, default 10 s). */
  timeoutMs: number;
  /** How often the delivery worker looks for due deliveries besides being kicked after a commit (`ATELIER_WEBHOOK_POLL_MS`). */
  pollMs: number;
  /** Finished deliveries (and their attempts) are deleted after this many days (`ATELIER_WEBHOOK_RETENTION_DAYS`, default 30). */
  retentionDays: number;
}

/** How long records that only grow are kept; each is pruned hourly by the control plane. */
export interface RetentionConfig {
  /** Handled trigger signals (and their firings), by creation (`ATELIER_SIGNAL_RETENTION_DAYS`, default 30). */
  signalDays: number;
  /** Monitoring observations, by the time they were taken (`ATELIER_OBSERVATION_RETENTION_DAYS`, default 400). */
  observationDays: number;
}

export { ConfigError } from './parse';
export { MIN_ADMIN_TOKEN_LENGTH, MIN_GIT_HOOK_SECRET_LENGTH } from './secrets';

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const natsUrl = env.NATS_URL || undefined;
  const databaseUrl = env.DATABASE_URL || undefined;
  if (databaseUrl && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    throw new ConfigError(`DATABASE_URL must be a postgres:// URL (got "${redactUrl(databaseUrl)}"). Unset it to use the embedded database.`);
  }
  if (natsUrl && !/^(nats|tls|wss?):\/\//.test(natsUrl) && !/^[\w.-]+:\d+$/.test(natsUrl)) {
    throw new ConfigError(`NATS_URL must look like nats://host:4222 (got "${redactUrl(natsUrl)}"). Unset it to use the in-process bus.`);
  }
  const logLevel = (env.ATELIER_LOG_LEVEL ?? 'info') as Config['logLevel'];
  if (!['silent', 'info', 'debug'].includes(logLevel)) throw new ConfigError(`ATELIER_LOG_LEVEL must be silent, info or debug (got "${logLevel}").`);
  const outboundAllow = parseOutboundAllow(env.ATELIER_OUTBOUND_ALLOW_PRIVATE, (m) => new ConfigError(m));
  return {
    port: int(env, 'PORT', DEFAULT_PORT, 0, 65535),
    host: listenHost(env, 'HOST', DEFAULT_HOST),
    databaseUrl,
    natsUrl,
    dataDir: path.resolve(env.ATELIER_DATA_DIR || DEFAULT_DATA_DIR),
    embeddedExecutor: flag(env, 'ATELIER_EMBEDDED_EXECUTOR', !natsUrl),
    pools: poolList(env, 'ATELIER_POOLS', ['local', 'noop']),
    claimReservations: flag(env, 'ATELIER_CLAIM_RESERVATIONS', true),
    adminToken: adminTokenOf(env.ATELIER_ADMIN_TOKEN),
    defaultTaskTimeoutMs: int(env, 'ATELIER_TASK_TIMEOUT_SECONDS', 3600, 1, 365 * 86_400) * 1000,
    maxUploadBytes: int(env, 'ATELIER_MAX_UPLOAD_MB', 256, 1, 1024 * 1024) * 1024 * 1024,
    maxUnpackedBytes: int(env, 'ATELIER_MAX_UNPACKED_MB', DEFAULT_MAX_UNPACKED_MB, 1, 1024 * 1024) * 1024 * 1024,
    maxRequestBytes: int(env, 'ATELIER_MAX_REQUEST_KB', 4096, 16, 1024 * 1024) * 1024,
    publicUrl: httpUrl(env, 'ATELIER_PUBLIC_URL', 'https://atelier.example.com'),
    metricsPublic: flag(env, 'ATELIER_METRICS_PUBLIC', false),
    poolLimits: parsePoolCounts('ATELIER_POOL_LIMITS', env.ATELIER_POOL_LIMITS, 'gpu=2,local=8'),
    heartbeatTimeoutMs: int(env, 'ATELIER_HEARTBEAT_TIMEOUT_SECONDS', DEFAULT_HEARTBEAT_TIMEOUT_MS / 1000, 1, 86_400) * 1000,
    databaseUnreachableMs: int(env, 'ATELIER_DATABASE_UNREACHABLE_SECONDS', 10, 1, 3600) * 1000,
    shutdownGraceMs: int(env, 'ATELIER_SHUTDOWN_GRACE_SECONDS', 20, 0, 3600) * 1000,
    taskBatchMax: int(env, 'ATELIER_TASK_BATCH_MAX', DEFAULT_TASK_BATCH_MAX, 1, 10_000),
    tickMs: int(env, 'ATELIER_TICK_MS', 1000, 10, 60_000),
    monitorEvalMs: int(env, 'ATELIER_MONITOR_EVAL_MS', DEFAULT_MONITOR_EVAL_MS, 100, 3_600_000),
    feedCheckMs: int(env, 'ATELIER_FEED_CHECK_MS', 1000, 50, 60_000),
    triggerPollMs: int(env, 'ATELIER_TRIGGER_POLL_MS', 1000, 20, 60_000),
    deploymentPollMs: int(env, 'ATELIER_DEPLOYMENT_POLL_MS', 1000, 20, 60_000),
    deploymentLeaseMs: int(env, 'ATELIER_DEPLOYMENT_LEASE_MS', 30_000, 1_000, 600_000),
    deploymentStatsMs: int(env, 'ATELIER_DEPLOYMENT_STATS_MS', 10_000, 100, 3_600_000),
    deploymentOrphanGraceMs: int(env, 'ATELIER_DEPLOYMENT_ORPHAN_GRACE_SECONDS', 600, 0, 30 * 86_400) * 1000,
    deploymentStopOrphans: flag(env, 'ATELIER_DEPLOYMENT_STOP_ORPHANS', true),
    localDeployPorts: env.ATELIER_LOCAL_DEPLOY_PORTS ? portRange(env.ATELIER_LOCAL_DEPLOY_PORTS) : DEFAULT_DEPLOY_PORTS,
    cacheMaxBytes: int(env, 'ATELIER_CACHE_MAX_BYTES', 1024 ** 3, 0, Number.MAX_SAFE_INTEGER),
    hostStaleMs: int(env, 'ATELIER_HOST_STALE_SECONDS', DEFAULT_HOST_STALE_MS / 1000, 1, 86_400) * 1000,
    gpuPools: parsePoolCounts('ATELIER_GPU_POOLS', env.ATELIER_GPU_POOLS, 'gpu-a100=8,gpu-t4=1'),
    executorGpus: int(env, 'ATELIER_EXECUTOR_GPUS', 0, 0, 1024),
    executorConcurrency: env.ATELIER_EXECUTOR_CONCURRENCY ? int(env, 'ATELIER_EXECUTOR_CONCURRENCY', 1, 1, 4096) : undefined,
    executorStopGraceMs: executorStopGraceMs(env),
    executorTaskInFlightBytes: taskInFlightBytes(env),
    executorMaxLogBytes: maxLogBytes(env),
    maxLogLines: maxLogLines(env),
    eventInFlightBytes: int(env, 'ATELIER_EVENT_IN_FLIGHT_MB', DEFAULT_EVENT_IN_FLIGHT_MB, 1, 64 * 1024) * 1024 * 1024,
    hotClusterMaxIdleMs: int(env, 'ATELIER_HOT_CLUSTER_MAX_IDLE_SECONDS', DEFAULT_HOT_CLUSTER_MAX_IDLE_MS / 1000, 1, 365 * 86_400) * 1000,
    hotClusterPools: parseHotClusterPools(env.ATELIER_HOT_CLUSTER_POOLS),
    logLevel,
    gitHookSecret: gitHookSecretOf(env.ATELIER_GIT_HOOK_SECRET),
    gitHookAccount: env.ATELIER_GIT_HOOK_ACCOUNT || 'git-hook',
    gitRepositories: (env.ATELIER_GIT_REPOSITORIES || '')
      .split(',')
      .map((r) => r.trim())
      .filter(Boolean),
    outboundAllow,
    tokenRecheckMs: int(env, 'ATELIER_TOKEN_RECHECK_MS', 10_000, 50, 3_600_000),
    tokenCacheTtlMs: int(env, 'ATELIER_TOKEN_CACHE_TTL_MS', DEFAULT_TOKEN_CACHE_TTL_MS, 0, 60_000),
    fallbackPollMs: int(env, 'ATELIER_FALLBACK_POLL_MS', 30_000, 100, 86_400_000),
    maxSubscriptionsPerToken: int(env, 'ATELIER_MAX_SUBSCRIPTIONS_PER_TOKEN', DEFAULT_MAX_SUBSCRIPTIONS_PER_TOKEN, 1, 1_000_000),
    maxSubscriptions: int(env, 'ATELIER_MAX_SUBSCRIPTIONS', DEFAULT_MAX_SUBSCRIPTIONS, 1, 10_000_000),
    catalogCeiling: parseCatalogCeiling(env),
    objectStore: parseObjectStore(env, path.resolve(env.ATELIER_DATA_DIR || DEFAULT_DATA_DIR), natsUrl, (m) => new ConfigError(m)),
    objectGc: {
      everyMs: int(env, 'ATELIER_OBJECT_GC_HOURS', 0, 0, 24 * 365) * 3_600_000,
      // At least an hour: a write's object must outlive the time until its row commits (requests end within minutes).
      graceMs: int(env, 'ATELIER_OBJECT_GC_GRACE_HOURS', 24, 1, 24 * 365) * 3_600_000,
    },
    downloadRetryMs: parseDownloadRetryMs(env, (m) => new ConfigError(m)),
    corsOrigins: parseCorsOrigins(env.ATELIER_CORS_ORIGINS),
    trustedProxies: addressRanges(env, 'ATELIER_TRUSTED_PROXIES', 'the reverse proxies whose X-Forwarded-For is believed'),
    webhooks: {
      allowlist: parseWebhookAllowlist(env.ATELIER_WEBHOOK_ALLOWLIST),
      outboundAllow,
      backoffMs: int(env, 'ATELIER_WEBHOOK_BACKOFF_MS', 30_000, 1, 3_600_000),
      maxAttempts: int(env, 'ATELIER_WEBHOOK_MAX_ATTEMPTS', 8, 1, 50),
      timeoutMs: int(env, 'ATELIER_WEBHOOK_TIMEOUT_MS', 10_000, 10, 120_000),
      pollMs: int(env, 'ATELIER_WEBHOOK_POLL_MS', 5_000, 10, 600_000),
      retentionDays: int(env, 'ATELIER_WEBHOOK_RETENTION_DAYS', 30, 1, 3650),
    },
    retention: {
      signalDays: int(env, 'ATELIER_SIGNAL_RETENTION_DAYS', 30, 1, 3650),
      observationDays: int(env, 'ATELIER_OBSERVATION_RETENTION_DAYS', 400, 1, 3650),
    },
  };
}

function parseCatalogCeiling(env: NodeJS.ProcessEnv): Config['catalogCeiling'] {
  const level = (env.ATELIER_CATALOG_CEILING || DEFAULT_CATALOG_CEILING.level).trim().toUpperCase();
  if (!(levels as readonly string[]).includes(level)) {
    throw new ConfigError(
      `ATELIER_CATALOG_CEILING must be one of ${levels.join(', ')}: the highest level the interactive catalog may show (got "${env.ATELIER_CATALOG_CEILING}").`,
    );
  }
  const raw = (env.ATELIER_CATALOG_DENY_CATEGORIES || DEFAULT_CATALOG_CEILING.deniedCategories.join(',')).trim();
  const { categories, bad } = normaliseCategories(raw.toLowerCase() === 'none' ? [] : raw.split(',').filter((c) => c.trim()));
  if (bad.length) {
    throw new ConfigError(
      `ATELIER_CATALOG_DENY_CATEGORIES is a comma-separated list of categories such as PII,UGC (or "none"); ${bad.map((b) => `"${b}"`).join(', ')} is not one.`,
    );
  }
  return { level: level as Level, deniedCategories: categories };
}

function portRange(raw: string): PortRange {
  try {
    return parsePortRange(raw);
  } catch (error) {
    throw new ConfigError((error as Error).message);
  }
}

/**
 * How the local executor isolates modules: `bwrap` (default, a bubblewrap sandbox) or `none`, the operator's
 * explicit opt-out (ATELIER_MODULE_ISOLATION), and the extra host paths sandboxed modules may read
 * (ATELIER_MODULE_READONLY_PATHS, colon-separated).
 */
export function moduleIsolation(env: NodeJS.ProcessEnv = process.env): { isolation: 'bwrap' | 'none'; readOnlyPaths: string[] } {
  const raw = (env.ATELIER_MODULE_ISOLATION || 'bwrap').trim().toLowerCase();
  if (raw !== 'bwrap' && raw !== 'none') {
    throw new ConfigError(
      `ATELIER_MODULE_ISOLATION must be "bwrap" (the default: each module in a bubblewrap sandbox) or "none" (no isolation; got "${env.ATELIER_MODULE_ISOLATION}").`,
    );
  }
  const readOnlyPaths = (env.ATELIER_MODULE_READONLY_PATHS || '')
    .split(':')
    .map((p) => p.trim())
    .filter(Boolean);
  const relative = readOnlyPaths.filter((p) => !path.isAbsolute(p));
  if (relative.length) throw new ConfigError(`ATELIER_MODULE_READONLY_PATHS takes absolute paths separated by ":" (got ${relative.join(', ')}).`);
  return { isolation: raw, readOnlyPaths };
}

export const defaultHostName = () => `${os.hostname()}-${process.pid}`;

/** The variables of the host's environment that local modules inherit (the local executor's `inheritEnv`); nothing
 * else leaks into them. */
export function moduleEnvironment(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const inherited: Record<string, string> = {};
  for (const name of ['PATH', 'HOME', 'LANG']) {
    const value = env[name];
    if (value !== undefined) inherited[name] = value;
  }
  return inherited;
}
