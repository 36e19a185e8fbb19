// A postgres-js pool of one connection on a socket of the test's own: it counts the chunks Postgres sends back and
// records each statement as the driver sends it, with how many chunks had come back by then. What round trips a
// change takes out is read from it (test/db/transaction-pipelining.test.ts, test/db/event-insert.test.ts).
//
// Postgres answers each pipelined statement as soon as it has run it, so on a loaded machine one round trip's
// answers can reach the driver as several chunks, and a statement the code sends without waiting (a few ticks later,
// behind other work) could be counted as a round trip of its own. So what Postgres sends is held until the driver
// has sent nothing for QUIET_MS, then handed over as one chunk: a statement that waits for an answer is still sent
// only after it, and one that does not is sent within the hold.
import net from 'node:net';
import postgres from 'postgres';

export interface WireSeen {
  /** Chunks Postgres has sent back so far. */
  received: number;
  /** Each statement as sent, with `received` at that moment. */
  sent: { statement: string; received: number }[];
}

const QUIET_MS = 25;

export function countingPool(url: string): { sql: postgres.Sql; seen: WireSeen } {
  const { port, hostname } = new URL(url);
  const seen: WireSeen = { received: 0, sent: [] };
  /** Puts off handing over what Postgres sent: the driver is still sending. */
  let hold = () => {};
  // `socket` is the driver's documented option for a socket of one's own; its types leave it out.
  const options = {
    max: 1,
    onnotice: () => undefined,
    socket: () =>
      new Promise<net.Socket>((resolve) => {
        const socket = net.connect(Number(port), hostname, () => resolve(socket));
        const emit = socket.emit.bind(socket);
        let held: Buffer[] = [];
        const handOver = () => {
          clearTimeout(quiet);
          quiet = undefined;
          if (!held.length) return;
          const chunk = Buffer.concat(held);
          held = [];
          seen.received++;
          emit('data', chunk);
        };
        let quiet: NodeJS.Timeout | undefined;
        hold = () => {
          if (quiet) quiet.refresh();
        };
        socket.emit = (event: string | symbol, ...args: unknown[]) => {
          if (event !== 'data') {
            handOver();
            return emit(event, ...args);
          }
          held.push(args[0] as Buffer);
          quiet ??= setTimeout(handOver, QUIET_MS);
          return true;
        };
      }),
    debug: (_connection: number, statement: string) => {
      hold();
      seen.sent.push({ statement, received: seen.received });
    },
  };
  return { sql: postgres(url, options as postgres.Options<Record<string, never>>), seen };
}

/** The round trips of the transaction in `sent` from its BEGIN to its COMMIT: one per answer waited for. */
export function roundTrips(sent: WireSeen['sent']): number {
  const begin = sent.findIndex((s) => s.statement.startsWith('begin'));
  const commit = sent.findIndex((s) => s.statement.startsWith('commit'));
  return new Set(sent.slice(begin, commit + 1).map((s) => s.received)).size;
}
