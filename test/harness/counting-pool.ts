// A postgres-js pool of one connection on a socket of the test's own: it counts the chunks Postgres sends back and
// records each statement as the driver sends it, with how many chunks had come back by then. What round trips a
// change takes out is read from it (test/db/transaction-pipelining.test.ts, test/db/event-insert.test.ts).
import net from 'node:net';
import postgres from 'postgres';

export interface WireSeen {
  /** Chunks Postgres has sent back so far. */
  received: number;
  /** Each statement as sent, with `received` at that moment. */
  sent: { statement: string; received: number }[];
}

export function countingPool(url: string): { sql: postgres.Sql; seen: WireSeen } {
  const { port, hostname } = new URL(url);
  const seen: WireSeen = { received: 0, sent: [] };
  // `socket` is the driver's documented option for a socket of one's own; its types leave it out.
  const options = {
    max: 1,
    onnotice: () => undefined,
    socket: () =>
      new Promise<net.Socket>((resolve) => {
        const socket = net.connect(Number(port), hostname, () => resolve(socket));
        socket.on('data', () => seen.received++);
      }),
    debug: (_connection: number, statement: string) => seen.sent.push({ statement, received: seen.received }),
  };
  return { sql: postgres(url, options as postgres.Options<Record<string, never>>), seen };
}

/** The round trips of the transaction in `sent` from its BEGIN to its COMMIT: one per answer waited for. */
export function roundTrips(sent: WireSeen['sent']): number {
  const begin = sent.findIndex((s) => s.statement.startsWith('begin'));
  const commit = sent.findIndex((s) => s.statement.startsWith('commit'));
  return new Set(sent.slice(begin, commit + 1).map((s) => s.received)).size;
}
