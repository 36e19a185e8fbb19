// The one home of each configuration default: the environment reader (index.ts), the CLI and any component's
// own fallback take them from here, so a default is written once. Imports nothing.

/** How often the monitor evaluator looks for due monitors (`ATELIER_MONITOR_EVAL_MS`); each monitor has its own interval. */
export const DEFAULT_MONITOR_EVAL_MS = 10_000;
/** Where the control plane listens, and so where the CLI looks for it. */
export const DEFAULT_PORT = 4000;
export const DEFAULT_HOST = '127.0.0.1';
/** The control plane's data (embedded database, objects, admin token), relative to the working directory. */
export const DEFAULT_DATA_DIR = '.atelier';
/** A running task whose host sent nothing for this long is presumed lost and retried. */
export const DEFAULT_HEARTBEAT_TIMEOUT_MS = 60_000;
/**
 * Most tasks one bus message carries (`ATELIER_TASK_BATCH_MAX`; protocol 3): the tasks one transaction dispatches to
 * a pool travel as a few batches instead of a message each. A host takes a batch whole (its flow control counts the
 * tasks), so the cap also bounds how far one host may run ahead of the others on a pool. 1 turns batches off, for a
 * fleet whose hosts are not all at protocol 3 yet.
 */
export const DEFAULT_TASK_BATCH_MAX = 100;
/**
 * The most bytes of executor events one control-plane replica holds taken off the bus and not yet recorded
 * (`ATELIER_EVENT_IN_FLIGHT_MB`): hosts flooding logs in max-payload messages would otherwise be held up to the
 * recorder's message count (4,096) times the bus's max payload. Events are mostly small, so the count binds first.
 */
export const DEFAULT_EVENT_IN_FLIGHT_MB = 64;
/** An executor host silent for this long is stale: not counted as live when routing and listing. */
export const DEFAULT_HOST_STALE_MS = 15_000;
/** A hot cluster's idle timeout: the default, the least and the most a caller may ask for (`ATELIER_HOT_CLUSTER_MAX_IDLE_SECONDS`). */
export const DEFAULT_HOT_CLUSTER_IDLE_MS = 30 * 60_000;
export const MIN_HOT_CLUSTER_IDLE_MS = 1_000;
export const DEFAULT_HOT_CLUSTER_MAX_IDLE_MS = 24 * 3600_000;
/** The most a module archive may inflate to (MiB), its files and tar headers together: a gzip bomb stops there. */
export const DEFAULT_MAX_UNPACKED_MB = 512;
/** Live subscriptions (graphql-ws and SSE together) one token may hold at once (`ATELIER_MAX_SUBSCRIPTIONS_PER_TOKEN`). */
export const DEFAULT_MAX_SUBSCRIPTIONS_PER_TOKEN = 100;
/** How long a replica remembers a live token's session (`ATELIER_TOKEN_CACHE_TTL_MS`, server/auth/token-cache.ts). */
export const DEFAULT_TOKEN_CACHE_TTL_MS = 5_000;
/** Live subscriptions one control-plane replica holds at most, all tokens together (`ATELIER_MAX_SUBSCRIPTIONS`). */
export const DEFAULT_MAX_SUBSCRIPTIONS = 5_000;
/** What the interactive dataset catalog may show: columns at most CONFIDENTIAL, never PII. */
export const DEFAULT_CATALOG_CEILING: { readonly level: 'CONFIDENTIAL'; readonly deniedCategories: readonly string[] } = {
  level: 'CONFIDENTIAL',
  deniedCategories: ['PII'],
};
/** The file under the data dir where a running control plane writes its URL, for the CLI on the same machine. */
export const SERVER_URL_FILE = 'url';
/** The admin token's file name under the data dir: the control plane writes it, the CLI on the same machine reads it. */
export const ADMIN_TOKEN_FILE = 'admin-token';
/** Where objects (module archives, outputs) live: `local` is `$ATELIER_DATA_DIR/objects`, one machine's directory. */
export const DEFAULT_OBJECT_STORE = 'local';
/** The JetStream object store bucket of `ATELIER_OBJECT_STORE=nats`. */
export const DEFAULT_NATS_OBJECT_BUCKET = 'atelier-objects';
/** How long downloads from the control plane keep retrying (backoff doubling to 5 s): longer than a replica restart. */
export const DEFAULT_DOWNLOAD_RETRY_MS = 30_000;
/** A replica that has not renewed its object-store record for this long no longer holds other replicas to its store. */
export const OBJECT_STORE_REPLICA_STALE_MS = 15_000;
