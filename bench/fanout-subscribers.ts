// N graphql-ws clients of one token, each subscribed to one document: the fan-out benches' subscribers
// (live-fanout.ts, executors-fanout.ts). In-process, so they share the CPU with the control plane they measure.
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

export interface Subscribers {
  /** Resolves once `ok` holds, checked at each result any subscriber receives (and every 50 ms). */
  until(ok: () => boolean): Promise<void>;
  dispose(): Promise<void>;
}

/** `count` clients of `token` on `baseUrl`'s /graphql, each subscribed to `query`; each result's data goes to `next`. */
export function openSubscribers<T>(baseUrl: string, token: string, count: number, query: string, next: (data: T | null | undefined) => void): Subscribers {
  let wake: () => void = () => undefined;
  const clients = Array.from({ length: count }, () =>
    createClient({
      url: `${baseUrl.replace(/^http/, 'ws')}/graphql`,
      webSocketImpl: WebSocket,
      connectionParams: { authorization: `Bearer ${token}` },
      retryAttempts: 0,
    }),
  );
  for (const client of clients)
    client.subscribe<T>(
      { query },
      {
        next: ({ data }) => {
          next(data);
          wake();
        },
        error: (error) => console.error('subscriber error', error),
        complete: () => undefined,
      },
    );
  return {
    async until(ok) {
      while (!ok()) await new Promise<void>((resolve) => ((wake = resolve), setTimeout(resolve, 50)));
    },
    async dispose() {
      await Promise.all(clients.map((c) => c.dispose()));
    },
  };
}
