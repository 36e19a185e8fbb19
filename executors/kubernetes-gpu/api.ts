// The executor's way to the Kubernetes API: Job, Service and (hot cluster) Deployment CRUD through @kubernetes/client-node's typed clients,
// pod lists, watches and logs as raw streaming GETs (the library's Watch and Log neither reconnect nor end
// cleanly), every failure turned into one KubeApiError kind that decides between retrying and failing for good.
import http, { type IncomingMessage, STATUS_CODES } from 'node:http';
import https from 'node:https';
import {
  ApiException,
  AppsV1Api,
  BatchV1Api,
  type ConfigurationOptions,
  CoreV1Api,
  type KubeConfig,
  Observable,
  type RequestContext,
  type ResponseContext,
  type V1Deployment,
  type V1Job,
  type V1Secret,
  type V1Service,
} from '@kubernetes/client-node';
import type { PodView } from './status';

/**
 * - transient: 5xx, 429, quota, connection and timeout errors: retried with backoff.
 * - auth: 401/403 (or a client-side credential problem): permanent, with a hint about credentials or RBAC.
 * - config: no usable cluster configuration or a TLS failure: permanent.
 * - malformed: a response that is not the JSON it should be: retried a little, then a retryable system failure.
 * - not-found, conflict, gone, invalid: what the request said, for the caller to interpret.
 */
export type KubeErrorKind = 'transient' | 'auth' | 'config' | 'malformed' | 'not-found' | 'conflict' | 'gone' | 'invalid';

export class KubeApiError extends Error {
  constructor(
    message: string,
    readonly kind: KubeErrorKind,
    readonly status?: number,
    readonly reason?: string,
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = 'KubeApiError';
  }
}

export interface RetryPolicy {
  /** Calls in all, the first included. */
  tries: number;
  baseMs: number;
  maxMs: number;
}

export type Sleep = (ms: number, signal?: AbortSignal) => Promise<void>;

export interface KubeClientOptions {
  kubeConfig: () => KubeConfig;
  namespace: string;
  /** Per-call limit for non-streaming requests. */
  requestTimeoutMs: number;
}

export interface PodList {
  items: PodView[];
  resourceVersion: string;
}

export interface StreamQuery {
  [key: string]: string | number | boolean | undefined;
}

export interface KubeClient {
  readonly namespace: string;
  createJob(job: V1Job): Promise<V1Job>;
  readJob(name: string): Promise<V1Job>;
  /** Deletes with `propagationPolicy: Background`, so the Job's pods go too (the API default orphans them). */
  deleteJob(name: string): Promise<void>;
  createService(service: V1Service): Promise<V1Service>;
  createSecret(secret: V1Secret): Promise<V1Secret>;
  createDeployment(deployment: V1Deployment): Promise<V1Deployment>;
  readDeployment(name: string): Promise<V1Deployment>;
  /** Deletes with `propagationPolicy: Background`: the ReplicaSets and pods go after it. */
  deleteDeployment(name: string): Promise<void>;
  deleteService(name: string): Promise<void>;
  listPods(labelSelector: string, signal?: AbortSignal): Promise<PodList>;
  /** Opens a watch on pods; the response streams newline-delimited watch events. */
  watchPods(labelSelector: string, query: StreamQuery, signal: AbortSignal): Promise<IncomingMessage>;
  /** Opens the log of one container; with `follow` the response streams until the container ends. */
  podLog(pod: string, query: StreamQuery, signal: AbortSignal): Promise<IncomingMessage>;
}

const MAX_ERROR_BODY = 64 * 1024;
const MAX_LIST_BODY = 64 * 1024 * 1024;
const TLS_CODES = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|TLS|SSL/;

export function createKubeClient(options: KubeClientOptions): KubeClient {
  const { namespace } = options;
  let apis: { batch: BatchV1Api; core: CoreV1Api; apps: AppsV1Api; server: string; kc: KubeConfig } | undefined;
  // Loaded on first use: a host lists its executors at start-up even where no cluster is configured.
  const load = () => {
    if (apis) return apis;
    let kc: KubeConfig;
    try {
      kc = options.kubeConfig();
    } catch (err) {
      throw new KubeApiError(`no usable Kubernetes configuration: ${errorMessage(err)}`, 'config');
    }
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new KubeApiError('no usable Kubernetes configuration: the kubeconfig has no current cluster', 'config');
    apis = {
      batch: kc.makeApiClient(BatchV1Api),
      core: kc.makeApiClient(CoreV1Api),
      apps: kc.makeApiClient(AppsV1Api),
      server: cluster.server.replace(/\/+$/, ''),
      kc,
    };
    return apis;
  };

  /** Per-call options that put a time limit on one typed call (the generated client has none of its own). */
  const callOptions = (): ConfigurationOptions => {
    const signal = AbortSignal.timeout(options.requestTimeoutMs);
    return {
      middleware: [
        {
          pre: (ctx: RequestContext) => {
            ctx.setSignal(signal);
            return new Observable(Promise.resolve(ctx));
          },
          post: (res: ResponseContext) => new Observable(Promise.resolve(res)),
        },
      ],
      middlewareMergeStrategy: 'append',
    };
  };

  async function typed<T>(what: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (err) {
      throw toKubeError(err, what);
    }
  }

  async function rawGet(path: string, query: StreamQuery, signal: AbortSignal | undefined, what: string): Promise<IncomingMessage> {
    const { server } = load();
    const url = new URL(server + path);
    for (const [key, value] of Object.entries(query)) if (value !== undefined) url.searchParams.set(key, String(value));
    const opts: https.RequestOptions = {};
    try {
      await load().kc.applyToHTTPSOptions(opts);
    } catch (err) {
      throw new KubeApiError(`${what}: cannot apply the Kubernetes credentials: ${errorMessage(err)}`, TLS_CODES.test(errorMessage(err)) ? 'config' : 'auth');
    }
    const transport = url.protocol === 'https:' ? https : http;
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = transport.request(url, { ...opts, method: 'GET', headers: { ...opts.headers, accept: 'application/json' }, signal }, resolve);
      req.on('error', reject);
      req.end();
    }).catch((err) => {
      throw toKubeError(err, what);
    });
    if (res.statusCode === 200) return res;
    const body = await readBody(res, MAX_ERROR_BODY).catch(() => '');
    throw statusError(res.statusCode ?? 0, body, res.headers['retry-after'], what);
  }

  return {
    namespace,
    createJob: (job) => typed(`creating Job ${job.metadata?.name}`, () => load().batch.createNamespacedJob({ namespace, body: job }, callOptions())),
    readJob: (name) => typed(`reading Job ${name}`, () => load().batch.readNamespacedJob({ name, namespace }, callOptions())),
    async deleteJob(name) {
      await typed(`deleting Job ${name}`, () =>
        load().batch.deleteNamespacedJob({ name, namespace, propagationPolicy: 'Background', body: { propagationPolicy: 'Background' } }, callOptions()),
      );
    },
    createService: (service) =>
      typed(`creating Service ${service.metadata?.name}`, () => load().core.createNamespacedService({ namespace, body: service }, callOptions())),
    createSecret: (secret) =>
      typed(`creating Secret ${secret.metadata?.name}`, () => load().core.createNamespacedSecret({ namespace, body: secret }, callOptions())),
    async deleteService(name) {
      await typed(`deleting Service ${name}`, () => load().core.deleteNamespacedService({ name, namespace }, callOptions()));
    },
    createDeployment: (deployment) =>
      typed(`creating Deployment ${deployment.metadata?.name}`, () => load().apps.createNamespacedDeployment({ namespace, body: deployment }, callOptions())),
    readDeployment: (name) => typed(`reading Deployment ${name}`, () => load().apps.readNamespacedDeployment({ name, namespace }, callOptions())),
    async deleteDeployment(name) {
      await typed(`deleting Deployment ${name}`, () =>
        load().apps.deleteNamespacedDeployment({ name, namespace, propagationPolicy: 'Background', body: { propagationPolicy: 'Background' } }, callOptions()),
      );
    },
    async listPods(labelSelector, signal) {
      const what = `listing pods (${labelSelector})`;
      const timeout = AbortSignal.timeout(options.requestTimeoutMs);
      const res = await rawGet(
        `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods`,
        { labelSelector },
        signal ? AbortSignal.any([signal, timeout]) : timeout,
        what,
      );
      const text = await readBody(res, MAX_LIST_BODY).catch((err) => {
        throw toKubeError(err, what);
      });
      let list: { kind?: string; items?: PodView[]; metadata?: { resourceVersion?: string } };
      try {
        list = JSON.parse(text);
      } catch {
        throw new KubeApiError(`${what}: the API server answered with malformed JSON: ${snippet(text)}`, 'malformed', 200);
      }
      if (!list || !Array.isArray(list.items) || typeof list.metadata?.resourceVersion !== 'string') {
        throw new KubeApiError(`${what}: the API server answered with something other than a PodList: ${snippet(text)}`, 'malformed', 200);
      }
      return { items: list.items, resourceVersion: list.metadata.resourceVersion };
    },
    watchPods: (labelSelector, query, signal) =>
      rawGet(`/api/v1/namespaces/${encodeURIComponent(namespace)}/pods`, { ...query, labelSelector, watch: true }, signal, `watching pods (${labelSelector})`),
    podLog: (pod, query, signal) =>
      rawGet(`/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(pod)}/log`, query, signal, `reading the log of pod ${pod}`),
  };
}

/** Calls `fn` until it succeeds, retrying transient (and briefly malformed) failures with jittered backoff. */
export async function withRetries<T>(
  fn: () => Promise<T>,
  policy: RetryPolicy,
  sleep: Sleep,
  signal?: AbortSignal,
  onRetry?: (err: KubeApiError, attempt: number, delayMs: number) => void,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      const e = toKubeError(err, 'calling the Kubernetes API');
      // A proxy answering with an HTML error page recovers like a 502; a server that keeps answering garbage does not.
      const retryable = e.kind === 'transient' || (e.kind === 'malformed' && attempt < Math.min(3, policy.tries));
      if (!retryable || attempt >= policy.tries || signal?.aborted) throw e;
      const delay = e.retryAfterMs ?? backoffMs(policy, attempt);
      onRetry?.(e, attempt, delay);
      await sleep(delay, signal);
    }
  }
}

/** Full-jitter exponential backoff: retries from many hosts after an API server hiccup do not arrive together. */
export function backoffMs(policy: Pick<RetryPolicy, 'baseMs' | 'maxMs'>, attempt: number): number {
  const ceiling = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
}

/** Any error from a call (typed client, raw request, parse) as a KubeApiError. */
export function toKubeError(err: unknown, what: string): KubeApiError {
  if (err instanceof KubeApiError) return err;
  if (err instanceof ApiException || isApiExceptionLike(err)) {
    const e = err as ApiException<unknown>;
    const body = typeof e.body === 'string' ? e.body : e.body === undefined ? '' : JSON.stringify(e.body);
    return statusError(e.code, body, e.headers?.['retry-after'], what);
  }
  const message = errorMessage(err);
  const name = (err as { name?: string })?.name;
  const code = (err as { code?: string })?.code ?? (err as { cause?: { code?: string } })?.cause?.code;
  if (name === 'SyntaxError') return new KubeApiError(`${what}: the API server answered with malformed JSON (${message})`, 'malformed');
  if (name === 'AbortError' || name === 'TimeoutError') return new KubeApiError(`${what}: timed out or aborted (${message})`, 'transient');
  if (typeof code === 'string' && TLS_CODES.test(code)) {
    return new KubeApiError(`${what}: TLS failure talking to the API server (${code}: ${message}); check the cluster CA in the kubeconfig`, 'config');
  }
  if (/HTTP protocol is not allowed|No active cluster|No currently active cluster/i.test(message)) {
    return new KubeApiError(`${what}: no usable Kubernetes configuration: ${message}`, 'config');
  }
  if (name === 'FetchError' || typeof code === 'string' || /socket hang up|ECONN|EPIPE|ETIMEDOUT|network/i.test(message)) {
    return new KubeApiError(`${what}: cannot reach the API server (${code ?? message})`, 'transient');
  }
  return new KubeApiError(`${what}: ${message}`, 'transient');
}

function isApiExceptionLike(err: unknown): boolean {
  return typeof err === 'object' && err !== null && typeof (err as { code?: unknown }).code === 'number' && 'headers' in err;
}

/** A non-2xx answer, read from its Status object when it has one. */
export function statusError(status: number, bodyText: string, retryAfter: string | string[] | undefined, what: string): KubeApiError {
  let message = '';
  let reason: string | undefined;
  try {
    const body = JSON.parse(bodyText) as { kind?: string; message?: string; reason?: string };
    if (body && typeof body === 'object') {
      message = typeof body.message === 'string' ? body.message : '';
      reason = typeof body.reason === 'string' ? body.reason : undefined;
    }
  } catch {
    message = bodyText.trim() ? snippet(bodyText) : '';
  }
  const retryAfterMs = parseRetryAfter(retryAfter);
  const label = reason ?? STATUS_CODES[status]?.replace(/\s+/g, '');
  const text = `${what}: HTTP ${status}${label ? ` ${label}` : ''}${message ? `: ${message}` : ''}`;
  if (status === 401) {
    return new KubeApiError(
      `${text}. The API server rejected the credentials: check the kubeconfig user (token, client certificate, exec plugin) or the in-cluster service account token`,
      'auth',
      status,
      reason,
    );
  }
  if (status === 403) {
    // Kubernetes reports an exhausted ResourceQuota as 403 too; that one clears when other work finishes.
    if (/exceeded quota|forbidden: exceeded/i.test(message)) return new KubeApiError(text, 'transient', status, reason, retryAfterMs);
    return new KubeApiError(
      `${text}. The identity in the kubeconfig (or the pod's service account) needs RBAC permission to create, get and delete jobs (batch), services and, for hot clusters, deployments (apps), and to get, list and watch pods and pods/log`,
      'auth',
      status,
      reason,
    );
  }
  if (status === 404) return new KubeApiError(text, 'not-found', status, reason);
  if (status === 409) return new KubeApiError(text, 'conflict', status, reason);
  if (status === 410) return new KubeApiError(text, 'gone', status, reason);
  if (status === 429 || status >= 500 || status === 0) return new KubeApiError(text, 'transient', status, reason, retryAfterMs);
  return new KubeApiError(text, 'invalid', status, reason);
}

function parseRetryAfter(value: string | string[] | undefined): number | undefined {
  const raw = Array.isArray(value) ? value[0] : value;
  if (!raw) return undefined;
  const seconds = Number(raw);
  // Capped: a misbehaving proxy must not park an attempt for an hour.
  if (Number.isFinite(seconds) && seconds >= 0) return Math.min(seconds, 60) * 1000;
  const at = Date.parse(raw);
  return Number.isFinite(at) ? Math.min(Math.max(0, at - Date.now()), 60_000) : undefined;
}

export function readBody(res: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    res.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        res.destroy(new Error(`response larger than ${limit} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    res.on('error', reject);
    res.on('aborted', () => reject(new Error('response aborted')));
  });
}

function snippet(text: string): string {
  const clean = text.replace(/\s+/g, ' ').trim();
  return clean.length > 200 ? `${clean.slice(0, 200)}…` : clean || '(empty body)';
}

export const errorMessage = (err: unknown) => (err instanceof Error ? err.message : String(err));
