// Whether Postgres answers at all, for a network partition (packets dropped, nothing reset): the driver has no
// statement timeout and TCP retransmits for about 15 minutes before it gives a socket up, so every statement on a
// pooled connection, and every request and loop waiting on one, would wait that long. A probe on a connection of its
// own asks `select 1` every `intervalMs`; one unanswered within `deadlineMs` marks Postgres out of reach: the pool's
// connections are destroyed (their statements fail as lost connections, which requests answer UNAVAILABLE and loops
// retry) and new ones fail at once, until a probe is answered again. A slow statement is never cut while the probe
// is answered, so a long query or a lock wait is no partition.
import net from 'node:net';
import type postgres from 'postgres';
import { isLostConnection } from '../errors/lost-connection';

type Options = postgres.Options<Record<string, postgres.PostgresType>>;
/** What postgres-js hands a `socket` factory: its parsed options. */
type Parsed = { host: string[]; port: number[]; path?: string | false };

export interface Reachability {
  /** The pool's `socket` option: connections it can destroy, failed at once while Postgres is out of reach. */
  socket(parsed: Parsed): Promise<net.Socket>;
  /** Starts probing (after the migrations: a probe must not wait behind them). */
  start(): void;
  stop(): Promise<void>;
}

/** Thrown for a connection asked for while Postgres is out of reach: a lost connection's code (UNAVAILABLE at the edges). */
const outOfReach = (deadlineMs: number) =>
  Object.assign(
    new Error(`Postgres did not answer for ${deadlineMs / 1000} s (a network partition, or the server hung); connections are refused until it answers`),
    {
      code: 'ETIMEDOUT',
    },
  );

export function createReachability(
  driver: typeof postgres,
  url: string,
  options: Options,
  { deadlineMs = 10_000, intervalMs = 1_000, log = (_: string) => {} }: { deadlineMs?: number; intervalMs?: number; log?: (message: string) => void } = {},
): Reachability {
  const pooled = new Set<net.Socket>();
  let unreachableSince: number | undefined;
  // Returned as it starts connecting, as postgres-js's own: a refused or failed connection then reaches the driver as
  // its events ('error', 'close'), which it answers by failing the waiting statements and connecting again later (a
  // factory that throws instead leaves the pool's connection waiting forever), and its connect_timeout applies.
  // Each connection tries the next host of a multi-host URL, as the driver's own sockets do (connection.js hostIndex):
  // a host that refuses or is not the primary is passed over on the next attempt.
  let nextHost = 0;
  const open = (parsed: Parsed, into: Set<net.Socket>): net.Socket => {
    const i = nextHost++ % parsed.host.length;
    const socket = parsed.path ? net.connect(parsed.path) : net.connect(parsed.port[i] ?? parsed.port[0]!, parsed.host[i]!);
    into.add(socket);
    socket.once('close', () => into.delete(socket));
    return socket;
  };
  // The probe's own connection, opened again after each probe that went unanswered.
  const probeSockets = new Set<net.Socket>();
  const probe = driver(url, {
    ...options,
    max: 1,
    onnotice: () => {},
    connect_timeout: Math.ceil(deadlineMs / 1000),
    socket: async (parsed: Parsed) => open(parsed, probeSockets),
  } as Options);
  let timer: NodeJS.Timeout | undefined;
  let probing: Promise<void> | undefined;

  async function check(): Promise<void> {
    let stop = () => {};
    const answered = await new Promise<boolean>((resolve) => {
      stop = liveDeadline(deadlineMs, () => resolve(false));
      probe`select 1`.then(
        () => resolve(true),
        (error: unknown) => {
          // An answer that is an error (Postgres refusing, restarting) is no partition: the pool sees those itself. A
          // connect timeout is left to the live deadline, which stalls of this process do not use up.
          if (!isLostConnection(error) || (error as { code?: string }).code !== 'CONNECT_TIMEOUT') resolve(true);
        },
      );
    });
    stop();
    if (answered) {
      if (unreachableSince !== undefined) log(`Postgres answers again after ${Math.round((Date.now() - unreachableSince) / 1000)} s out of reach`);
      unreachableSince = undefined;
      return;
    }
    if (unreachableSince === undefined) {
      unreachableSince = Date.now();
      log(`Postgres did not answer within ${deadlineMs / 1000} s: out of reach; its connections are closed and requests answered UNAVAILABLE until it answers`);
    }
    for (const socket of [...pooled, ...probeSockets]) socket.destroy();
  }

  return {
    async socket(parsed) {
      if (unreachableSince === undefined) return open(parsed, pooled);
      const refused = new net.Socket();
      setImmediate(() => refused.destroy(outOfReach(deadlineMs)));
      return refused;
    },
    start() {
      timer ??= setInterval(() => {
        probing ??= check()
          .catch((error) => log(`probing Postgres failed: ${(error as Error).message}`))
          .finally(() => (probing = undefined));
      }, intervalMs);
      timer.unref();
    },
    async stop() {
      clearInterval(timer);
      await probing;
      await probe.end({ timeout: 1 });
    },
  };
}

/**
 * Calls `expire` once `ms` of this process's live time has passed: the time is counted in steps of a tenth, and a step
 * that came late (the event loop was blocked: a long synchronous stretch such as the embedded database migrating, or a
 * huge GC) counts as one step, not as the time it was late. A wall-clock deadline read a stall of this process as
 * Postgres out of reach, and destroyed every pooled connection under a healthy server (CI, test/db/prepared.test.ts).
 * The verdict itself waits one more turn (setImmediate, after the poll phase), for an answer read in that turn.
 */
export function liveDeadline(ms: number, expire: () => void): () => void {
  const step = Math.max(5, Math.floor(ms / 10));
  let left = ms;
  let last = Date.now();
  let timer: NodeJS.Timeout | undefined;
  let immediate: NodeJS.Immediate | undefined;
  const tick = () => {
    const now = Date.now();
    left -= Math.min(now - last, step);
    last = now;
    if (left > 0) timer = setTimeout(tick, step);
    else immediate = setImmediate(expire);
  };
  timer = setTimeout(tick, step);
  return () => {
    clearTimeout(timer);
    if (immediate) clearImmediate(immediate);
  };
}
