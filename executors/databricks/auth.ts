// Credentials for the Databricks REST API: a personal access token as is, or OAuth machine-to-machine (a service
// principal's client id and secret exchanged at `/oidc/v1/token`), cached and refreshed before it expires.
import { type Clock, DatabricksApiError, type FetchLike } from './http';

/** A personal access token, or a service principal's OAuth client credentials. */
export type DatabricksAuth = { token: string } | { clientId: string; clientSecret: string };

export interface TokenSource {
  /** The `Authorization` header value for the next request. Throws DatabricksApiError when none can be had. */
  authorization(signal?: AbortSignal): Promise<string>;
  /** Forget a cached token (the API refused it): the next call fetches a fresh one. */
  invalidate(): void;
  /** Whether `invalidate` can help, i.e. tokens are minted rather than given. */
  readonly refreshable: boolean;
}

export interface TokenSourceOptions {
  host: string;
  fetch: FetchLike;
  clock: Clock;
  requestTimeoutMs: number;
  /** Refresh this long before a token expires (Databricks M2M tokens last an hour). */
  refreshMarginMs?: number;
}

const DEFAULT_REFRESH_MARGIN_MS = 5 * 60_000;
const DEFAULT_LIFETIME_S = 3_600;

/**
 * Checks the credentials' shape at start-up, so a misconfigured executor fails when the host starts rather than on
 * its first task. Returns the problem in words, or null.
 */
export function credentialsProblem(auth: unknown): string | null {
  const how = 'give `auth: { token }` (a personal access token) or `auth: { clientId, clientSecret }` (an OAuth M2M service principal)';
  if (!auth || typeof auth !== 'object') return `no Databricks credentials: ${how}`;
  const a = auth as Record<string, unknown>;
  const filled = (v: unknown) => typeof v === 'string' && v.trim() !== '';
  if ('token' in a) return filled(a.token) ? null : `the Databricks token is empty: ${how}`;
  if ('clientId' in a || 'clientSecret' in a) {
    if (!filled(a.clientId)) return `the Databricks OAuth clientId is missing or empty: ${how}`;
    if (!filled(a.clientSecret)) return `the Databricks OAuth clientSecret is missing or empty: ${how}`;
    return null;
  }
  return `no Databricks credentials: ${how}`;
}

export function createTokenSource(auth: DatabricksAuth, options: TokenSourceOptions): TokenSource {
  if ('token' in auth) {
    const header = `Bearer ${auth.token}`;
    return { authorization: async () => header, invalidate: () => undefined, refreshable: false };
  }

  const { clientId, clientSecret } = auth;
  const { clock } = options;
  const margin = options.refreshMarginMs ?? DEFAULT_REFRESH_MARGIN_MS;
  const path = '/oidc/v1/token';
  let cached: { header: string; refreshAt: number } | undefined;
  let inFlight: Promise<string> | undefined;

  async function mint(signal?: AbortSignal): Promise<string> {
    const basic = Buffer.from(`${clientId}:${clientSecret}`).toString('base64');
    const timeout = AbortSignal.timeout(options.requestTimeoutMs);
    let response: Response;
    let text: string;
    try {
      response = await options.fetch(options.host + path, {
        method: 'POST',
        headers: { Authorization: `Basic ${basic}`, 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
        body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'all-apis' }).toString(),
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      });
      text = await response.text();
    } catch (err) {
      if (signal?.aborted) throw err;
      const why = timeout.aborted ? `no answer within ${options.requestTimeoutMs} ms` : err instanceof Error ? err.message : String(err);
      throw new DatabricksApiError(`could not reach the Databricks OAuth token endpoint ${options.host}${path}: ${why}`, {
        method: 'POST',
        path,
        status: null,
        retryable: true,
      });
    }
    const fail = (why: string, extra: Partial<ConstructorParameters<typeof DatabricksApiError>[1]>) =>
      new DatabricksApiError(`Databricks OAuth token request failed (HTTP ${response.status}): ${why}`, {
        method: 'POST',
        path,
        status: response.status,
        retryable: false,
        ...extra,
      });
    let body: { access_token?: unknown; expires_in?: unknown; error?: unknown; error_description?: unknown } = {};
    try {
      body = JSON.parse(text);
    } catch {
      if (response.ok) throw fail(`malformed JSON in the token response`, { retryable: true });
    }
    if (!response.ok) {
      const why = [body.error, body.error_description].filter((s) => typeof s === 'string').join(': ') || text.slice(0, 200);
      if (response.status === 429 || response.status >= 500) throw fail(why, { retryable: true });
      // 400 invalid_client / 401: the client id or secret is wrong, or the principal was removed.
      throw fail(`${why}. Check the executor's OAuth clientId and clientSecret`, { credentials: true });
    }
    if (typeof body.access_token !== 'string' || body.access_token === '') throw fail('the response has no access_token', { retryable: true });
    const lifetimeMs = (typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in : DEFAULT_LIFETIME_S) * 1_000;
    // Short-lived tokens (tests, odd IdPs) refresh at half-life rather than never being fresh.
    const header = `Bearer ${body.access_token}`;
    cached = { header, refreshAt: clock.now() + lifetimeMs - Math.min(margin, lifetimeMs / 2) };
    return header;
  }

  return {
    refreshable: true,
    invalidate() {
      cached = undefined;
    },
    async authorization(signal) {
      if (cached && clock.now() < cached.refreshAt) return cached.header;
      // Concurrent polls share one token request.
      inFlight ??= mint(signal).finally(() => (inFlight = undefined));
      return inFlight;
    },
  };
}
