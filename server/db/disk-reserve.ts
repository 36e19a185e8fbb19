// Keeps the embedded database (PGlite) off a full disk. Postgres answers a data file it cannot extend with an error,
// but a WAL segment it cannot create with a PANIC, after which PGlite never answers again and holds the process's
// event loop: every request hangs until the process is killed (measured, session 24). So while the data directory's
// disk has less free space than a reserve, the database is read-only: reads go on, each write is refused as Postgres
// refuses a full disk (SQLSTATE 53100, which the edges answer as UNAVAILABLE saying what to do), and once space is
// freed it takes writes again.
import { statfs } from 'node:fs/promises';
import { DATABASE_DISK_FULL } from '../errors/disk-full';

/** More than a WAL segment (16 MiB, created whole) and what a busy second writes besides. */
export const DISK_RESERVE_BYTES = 64 * 1024 * 1024;
const CHECK_EVERY_MS = 500;
/** Postgres's SQLSTATE for a write in a read-only transaction. */
const READ_ONLY_SQL_TRANSACTION = '25006';

/** The PGlite calls drizzle makes (the same object drizzle holds, so that errors from any of them are explained). */
interface GuardedClient {
  query(...args: never[]): Promise<unknown>;
  exec(...args: never[]): Promise<unknown>;
  transaction(...args: never[]): Promise<unknown>;
}

export interface DiskReserve {
  /** Whether the database is read-only now for want of space. */
  readonly low: boolean;
  stop(): void;
}

const MiB = (bytes: number) => `${Math.floor(bytes / 1024 / 1024)} MiB`;
const codeOf = (e: unknown) => (e as { code?: unknown } | undefined)?.code;

/**
 * Watches the free space under `dir` (checked once before it returns) and keeps `client` read-only while it is below
 * `reserveBytes`. `log` hears each change, with what to do.
 */
export async function keepDiskReserve(
  client: GuardedClient,
  dir: string,
  options: { reserveBytes?: number; everyMs?: number; log: (message: string) => void },
): Promise<DiskReserve> {
  const reserve = options.reserveBytes ?? DISK_RESERVE_BYTES;
  let low = false;
  let stopped = false;
  let checking: Promise<void> | undefined;

  const explain = (error: unknown) => {
    // A write refused while read-only (graphql-js, drizzle wrap it: look at the causes too).
    const refused = low && [error, (error as { cause?: unknown })?.cause].some((e) => codeOf(e) === READ_ONLY_SQL_TRANSACTION);
    if (!refused) return error;
    return Object.assign(new Error(`the embedded database's disk (${dir}) has less than ${MiB(reserve)} free: it takes no writes until space is freed`), {
      code: DATABASE_DISK_FULL,
      cause: error,
    });
  };
  for (const method of ['query', 'exec', 'transaction'] as const) {
    const call = client[method].bind(client) as (...args: unknown[]) => Promise<unknown>;
    (client as unknown as Record<string, unknown>)[method] = (...args: unknown[]) =>
      call(...args).catch((error: unknown) => {
        throw explain(error);
      });
  }

  async function check() {
    const { bavail, bsize } = await statfs(dir);
    const free = bavail * bsize;
    const short = free < reserve;
    if (short === low || stopped) return;
    low = short; // at once: a write refused before the setting lands is explained as one after it
    await client.exec(`set default_transaction_read_only = ${short ? 'on' : 'off'}` as never);
    options.log(
      short
        ? `The embedded database's disk (${dir}) has ${MiB(free)} free, less than the ${MiB(reserve)} it keeps in reserve: it is read-only (reads work, writes are refused) until space is freed there (ATELIER_DATA_DIR), or set DATABASE_URL to use Postgres.`
        : `The embedded database's disk (${dir}) has ${MiB(free)} free again: it takes writes.`,
    );
  }
  const tick = () => {
    checking ??= check()
      .catch((error: unknown) => options.log(`checking the free space under ${dir} failed: ${(error as Error).message}`))
      .finally(() => (checking = undefined));
    return checking;
  };
  await tick();
  const timer = setInterval(tick, options.everyMs ?? CHECK_EVERY_MS);
  timer.unref();
  return {
    get low() {
      return low;
    },
    stop() {
      stopped = true;
      clearInterval(timer);
    },
  };
}
