// One urql client per signed-in session: queries and mutations over HTTP with the bearer token, subscriptions
// over a single graphql-ws connection that reconnects on its own and reports whether it is live.
import { Client, cacheExchange, fetchExchange, mapExchange, subscriptionExchange } from '@urql/core';
import { createClient as createWsClient } from 'graphql-ws';
import { markingFetch } from '../lib/perf';
import { reconnectDelayMs } from '../lib/reconnect';

/** idle: no page needs live updates, so no connection is open. */
export type LiveState = 'idle' | 'connecting' | 'live' | 'offline';

export interface Api {
  client: Client;
  liveState(): LiveState;
  onLiveState(listener: (state: LiveState) => void): () => void;
  dispose(): void;
}

export function createApi(token: string, onUnauthenticated: (message: string) => void): Api {
  let state: LiveState = 'idle';
  let disposed = false;
  const listeners = new Set<(state: LiveState) => void>();
  const setState = (next: LiveState) => {
    if (next === state) return;
    state = next;
    for (const listener of listeners) listener(next);
  };

  const ws = createWsClient({
    url: `${location.origin.replace(/^http/, 'ws')}/graphql`,
    connectionParams: { authorization: `Bearer ${token}` },
    lazy: true,
    keepAlive: 15_000,
    retryAttempts: Number.POSITIVE_INFINITY,
    retryWait: (retries) => new Promise((resolve) => setTimeout(resolve, reconnectDelayMs(retries))),
    shouldRetry: (event) => !(event instanceof CloseEvent && event.code === 4403),
    on: {
      connecting: () => setState('connecting'),
      connected: () => setState('live'),
      closed: (event) => {
        if (event instanceof CloseEvent && event.code === 4403) onUnauthenticated('The token was refused for live updates; sign in again.');
        // 1000: closed by the client because no subscription needs it any more; anything else is retried
        setState(disposed ? 'offline' : event instanceof CloseEvent && event.code === 1000 ? 'idle' : 'connecting');
      },
    },
  });

  const client = new Client({
    url: '/graphql',
    preferGetMethod: false,
    fetch: markingFetch,
    requestPolicy: 'cache-and-network',
    fetchOptions: () => ({ headers: { authorization: `Bearer ${token}` } }),
    exchanges: [
      mapExchange({
        onError(error) {
          const unauthenticated = error.response?.status === 401 || error.graphQLErrors.some((e) => e.extensions?.code === 'UNAUTHENTICATED');
          if (unauthenticated) onUnauthenticated(error.graphQLErrors[0]?.message ?? 'Your session ended; sign in again.');
        },
      }),
      cacheExchange,
      fetchExchange,
      subscriptionExchange({
        forwardSubscription(request) {
          const input = { ...request, query: request.query ?? '', variables: { ...request.variables } as Record<string, unknown> };
          // An operation that takes `$after` resumes after a reconnect: graphql-ws sends this same payload again, so
          // it asks for the events after the last one received (each result's `extensions.seq`), not a new snapshot.
          const resumable = /\$after\b/.test(input.query);
          return {
            subscribe(sink) {
              const unsubscribe = ws.subscribe(input, {
                next(result) {
                  const seq = (result.extensions as { seq?: unknown } | undefined)?.seq;
                  if (resumable && typeof seq === 'number') input.variables.after = seq;
                  sink.next(result as Parameters<typeof sink.next>[0]);
                },
                error: (error) => sink.error(error),
                complete: () => sink.complete(),
              });
              return { unsubscribe };
            },
          };
        },
      }),
    ],
  });

  return {
    client,
    liveState: () => state,
    onLiveState(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    dispose() {
      disposed = true;
      void ws.dispose();
    },
  };
}

/** The first error message of a failed operation, without urql's "[GraphQL]" prefix. */
export function errorMessage(error: unknown): string {
  if (!error) return 'Unknown error';
  const e = error as { graphQLErrors?: { message: string }[]; networkError?: Error; message?: string };
  if (e.graphQLErrors?.length) return e.graphQLErrors.map((g) => g.message).join('; ');
  if (e.networkError) return `The control plane cannot be reached (${e.networkError.message}).`;
  return e.message ?? String(error);
}

/**
 * True when the server answered that what a page's address names is not there: NOT_FOUND, or BAD_USER_INPUT for an
 * id that cannot be one (a run id that is not a UUID). Such a page says "no such …" with a way on, not "Try again".
 */
export function isNotFound(error: unknown): boolean {
  const codes = ((error as { graphQLErrors?: { extensions?: { code?: unknown } }[] } | undefined)?.graphQLErrors ?? []).map((g) => g.extensions?.code);
  return codes.length > 0 && codes.every((code) => code === 'NOT_FOUND' || code === 'BAD_USER_INPUT');
}

/** A page's QueryState parts: an address naming nothing (NOT_FOUND) shows its empty state, not an error to retry. */
export const foundOrNot = <T, E>(error: E | undefined, data: T | null | undefined) =>
  isNotFound(error) ? { data: null, error: undefined } : { data: data ?? null, error };

/** What "Try again" does: ask the server once more, past the cache. */
export const refetch = (reexecute: (context: { requestPolicy: 'network-only' }) => void) => () => reexecute({ requestPolicy: 'network-only' });
