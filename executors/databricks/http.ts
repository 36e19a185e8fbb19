// HTTP for the Databricks REST API: bearer auth, JSON bodies, Databricks' error shape, and retries of what is
// transient (429 with Retry-After, 5xx, connection errors, hung requests, COULD_NOT_ACQUIRE_LOCK, malformed JSON).
import type { TokenSource } from './auth';

/** Time, injectable so tests can run hours of backoff and token lifetime in milliseconds. */
export interface Clock {
  now(): number;
  /** Resolves after `ms`, or early (without throwing) once `signal` aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve) => {
      if (signal?.aborted) return resolve();
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal?.addEventListener('abort', done, { once: true });
    }),
};

export type FetchLike = (input: string, init: RequestInit) => Promise<Response>;

export interface RetryPolicy {
  /** Tries per request, the first included. */
  maxAttempts: number;
  /** First backoff; it doubles per try, with jitter. */
  baseDelayMs: number;
  /** Most backoff between two tries when the server gives no Retry-After. */
  maxDelayMs: number;
  /** Most we wait for a Retry-After: a proxy asking for an hour should not park the attempt that long. */
  maxRetryAfterMs: number;
}

export const defaultRetryPolicy: RetryPolicy = { maxAttempts: 6, baseDelayMs: 500, maxDelayMs: 30_000, maxRetryAfterMs: 120_000 };

export interface ApiErrorDetails {
  method: string;
  path: string;
  /** HTTP status, or null when no answer came (connection error, timeout). */
  status: number | null;
  /** Databricks' `error_code` (`INVALID_PARAMETER_VALUE`, `REQUEST_LIMIT_EXCEEDED`…), when the body had one. */
  errorCode?: string;
  /** Trying again may succeed. */
  retryable: boolean;
  /** The credentials were refused (401/403, or the OAuth client was): retrying cannot help until they change. */
  credentials?: boolean;
  /** What the server asked us to wait (Retry-After). */
  retryAfterMs?: number;
}

/** A failed Databricks request; `details` says whether it is worth retrying. */
export class DatabricksApiError extends Error {
  override readonly name = 'DatabricksApiError';
  constructor(
    message: string,
    readonly details: ApiErrorDetails,
  ) {
    super(message);
  }
}

export interface DatabricksHttpOptions {
  /** Workspace URL, e.g. `https://adb-123.4.azuredatabricks.net` (no trailing slash). */
  host: string;
  tokens: TokenSource;
  fetch: FetchLike;
  clock: Clock;
  random: () => number;
  retry: RetryPolicy;
  /** A request with no answer within this long is abandoned and retried (a hung connection). */
  requestTimeoutMs: number;
}

export interface RequestOptions {
  query?: Record<string, string | number>;
  /** A JSON body. */
  json?: unknown;
  /** A raw body (Files API uploads). */
  bytes?: Uint8Array;
  /** Aborts the request and any backoff: used on host shutdown, never on a cancel (we must keep polling then). */
  signal?: AbortSignal;
}

export interface DatabricksHttp {
  /** Sends a request and parses its JSON answer (an empty body reads as `{}`). Throws DatabricksApiError. */
  request<T = Record<string, unknown>>(method: 'GET' | 'POST' | 'PUT', path: string, options?: RequestOptions): Promise<T>;
}

const BODY_SNIPPET_CHARS = 200;

export function createDatabricksHttp(options: DatabricksHttpOptions): DatabricksHttp {
  const { host, tokens, clock, retry } = options;

  function backoffMs(attempt: number) {
    const exponential = Math.min(retry.maxDelayMs, retry.baseDelayMs * 2 ** (attempt - 1));
    // Equal jitter: never less than half the step, so many hosts throttled at once spread out but still back off.
    return Math.round(exponential / 2 + (exponential / 2) * options.random());
  }

  async function attemptOnce(method: string, path: string, url: string, init: RequestOptions): Promise<unknown> {
    const authorization = await tokens.authorization(init.signal);
    const headers: Record<string, string> = { Authorization: authorization, Accept: 'application/json' };
    let body: BodyInit | undefined;
    if (init.json !== undefined) {
      headers['Content-Type'] = 'application/json';
      body = JSON.stringify(init.json);
    } else if (init.bytes) {
      headers['Content-Type'] = 'application/octet-stream';
      body = new Uint8Array(init.bytes); // a copy over a plain ArrayBuffer, as fetch's BodyInit wants
    }
    const timeout = AbortSignal.timeout(options.requestTimeoutMs);
    const signal = init.signal ? AbortSignal.any([init.signal, timeout]) : timeout;
    let response: Response;
    let text: string;
    try {
      response = await options.fetch(url, { method, headers, body, signal });
      text = await response.text();
    } catch (err) {
      if (init.signal?.aborted) throw err;
      const why = timeout.aborted ? `no answer within ${options.requestTimeoutMs} ms` : describeCause(err);
      throw new DatabricksApiError(`could not reach Databricks at ${host} (${method} ${path}): ${why}`, {
        method,
        path,
        status: null,
        retryable: true,
      });
    }
    if (response.ok) {
      if (text.trim() === '') return {};
      try {
        return JSON.parse(text);
      } catch (err) {
        throw new DatabricksApiError(
          `Databricks answered ${method} ${path} with malformed JSON (HTTP ${response.status}: ${describeCause(err)}; body starts ${JSON.stringify(snippet(text))})`,
          { method, path, status: response.status, retryable: true },
        );
      }
    }
    throw errorFromResponse(method, path, response, text, clock.now());
  }

  return {
    async request<T>(method: 'GET' | 'POST' | 'PUT', path: string, init: RequestOptions = {}): Promise<T> {
      const url = new URL(host + path);
      for (const [name, value] of Object.entries(init.query ?? {})) url.searchParams.set(name, String(value));
      let refreshedAfter401 = false;
      for (let attempt = 1; ; attempt++) {
        let failure: DatabricksApiError;
        try {
          return (await attemptOnce(method, path, url.toString(), init)) as T;
        } catch (err) {
          if (!(err instanceof DatabricksApiError)) throw err; // an abort (shutdown): the caller decides
          failure = err;
        }
        // An OAuth token can be revoked or expire early: fetch a fresh one once before calling the credentials bad.
        if (failure.details.status === 401 && tokens.refreshable && !refreshedAfter401) {
          refreshedAfter401 = true;
          tokens.invalidate();
          attempt--;
          continue;
        }
        if (!failure.details.retryable || attempt >= retry.maxAttempts) {
          if (attempt > 1) failure.message += ` (gave up after ${attempt} tries)`;
          throw failure;
        }
        const asked = failure.details.retryAfterMs;
        const delay = asked !== undefined ? Math.min(asked, retry.maxRetryAfterMs) : backoffMs(attempt);
        await clock.sleep(delay, init.signal);
        if (init.signal?.aborted) throw init.signal.reason ?? new Error('aborted');
      }
    },
  };
}

/** Turns a non-2xx answer into an error, classifying it by status and Databricks' `error_code`. */
function errorFromResponse(method: string, path: string, response: Response, text: string, now: number): DatabricksApiError {
  const status = response.status;
  let errorCode: string | undefined;
  let message = snippet(text);
  try {
    const parsed = JSON.parse(text) as { error_code?: unknown; message?: unknown; error?: unknown; error_description?: unknown };
    if (typeof parsed.error_code === 'string') errorCode = parsed.error_code;
    else if (typeof parsed.error === 'string') errorCode = parsed.error; // OAuth's shape
    if (typeof parsed.message === 'string') message = parsed.message;
    else if (typeof parsed.error_description === 'string') message = parsed.error_description;
  } catch {
    // not JSON (a proxy's HTML page): the snippet stands
  }
  const what = `Databricks answered ${method} ${path} with HTTP ${status}${errorCode ? ` ${errorCode}` : ''}${message ? `: ${message}` : ''}`;
  const details: ApiErrorDetails = { method, path, status, errorCode, retryable: false };
  if (status === 401 || status === 403) {
    return new DatabricksApiError(
      `${what.replace(/\.$/, '')}. Check the executor's Databricks credentials (token, or OAuth client id and secret) and their permissions`,
      {
        ...details,
        credentials: true,
      },
    );
  }
  if (status === 429 || status >= 500 || (status === 400 && errorCode === 'COULD_NOT_ACQUIRE_LOCK')) {
    details.retryable = true;
    details.retryAfterMs = parseRetryAfter(response.headers.get('retry-after'), now);
  }
  return new DatabricksApiError(what, details);
}

/** `Retry-After` is either delay-seconds or an HTTP date. */
export function parseRetryAfter(value: string | null, now: number): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  const seconds = Number(value.trim());
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1_000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

function snippet(text: string) {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > BODY_SNIPPET_CHARS ? `${flat.slice(0, BODY_SNIPPET_CHARS)}…` : flat;
}

/** fetch wraps socket errors in `TypeError: fetch failed`; the useful part is the cause's code. */
function describeCause(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = (err as { cause?: unknown }).cause;
  if (cause instanceof Error) {
    const code = (cause as { code?: unknown }).code;
    return `${err.message} (${typeof code === 'string' ? `${code}: ` : ''}${cause.message})`;
  }
  return err.message;
}
