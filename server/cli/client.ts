// The CLI's GraphQL client: queries and mutations over HTTP, uploads with the GraphQL multipart request spec,
// and subscriptions over graphql-ws; every failure becomes an ApiError the CLI can print in one format.
import { redactUrl, redactUrls } from '../../plugins/redact-url';
import { printableData } from '../errors/echo';
import { ApiError, type ErrorDetail, leadOf } from './errors';
import { post } from './http-post';

export { ApiError } from './errors';

export interface GraphQLErrorShape {
  message: string;
  extensions?: { code?: string; details?: ErrorDetail[] };
}

export interface ClientOptions {
  /** Base URL of the control plane, e.g. http://127.0.0.1:4000. */
  url: string;
  token: string | null;
}

export interface Client {
  readonly url: string;
  request<T = unknown>(query: string, variables?: Record<string, unknown>): Promise<T>;
  /** Sends `bytes` as the variable `fileVariable` (GraphQL multipart request spec). */
  upload<T = unknown>(query: string, variables: Record<string, unknown>, fileVariable: string, bytes: Uint8Array, filename?: string): Promise<T>;
  /**
   * Calls `onNext` for each event; resolves when the server completes the subscription. A dropped connection is
   * retried (a few times, once it had connected), sending `variables` as they are then: a resumable subscription
   * (runEvents' `after`) moves its cursor in them as events arrive.
   */
  subscribe<T = unknown>(query: string, variables: Record<string, unknown>, onNext: (data: T) => void, options?: { signal?: AbortSignal }): Promise<void>;
}

const TOKEN_HINT = 'set ATELIER_TOKEN (or pass --token) to a valid token; the admin token is in $ATELIER_DATA_DIR/admin-token on the control plane machine';

export function createClient(options: ClientOptions): Client {
  const base = options.url.replace(/\/+$/, '');
  const endpoint = `${base}/graphql`;
  // As messages name it: without a password or token it may carry (https://user:PASSWORD@host).
  const shown = redactUrl(base);
  const auth: Record<string, string> = options.token ? { authorization: `Bearer ${options.token}` } : {};

  /** The status and text of the answer to a POST of `init`: JSON over node:http (http-post.ts), anything else by fetch. */
  async function answer(init: RequestInit): Promise<{ status: number; text: string }> {
    const headers = { ...auth, ...(init.headers as Record<string, string>) };
    const target = URL.canParse(endpoint) ? new URL(endpoint) : null;
    // fetch refuses a URL with credentials (which the messages then leave out): such a URL still goes to it.
    if (typeof init.body === 'string' && target && /^https?:$/.test(target.protocol) && !target.username && !target.password) {
      return post(target, headers, init.body).catch((error) => {
        throw unreachable(shown, { cause: error });
      });
    }
    let res: Response;
    try {
      res = await fetch(endpoint, { method: 'POST', ...init, headers });
    } catch (error) {
      throw unreachable(shown, error);
    }
    return { status: res.status, text: await res.text() };
  }

  async function send<T>(init: RequestInit): Promise<T> {
    const res = await answer(init);
    const text = res.text;
    let body: { data?: T; errors?: GraphQLErrorShape[] } | undefined;
    try {
      body = JSON.parse(text);
    } catch {
      // not JSON: a proxy's error page or a server that is not Atelier; reported by status below
    }
    if (body?.errors?.length) throw fromGraphQLErrors(body.errors, res.status);
    if (res.status === 401) throw new ApiError(`Atelier at ${shown} refused the token (HTTP 401)`, 'UNAUTHENTICATED', [], TOKEN_HINT);
    if (res.status < 200 || res.status > 299 || !body || body.data === undefined) {
      throw new ApiError(`unexpected answer from ${shown}/graphql: HTTP ${res.status} ${text.slice(0, 200)}`, `HTTP_${res.status}`);
    }
    // What the server says is shown in a terminal: text, never the terminal's commands (errors are escaped as printed).
    return printableData(body.data as T);
  }

  return {
    url: base,
    request: (query, variables = {}) =>
      send({
        headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json' },
        body: JSON.stringify({ query, variables }),
      }),

    upload(query, variables, fileVariable, bytes, filename = 'module.tar.gz') {
      const form = new FormData();
      form.set('operations', JSON.stringify({ query, variables: { ...variables, [fileVariable]: null } }));
      form.set('map', JSON.stringify({ 0: [`variables.${fileVariable}`] }));
      form.set('0', new Blob([new Uint8Array(bytes)], { type: 'application/gzip' }), filename);
      // The preflight header satisfies yoga's CSRF guard for multipart requests.
      return send({ headers: { 'graphql-require-preflight': '1', accept: 'application/graphql-response+json, application/json' }, body: form });
    },

    async subscribe(query, variables, onNext, subscribeOptions = {}) {
      // Loaded here: most commands never subscribe, and every command pays for what it imports at start-up.
      const [{ createClient: createWsClient }, { default: WebSocket }] = await Promise.all([import('graphql-ws'), import('ws')]);
      let connected = false;
      const ws = createWsClient({
        url: `${base.replace(/^http/, 'ws')}/graphql`,
        webSocketImpl: WebSocket,
        connectionParams: auth.authorization ? { authorization: auth.authorization } : {},
        lazy: true,
        // A dropped connection is retried with the same payload object (graphql-ws sends it again as it is then):
        // runEvents without `after` starts with a snapshot again, with `after` resumes where its caller moved it.
        retryAttempts: 5,
        shouldRetry: () => connected,
        on: { connected: () => void (connected = true) },
      });
      return new Promise<void>((resolve, reject) => {
        let settled = false;
        const finish = (error?: unknown) => {
          if (settled) return;
          settled = true;
          void ws.dispose();
          if (error) reject(error);
          else resolve();
        };
        const unsubscribe = ws.subscribe(
          { query, variables },
          {
            next: (value) => {
              if (value.errors?.length) return finish(fromGraphQLErrors(value.errors as GraphQLErrorShape[], 200));
              try {
                onNext(printableData(value.data) as never);
              } catch (error) {
                unsubscribe();
                finish(error);
              }
            },
            error: (error) => finish(subscriptionError(shown, error, connected)),
            complete: () => finish(),
          },
        );
        subscribeOptions.signal?.addEventListener('abort', () => {
          unsubscribe();
          finish();
        });
      });
    },
  };
}

function fromGraphQLErrors(errors: GraphQLErrorShape[], status: number): ApiError {
  const first = errors[0]!;
  const code = first.extensions?.code ?? (status === 401 ? 'UNAUTHENTICATED' : 'ERROR');
  // Several errors at once are rare (one per failing field); their messages are kept, the first code wins.
  const details = [...(first.extensions?.details ?? []), ...errors.slice(1).map((e) => ({ message: e.message }))];
  // A variable the server could not take is named by the CLI's own query ("$i"), not by anything the user typed: the
  // server's detail says where in the input and what it takes.
  const lead = /^Variable "\$/.test(first.message) && details.length ? 'A value you gave was refused:' : leadOf(first.message, first.extensions?.details ?? []);
  return new ApiError(lead, code, details, code === 'UNAUTHENTICATED' ? TOKEN_HINT : undefined);
}

function unreachable(base: string, error: unknown): ApiError {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  // A fetch error may quote the URL whole (one with credentials is refused so): its secrets left out.
  const why = redactUrls(cause?.code ?? cause?.message ?? (error as Error).message);
  return new ApiError(
    `cannot reach Atelier at ${base} (${why})`,
    'UNREACHABLE',
    [],
    'start it with `npm start`, or point the CLI at the running one with ATELIER_URL=http://HOST:PORT or --url',
  );
}

function subscriptionError(base: string, error: unknown, connected: boolean): ApiError {
  if (Array.isArray(error)) return fromGraphQLErrors(error as GraphQLErrorShape[], 200);
  // graphql-ws reports socket problems as a CloseEvent or an ErrorEvent-like object, not an Error.
  const event = error as { code?: number; reason?: string; message?: string; error?: { code?: string } };
  if (event.code === 4403 || event.code === 4401) {
    return new ApiError(`Atelier at ${base} refused the token for the live connection`, 'UNAUTHENTICATED', [], TOKEN_HINT);
  }
  if (!connected) return unreachable(base, { cause: { code: event.error?.code ?? event.reason ?? event.message ?? 'connection failed' } });
  const reason = event.reason || event.message || (error instanceof Error ? error.message : `closed with code ${event.code}`);
  return new ApiError(`the live connection to ${base} was lost: ${reason}`, 'DISCONNECTED');
}
