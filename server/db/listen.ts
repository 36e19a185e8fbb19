// LISTEN on a connection of its own, which says when it stops hearing: a notification sent while no connection listens
// is lost for good, so whoever relies on them must know when it may have missed some (`down`) and when it hears again
// (`up`). postgres-js's `sql.listen` re-listens after a close but says nothing of the gap, and gives up for good when
// the first try fails (Postgres still down); here the listening connection is tried again until it listens.
import type postgres from 'postgres';

export interface ListenHandlers {
  /** A notification's payload. */
  notify(payload: string): void;
  /** Listening (at first, and after each gap): notifications committed from now on are heard. */
  up(): void;
  /** The listening connection closed: notifications committed from now until the next `up` are missed. */
  down(): void;
}

/** Stops listening; idempotent. */
export type Unlisten = () => Promise<void>;

/** The identifier LISTEN takes, quoted. */
const quoted = (channel: string) => `"${channel.replace(/"/g, '""')}"`;

/**
 * Listens on `channel` on a connection `open` makes (one connection at most, which the driver opens again after a
 * close), calling `handlers`. Resolves once the first try to listen has ended, heard or not: a start waits no longer.
 */
export async function listenOnPostgres(
  open: (options: Record<string, unknown>) => postgres.Sql,
  channel: string,
  handlers: ListenHandlers,
  retryDelayS: (attempt: number) => number,
): Promise<Unlisten> {
  let stopped = false;
  let listening = false;
  let trying = false;
  // Bumped by each close: a LISTEN answered on a connection that closed meanwhile is sent again.
  let closes = 0;
  // As postgres-js's own listen: no idle timeout nor lifetime, which would close the connection and so lose notifications.
  const sql = open({
    max: 1,
    idle_timeout: null,
    max_lifetime: null,
    fetch_types: false,
    connection: { application_name: `atelier listen ${channel}` },
    onnotify: (on: string, payload: string) => {
      if (on === channel && !stopped) handlers.notify(payload);
    },
    onclose: () => {
      closes++;
      if (listening) {
        listening = false;
        handlers.down();
      }
      if (!stopped) void listen();
    },
  });

  async function listen(): Promise<void> {
    if (trying) return;
    trying = true;
    try {
      for (let attempt = 0; !stopped; attempt++) {
        const at = closes;
        try {
          await sql.unsafe(`listen ${quoted(channel)}`);
        } catch {
          await new Promise((resolve) => setTimeout(resolve, retryDelayS(attempt) * 1000).unref());
          continue;
        }
        if (closes !== at || stopped) continue;
        listening = true;
        handlers.up();
        return;
      }
    } finally {
      trying = false;
    }
  }

  // The first try alone is awaited: the database answered the migrations a moment ago.
  const first = closes;
  await sql.unsafe(`listen ${quoted(channel)}`).then(
    () => {
      if (closes !== first || listening) return;
      listening = true;
      handlers.up();
    },
    () => void listen(),
  );
  return async () => {
    if (stopped) return;
    stopped = true;
    listening = false;
    await sql.end({ timeout: 1 });
  };
}
