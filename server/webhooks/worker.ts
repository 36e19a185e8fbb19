// The delivery worker: posts due webhook deliveries, logs each attempt, and retries with exponential backoff and
// jitter. It is kicked after a commit that wrote deliveries and polls as a fallback, so a crash between a commit and
// its POST only delays the delivery. Rows are claimed with SKIP LOCKED and leased (next_attempt_at moves past the
// POST's timeout), so replicas share the work and a worker that dies mid-POST leaves the row to be posted again.
import { sql } from 'drizzle-orm';
import type { WebhookConfig } from '../config';
import { type Db, queryRows } from '../db/client';
import type { Service } from '../lifecycle';
import { kickedLoop } from '../lifecycle/kicked-loop';
import { guardedFetch, type OutboundFetch, OutboundRefusedError } from '../net/outbound';
import { urlProblem, webhookAddresses } from './allowlist';
import { webhookHeaders } from './signature';

export interface WebhookWorker extends Service {
  /** Ask for a pass soon (after a transaction that wrote deliveries has committed). */
  kick(): void;
  /** Posts until nothing is due. */
  drain(): Promise<void>;
}

interface Claimed {
  id: string;
  event_id: string;
  body: unknown;
  attempts: number;
  round_attempts: number;
  url: string;
  secret: string;
  /** The rotated-out secret while its overlap lasts. */
  previous_secret: string | null;
}

/** What one attempt came to. */
export interface AttemptResult {
  statusCode: number | null;
  error: string | null;
  snippet: string | null;
  /** Whether trying again cannot help (a 4xx other than 408 and 429, a redirect, a URL no longer allowed). */
  permanent: boolean;
  ok: boolean;
}

const SNIPPET_BYTES = 1024;
const BATCH = 20;

/** The delay before retry `round` (1 = the first retry): base × 2^(round−1), ±20 % jitter. */
export const backoffMs = (base: number, round: number, random = Math.random) => Math.round(base * 2 ** (round - 1) * (0.8 + 0.4 * random()));

/** Whether an HTTP status is final: success, or a client error that a retry will not fix. */
export const isPermanentStatus = (status: number) => (status >= 300 && status < 400) || (status >= 400 && status < 500 && status !== 408 && status !== 429);

export interface WebhookWorkerOptions {
  db: Db;
  config: WebhookConfig;
  log: (message: string) => void;
  /** Default: a fetch that connects only to allowed addresses (checked on the address each connection uses). */
  fetch?: OutboundFetch;
}

export function createWebhookWorker(options: WebhookWorkerOptions): WebhookWorker {
  const { db, config, log } = options;
  const allow = webhookAddresses(config.allowlist, config.outboundAllow ?? []);
  const post = options.fetch ?? guardedFetch(allow);
  const leaseMs = config.timeoutMs + 30_000;
  const retryTimers = new Set<NodeJS.Timeout>();
  const stopping = new AbortController();

  const claim = () =>
    queryRows<Claimed>(
      db,
      sql`with due as (
            select d.id from webhook_deliveries d join webhooks w on w.id = d.webhook_id
            where d.status = 'PENDING' and d.next_attempt_at <= now() and w.active
            order by d.next_attempt_at limit ${BATCH} for update of d skip locked)
          update webhook_deliveries d
          set next_attempt_at = now() + ${`${leaseMs} milliseconds`}::interval, attempts = d.attempts + 1, round_attempts = d.round_attempts + 1
          from due, webhooks w where d.id = due.id and w.id = d.webhook_id
          returning d.id, d.event_id, d.body, d.attempts, d.round_attempts, w.url, w.secret,
            case when w.previous_secret_expires_at > now() then w.previous_secret end as previous_secret`,
    );

  async function attempt(row: Claimed): Promise<AttemptResult> {
    const problem = urlProblem(row.url, config.allowlist, config.outboundAllow);
    if (problem) return { ok: false, permanent: true, statusCode: null, snippet: null, error: `not posted: ${problem}` };
    const body = JSON.stringify(row.body);
    try {
      const response = await post(row.url, {
        method: 'POST',
        body,
        headers: webhookHeaders(row.previous_secret ? [row.secret, row.previous_secret] : [row.secret], row.event_id, body),
        redirect: 'manual', // never followed: a redirect could lead anywhere, off the allowlist
        signal: AbortSignal.any([AbortSignal.timeout(config.timeoutMs), stopping.signal]),
      });
      const snippet = await readSnippet(response);
      const status = response.status;
      if (status >= 200 && status < 300) return { ok: true, permanent: false, statusCode: status, snippet, error: null };
      const redirect = status >= 300 && status < 400;
      return {
        ok: false,
        permanent: isPermanentStatus(status),
        statusCode: status,
        snippet,
        error: redirect
          ? `the receiver answered a redirect (to ${response.headers.get('location') ?? 'nowhere'}); redirects are never followed: register the final URL`
          : `the receiver answered HTTP ${status}`,
      };
    } catch (error) {
      const e = error as Error;
      const timedOut = e.name === 'TimeoutError';
      const refused = e instanceof OutboundRefusedError;
      return {
        ok: false,
        permanent: refused,
        statusCode: null,
        snippet: null,
        error: timedOut ? `no answer within ${config.timeoutMs} ms` : refused ? `not posted: ${e.message}` : `could not post: ${causeOf(e)}`,
      };
    }
  }

  async function deliver(row: Claimed): Promise<void> {
    const started = performance.now();
    const result = await attempt(row);
    const durationMs = Math.round(performance.now() - started);
    if (stopping.signal.aborted && !result.ok) {
      // Stopped mid-POST: give the row back untried, for the next start (or another replica).
      await db.execute(
        sql`update webhook_deliveries set next_attempt_at = now(), attempts = attempts - 1, round_attempts = round_attempts - 1 where id = ${row.id} and attempts = ${row.attempts}`,
      );
      return;
    }
    const final = result.ok || result.permanent || row.round_attempts >= config.maxAttempts;
    const delay = final ? 0 : backoffMs(config.backoffMs, row.round_attempts);
    const status = result.ok ? 'SUCCEEDED' : final ? 'FAILED' : 'PENDING';
    await db.execute(sql`with logged as (
        insert into webhook_attempts (delivery_id, attempt, status_code, duration_ms, error, response_snippet)
        values (${row.id}, ${row.attempts}, ${result.statusCode}, ${durationMs}, ${result.error}, ${result.snippet}))
      update webhook_deliveries set status = ${status}, last_status_code = ${result.statusCode}, last_error = ${result.error},
        delivered_at = ${result.ok ? sql`now()` : sql`delivered_at`},
        next_attempt_at = ${final ? sql`next_attempt_at` : sql`now() + ${`${delay} milliseconds`}::interval`}
      where id = ${row.id} and attempts = ${row.attempts}`);
    if (!final) later(delay);
  }

  const later = (delay: number) => {
    if (loop.stopped()) return;
    const timer = setTimeout(() => {
      retryTimers.delete(timer);
      worker.kick();
    }, delay + 5);
    timer.unref();
    retryTimers.add(timer);
  };

  const pass = async (): Promise<number> => {
    const rows = await claim();
    await Promise.all(rows.map((row) => deliver(row)));
    return rows.length;
  };

  const loop = kickedLoop({
    pass,
    batchSize: BATCH,
    pollMs: config.pollMs,
    onError: (error) => log(`webhook delivery: ${(error as Error).message} (will retry)`),
  });
  const worker: WebhookWorker = {
    name: 'webhook delivery',
    start: loop.start,
    kick: loop.kick,
    drain: loop.drain,
    async stop() {
      const ending = loop.stop(); // no pass starts from here on, and no retry is scheduled
      for (const timer of retryTimers) clearTimeout(timer);
      retryTimers.clear();
      stopping.abort();
      await ending;
    },
  };
  return worker;
}

/** The first KiB of an answer, as text; the rest is not read. */
async function readSnippet(response: Response): Promise<string | null> {
  if (!response.body) return null;
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < SNIPPET_BYTES) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.byteLength;
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
  const text = Buffer.concat(chunks).subarray(0, SNIPPET_BYTES).toString('utf8');
  return text || null;
}

const causeOf = (e: Error): string => {
  const cause = (e as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? e.message;
};
