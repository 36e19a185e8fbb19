// The control plane's own metrics, counted in this process (per replica): one prom-client registry per app (tests run
// many apps in one process, so never the global default registry). The seams that count (the router, the yoga
// plugin, the orchestrator's commit, the outbox relay, the claim answers, the event recorder) are handed `Instruments`
// and each does one increment or one observe per request, operation or task: nothing here polls.
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

export const METRIC_PREFIX = 'atelier_';

/** Seconds: dispatch and edge delays run from milliseconds (a chain's next task) to minutes (a saturated pool). */
const DELAY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];
const REQUEST_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** GraphQL error codes are ours (schema/errors.ts) or yoga's, upper snake case; anything else, and past this many, is OTHER. */
const MAX_ERROR_CODES = 64;
const CODE_RE = /^[A-Z][A-Z0-9_]{0,47}$/;

export type OperationType = 'query' | 'mutation' | 'subscription';
export type RedeliveredKind = 'task' | 'event';

export interface Instruments {
  readonly registry: Registry;
  /** One HTTP request answered (`route`: the router's name for it), by status class, and how long it took. */
  httpRequest(route: string, status: number, seconds: number): void;
  graphqlOperation(type: OperationType): void;
  graphqlError(code: string | undefined): void;
  /** Tasks dispatched (their messages committed to the outbox) by a transaction, per pool. */
  tasksDispatched(pool: string, count: number): void;
  /** Each task's delay from its dispatch (`enqueuedAt`) to the bus taking its message. */
  dispatchDelays(seconds: readonly number[]): void;
  /** Seconds from the last parent's success reported to a child's dispatch committing. */
  edgeDelay(seconds: number): void;
  attemptEnded(status: string): void;
  cacheHits(count: number, savedSeconds: number): void;
  redelivered(kind: RedeliveredKind, count: number): void;
  /** A gauge read at scrape time from `read` (open subscriptions). */
  gaugeOf(name: string, help: string, read: () => number): void;
}

export function createInstruments(): Instruments {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: METRIC_PREFIX });
  const registers = [registry];
  const http = new Counter({
    name: `${METRIC_PREFIX}http_requests_total`,
    help: 'HTTP requests this replica answered, by route name and status class (2xx, 4xx, ...).',
    labelNames: ['route', 'status'] as const,
    registers,
  });
  const httpSeconds = new Histogram({
    name: `${METRIC_PREFIX}http_request_duration_seconds`,
    help: 'Seconds from an HTTP request arriving at this replica to its response closing, by route name (a live SSE stream counts its whole life).',
    labelNames: ['route'] as const,
    buckets: REQUEST_BUCKETS,
    registers,
  });
  const operations = new Counter({
    name: `${METRIC_PREFIX}graphql_operations_total`,
    help: 'GraphQL operations this replica executed (HTTP, SSE and graphql-ws), by operation type.',
    labelNames: ['type'] as const,
    registers,
  });
  const errors = new Counter({
    name: `${METRIC_PREFIX}graphql_errors_total`,
    help: 'GraphQL errors this replica answered (parse, validation and execution), by extensions.code (OTHER when it has none).',
    labelNames: ['code'] as const,
    registers,
  });
  const dispatched = new Counter({
    name: `${METRIC_PREFIX}tasks_dispatched_total`,
    help: 'Tasks this replica dispatched to an executor pool (their messages committed for the bus), by pool.',
    labelNames: ['pool'] as const,
    registers,
  });
  const dispatchDelay = new Histogram({
    name: `${METRIC_PREFIX}task_dispatch_delay_seconds`,
    help: "Seconds from a task's dispatch (ready, written to the outbox) to the bus taking its message, on this replica (a message a relay pass publishes again, which the bus drops, is observed again).",
    buckets: DELAY_BUCKETS,
    registers,
  });
  const edge = new Histogram({
    name: `${METRIC_PREFIX}task_edge_delay_seconds`,
    help: 'Seconds from a parent task reporting success (its host clock) to its children being dispatched, on this replica.',
    buckets: DELAY_BUCKETS,
    registers,
  });
  const attempts = new Counter({
    name: `${METRIC_PREFIX}task_attempts_ended_total`,
    help: 'Task attempts this replica recorded as ended, by the status they ended with (RETRYING: failed, to be retried).',
    labelNames: ['status'] as const,
    registers,
  });
  const hits = new Counter({
    name: `${METRIC_PREFIX}cache_hits_total`,
    help: 'Tasks this replica completed from the result cache instead of running them.',
    registers,
  });
  const saved = new Counter({
    name: `${METRIC_PREFIX}cache_saved_seconds_total`,
    help: 'Execution seconds the cache hits counted by this replica saved (the source tasks run time).',
    registers,
  });
  const redeliveries = new Counter({
    name: `${METRIC_PREFIX}bus_redeliveries_total`,
    help: 'Bus messages delivered again: task messages whose host claimed them as redelivered (task), executor events this replica took again (event).',
    labelNames: ['kind'] as const,
    registers,
  });
  const codes = new Set<string>();
  return {
    registry,
    httpRequest(route, status, seconds) {
      http.inc({ route, status: `${Math.floor(status / 100)}xx` });
      httpSeconds.observe({ route }, seconds);
    },
    graphqlOperation: (type) => operations.inc({ type }),
    graphqlError(code) {
      let label = code && CODE_RE.test(code) ? code : 'OTHER';
      if (!codes.has(label)) {
        if (codes.size >= MAX_ERROR_CODES) label = 'OTHER';
        else codes.add(label);
      }
      errors.inc({ code: label });
    },
    tasksDispatched: (pool, count) => dispatched.inc({ pool }, count),
    dispatchDelays(delays) {
      for (const d of delays) dispatchDelay.observe(d);
    },
    edgeDelay: (seconds) => edge.observe(seconds),
    attemptEnded: (status) => attempts.inc({ status }),
    cacheHits(count, savedSeconds) {
      hits.inc(count);
      saved.inc(savedSeconds);
    },
    redelivered: (kind, count) => redeliveries.inc({ kind }, count),
    gaugeOf(name, help, read) {
      new Gauge({
        name: `${METRIC_PREFIX}${name}`,
        help,
        registers,
        collect() {
          this.set(read());
        },
      });
    },
  };
}
