// Signed requests to the other team's service, with retries: every request is signed like Atelier's outgoing webhooks
// (plugins/webhook-signature.ts), its id (`Atelier-Webhook-Id`) is the call's idempotency key and stays the same on
// every retry, and a 5xx, 408, 429, timeout or unreachable service is retried with exponential backoff and jitter.
// Any other answer is final: the caller reads it (a 4xx becomes a DeployerError with the service's own message).
import { redactUrl, redactUrls } from '../../redact-url';
import { webhookHeaders } from '../../webhook-signature';

export interface RetryPolicy {
  /** Retries after the first attempt. */
  retries: number;
  /** First retry delay, doubled for each next one (±20 % jitter). */
  backoffMs: number;
  /** Longest delay between two attempts. */
  maxBackoffMs: number;
}

export interface SignedClientOptions {
  /** Current secret first, then the rotated-out one while the service still holds it. */
  secrets: readonly string[];
  timeoutMs: number;
  retry: RetryPolicy;
  fetch: typeof fetch;
}

/** An answer the service gave (any status): the caller decides what it means. */
export interface Answer {
  status: number;
  text: string;
}

/** The service could not be reached or kept failing: an error of the backend, not of the input. */
export class UnreachableError extends Error {
  constructor(
    message: string,
    readonly attempts: number,
  ) {
    super(message);
    this.name = 'UnreachableError';
  }
}

/** An answer larger than this is refused unread: the service's view of a deployment is a few KiB. */
export const MAX_ANSWER_BYTES = 1024 * 1024;

/** The service answered something no view of a deployment could be: final, never retried. */
export class AnswerTooLargeError extends Error {
  override name = 'AnswerTooLargeError';
}

/** The body as text, or null once it passes `max` bytes (the rest is not read). */
async function readCapped(res: Response, max: number): Promise<string | null> {
  if (!res.body) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (let next = await reader.read(); !next.done; next = await reader.read()) {
    size += next.value.byteLength;
    if (size > max) {
      await reader.cancel();
      return null;
    }
    chunks.push(next.value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

const retryable = (status: number) => status >= 500 || status === 408 || status === 429;

/** The delay before retry `round` (1 = the first retry). */
export const backoffDelay = (policy: RetryPolicy, round: number, random = Math.random) =>
  Math.min(policy.maxBackoffMs, Math.round(policy.backoffMs * 2 ** (round - 1) * (0.8 + 0.4 * random())));

export function createSignedClient(options: SignedClientOptions) {
  const { secrets, timeoutMs, retry } = options;

  /** One request, retried as the policy says; answers the first final answer, throws UnreachableError otherwise. */
  async function send(method: 'GET' | 'POST', url: string, requestId: string, body: string, signal?: AbortSignal): Promise<Answer> {
    let last = '';
    for (let attempt = 0; attempt <= retry.retries; attempt++) {
      if (attempt > 0) await delay(backoffDelay(retry, attempt), signal);
      if (signal?.aborted) break;
      try {
        const res = await options.fetch(url, {
          method,
          headers: webhookHeaders(secrets, requestId, body, Date.now(), 'Atelier-Deployer/1'),
          body: method === 'POST' ? body : undefined,
          redirect: 'manual',
          signal: signal ? AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]) : AbortSignal.timeout(timeoutMs),
        });
        const text = await readCapped(res, MAX_ANSWER_BYTES);
        if (text === null)
          throw new AnswerTooLargeError(
            `${method} ${redactUrl(url)} answered more than ${MAX_ANSWER_BYTES / 1024 / 1024} MiB: a view of a deployment is a few KiB; is url the serving service?`,
          );
        if (!retryable(res.status)) return { status: res.status, text };
        last = `HTTP ${res.status}${text.trim() ? ` ${text.trim().slice(0, 200)}` : ''}`;
      } catch (err) {
        if (err instanceof AnswerTooLargeError) throw err;
        const e = err as Error & { cause?: { code?: string } };
        last = e.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : (e.cause?.code ?? e.message);
      }
    }
    const shown = `${method} ${redactUrl(url)} failed after ${retry.retries + 1} attempt${retry.retries ? 's' : ''} (last: ${redactUrls(last)})`;
    throw new UnreachableError(shown, retry.retries + 1);
  }

  return { send };
}

function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
