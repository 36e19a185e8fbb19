// S4's floor, measured in the same run: the same number of graphql-ws clients in this process, receiving the same
// number of events at the same moments as Atelier's run produced them, from a bare `graphql-ws` server (the library's
// documented `useServer` over `ws`, a two-field schema, events from memory: no control plane, database, bus or access
// checks). What Atelier's p99 costs above this is its own; what this costs is the machine's (2 cores shared by a
// server and 1,000 clients parsing every delivery).
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { buildSchema } from 'graphql';
import { createClient } from 'graphql-ws';
import { useServer } from 'graphql-ws/use/ws';
import WebSocket, { WebSocketServer } from 'ws';
import { percentile } from '../lib';

const schema = buildSchema(`
  type Query { ok: Boolean }
  type Event { seq: Int! at: String! }
  type Subscription { runEvents(runId: ID!): Event! }
`);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `schedule`: each event's offset (ms) from the moment all subscribers are ready, as Atelier's run produced them. */
export async function fanOutFloor(subscribers: number, schedule: number[]): Promise<{ p50: number; p99: number; deliveries: number }> {
  const listeners = new Set<(event: { seq: number; at: string }) => void>();
  const rootValue = {
    runEvents: () => {
      // One queue per subscription: graphql-ws pulls from it as it sends.
      const queue: { seq: number; at: string }[] = [];
      let wake: (() => void) | null = null;
      const push = (e: { seq: number; at: string }) => {
        queue.push(e);
        wake?.();
      };
      listeners.add(push);
      return (async function* () {
        try {
          for (;;) {
            while (queue.length) yield { runEvents: queue.shift() };
            await new Promise<void>((r) => (wake = r));
            wake = null;
          }
        } finally {
          listeners.delete(push);
        }
      })();
    },
  };
  const http = createServer();
  const wss = new WebSocketServer({ server: http, path: '/graphql' });
  const disposable = useServer({ schema, roots: { subscription: rootValue } }, wss);
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  const url = `ws://127.0.0.1:${(http.address() as AddressInfo).port}/graphql`;
  const clients = Array.from({ length: subscribers }, () => createClient({ url, webSocketImpl: WebSocket, retryAttempts: 0, lazy: true }));
  const latencies: number[] = [];
  let received = 0;
  let settle!: () => void;
  const done = new Promise<void>((r) => (settle = r));
  try {
    for (const client of clients)
      client.subscribe<{ runEvents: { seq: number; at: string } }>(
        { query: 'subscription { runEvents(runId: "floor") { seq at } }' },
        {
          next: ({ data }) => {
            if (data) latencies.push(Date.now() - Date.parse(data.runEvents.at));
            if (++received === subscribers * schedule.length) settle();
          },
          error: () => undefined,
          complete: () => undefined,
        },
      );
    for (let deadline = Date.now() + 120_000; listeners.size < subscribers; await sleep(20))
      if (Date.now() > deadline) throw new Error(`floor: ${listeners.size} of ${subscribers} subscribed after 120 s`);
    const start = Date.now();
    for (const [i, offset] of schedule.entries()) {
      const wait = start + offset - Date.now();
      if (wait > 0) await sleep(wait);
      const event = { seq: i + 1, at: new Date().toISOString() };
      for (const push of listeners) push(event);
    }
    await Promise.race([done, sleep(120_000)]);
    return { p50: percentile(latencies, 50), p99: percentile(latencies, 99), deliveries: latencies.length };
  } finally {
    await Promise.all(clients.map((c) => c.dispose()));
    await disposable.dispose();
    wss.close();
    await new Promise<void>((r) => http.close(() => r()));
  }
}
