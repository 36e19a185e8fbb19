// Counting the SQL statements a system sends, the same way for Atelier and graphile-worker: pg_stat_statements
// (top-level statements only, BEGIN/COMMIT included) summed over one database and the role the system connects
// as. The bench's own probes (is the run done? the tasks' timestamps) connect as another role, `bench_observer`,
// so they are never counted.
import postgres from 'postgres';

export const OBSERVER = 'bench_observer';

export interface StatementWindow {
  /** Top-level statements the system sent in the window. */
  statements: number;
  /** Server time those statements took, in ms (a top-level statement's time includes what it called). */
  serverMs: number;
  /** True when pg_stat_statements evicted entries meanwhile: the counts are then too low. */
  evicted: boolean;
}

export interface StatementCounter {
  /** Starts a window: forgets everything counted so far. */
  reset(): Promise<void>;
  /** What `database`'s system sent since the last reset. */
  read(database: string): Promise<StatementWindow>;
  end(): Promise<void>;
}

/** On a server started with `shared_preload_libraries=pg_stat_statements`; `adminUrl` is its `postgres` database as the superuser. */
export async function statementCounter(adminUrl: string): Promise<StatementCounter> {
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  await admin`create extension if not exists pg_stat_statements`;
  await admin.unsafe(
    `do $$ begin if not exists (select from pg_roles where rolname = '${OBSERVER}') then create role ${OBSERVER} login superuser; end if; end $$`,
  );
  const observer = postgres(asRole(adminUrl, OBSERVER), { max: 1, onnotice: () => {} });
  let deallocBefore = 0;
  const dealloc = async () => Number((await observer`select dealloc from pg_stat_statements_info`)[0]!.dealloc);
  return {
    async reset() {
      await observer`select pg_stat_statements_reset()`;
      deallocBefore = await dealloc();
    },
    async read(database) {
      const [row] = await observer`
        select coalesce(sum(calls), 0)::bigint as calls, coalesce(sum(total_exec_time), 0)::float8 as ms
        from pg_stat_statements
        where dbid = (select oid from pg_database where datname = ${database})
          and userid <> (select oid from pg_roles where rolname = ${OBSERVER})`;
      return { statements: Number(row!.calls), serverMs: Number(row!.ms), evicted: (await dealloc()) > deallocBefore };
    },
    async end() {
      await observer.end();
      await admin.end();
    },
  };
}

/** The same server URL, connecting as another role (trust authentication on the bench's throwaway server). */
export function asRole(url: string, role: string): string {
  const u = new URL(url);
  u.username = role;
  return u.toString();
}

/** The same server URL, another database. */
export function inDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}
