// What the statement profiles (edge-profile.ts, throughput-profile.ts) run in: Postgres with pg_stat_statements,
// nats-server, the statement counter, a control plane with the given workflows, and a connection that reads the
// control plane's statements (its own left out).
import postgres from 'postgres';
import { startNats } from '../../test/harness/nats';
import { startPostgres } from '../../test/harness/postgres';
import { type AtelierUnderTest, startAtelier } from './atelier';
import { asRole, inDatabase, OBSERVER, type StatementCounter, statementCounter } from './statements';

export interface ProfileWorld {
  atelier: AtelierUnderTest;
  counter: StatementCounter;
  /** The nats-server's URL (its process is found by its port). */
  natsUrl: string;
  /** The Postgres server log (auto_explain writes plans there). */
  logFile: string;
  /** The Postgres server's port (its postmaster is found by it). */
  pgPort: number;
  /** The observer role in the `postgres` database, where pg_stat_statements is. */
  statementsObserver: postgres.Sql;
  /**
   * Every statement the control plane sent so far: calls, server time (`planMs` and `plans` 0 unless the settings turn
   * `pg_stat_statements.track_planning` on), normalised text, most calls or time first.
   */
  statements(order: 'calls' | 'time'): Promise<{ calls: string; rows: string; ms: number; planMs: number; plans: string; query: string }[]>;
  stop(): Promise<void>;
}

export async function profileWorld(workflows: object[], settings: Record<string, string> = {}): Promise<ProfileWorld> {
  const [pg, nats] = await Promise.all([
    startPostgres({
      settings: { shared_preload_libraries: 'pg_stat_statements', 'pg_stat_statements.max': '20000', 'pg_stat_statements.track': 'top', ...settings },
    }),
    startNats(),
  ]);
  const counter = await statementCounter(inDatabase(pg.url, 'postgres'));
  // PROFILE_PG_SOCKET=1: the control plane reaches Postgres over its Unix socket (libpq's form of DATABASE_URL), not TCP loopback.
  const appPgUrl = process.env.PROFILE_PG_SOCKET === '1' ? socketUrl(pg.url, pg.socketDir) : undefined;
  const atelier = await startAtelier({ pgUrl: pg.url, natsUrl: nats.url, appPgUrl }, workflows, counter, 2000);
  const observer = postgres(asRole(inDatabase(pg.url, 'postgres'), OBSERVER), { max: 1, onnotice: () => {} });
  return {
    atelier,
    counter,
    natsUrl: nats.url,
    logFile: pg.logFile,
    pgPort: pg.port,
    statementsObserver: observer,
    statements: (order) => observer<{ calls: string; rows: string; ms: number; planMs: number; plans: string; query: string }[]>`
      select calls, rows, total_exec_time as ms, total_plan_time as "planMs", plans, query from pg_stat_statements
      where dbid = (select oid from pg_database where datname = ${atelier.database})
        and userid <> (select oid from pg_roles where rolname = ${OBSERVER})
      order by ${order === 'calls' ? observer`calls` : observer`total_exec_time`} desc`,
    async stop() {
      await observer.end();
      await atelier.stop();
      await counter.end();
      await nats.stop();
      await pg.stop();
    },
  };
}

/** `url` (postgres://user@127.0.0.1:port/db) as libpq names the same server's Unix socket: `postgres://user@/db?host=dir&port=port`. */
function socketUrl(url: string, socketDir: string): string {
  const u = new URL(url);
  return `postgres://${u.username}@${u.pathname}?host=${encodeURIComponent(socketDir)}&port=${u.port}`;
}
