// Hot-path queries built once. drizzle builds a query's SQL text anew on every call (the builder, then `sqlToQuery`
// walking every column and condition: 0.1–0.3 ms of CPU for a wide table, on every request's path); a query made by
// `builtOnce` is built on its first call, with `sql.placeholder(name)` wherever a value varies, and afterwards only
// run, on whichever session it is handed (the db or a transaction), with the same result mapping as the builder's.
// drizzle's own `.prepare(name)` cannot do this: it binds the query to the session it was built on. Both are sent as
// server-side prepared statements (NAMED below).
import { type Query, QueryPromise, type SQL } from 'drizzle-orm';
import { PgDialect, type PgPreparedQuery, type PreparedQueryConfig } from 'drizzle-orm/pg-core';
import type { Db, Tx } from './client';

type Session = Db | Tx;

/** What a prepared query keeps besides its text: how its rows map to results (drizzle's internals, read once). */
interface Mapping {
  fields?: Parameters<Db['_']['session']['prepareQuery']>[1];
  customResultMapper?: Parameters<Db['_']['session']['prepareQuery']>[4];
  queryMetadata?: Parameters<Db['_']['session']['prepareQuery']>[5];
  joinsNotNullableMap?: Record<string, boolean>;
  isResponseInArrayMode(): boolean;
}

interface Template {
  query: Query;
  mapping: Mapping;
}

/**
 * A query built on its first call by `build` (a drizzle builder on the session given, values as placeholders) and run
 * as built from then on; `values` fill its placeholders (`builtOnce<{ id: string }>()((db) => …)`). `build` must give
 * the same SQL on every session: no value may be spelled into it (a literal would be kept from the first call for every
 * later one). In a condition a placeholder's value goes to the driver as given (pass strings, numbers, booleans); in an
 * insert's values or an update's set drizzle encodes it as the column does, a null included (a jsonb column's null
 * becomes JSON null, a timestamp's fails): spell such a nullable column with `sql` and a cast instead.
 */
export const builtOnce =
  <V extends Record<string, unknown>>() =>
  <T>(build: (db: Session) => { prepare(name: string): PgPreparedQuery<PreparedQueryConfig & { execute: T }> }): ((db: Session, values: V) => Promise<T>) => {
    let template: Template | undefined;
    const execute = (db: Session, values: V): Promise<T> => {
      if (!template) {
        const prepared = build(db).prepare('built-once');
        template = { query: prepared.getQuery(), mapping: prepared as unknown as Mapping };
      }
      const { query, mapping } = template;
      const run = db._.session.prepareQuery<PreparedQueryConfig & { execute: T }>(
        query,
        mapping.fields,
        NAMED,
        mapping.isResponseInArrayMode(),
        mapping.customResultMapper as ((rows: unknown[][]) => T) | undefined,
        mapping.queryMetadata,
      );
      (run as unknown as Mapping).joinsNotNullableMap = mapping.joinsNotNullableMap;
      return run.execute(values);
    };
    return (db, values) => new SentWhenAwaited(() => execute(db, values));
  };

/**
 * Raw SQL built once: `build` gives the statement with `sql.placeholder(name)` wherever a value varies (cast there:
 * values go to the driver as given), and the result is its rows as `queryRows` gives them, whichever the driver.
 */
export const sqlOnce =
  <V extends Record<string, unknown>>() =>
  <T>(build: () => SQL): ((db: Session, values: V) => Promise<T[]>) => {
    let query: Query | undefined;
    const execute = async (db: Session, values: V): Promise<T[]> => {
      query ??= dialect.sqlToQuery(build());
      const result = (await db._.session.prepareQuery(query, undefined, NAMED, false).execute(values)) as T[] | { rows: T[] };
      return Array.isArray(result) ? result : result.rows;
    };
    return (db, values) => new SentWhenAwaited(() => execute(db, values));
  };

/**
 * Any name: drizzle's postgres-js session only asks whether there is one, and then has the driver keep the statement
 * prepared on each connection (named by the driver), parsed once there and, after Postgres' first five custom plans,
 * run on its generic plan without planning. Unnamed, every execution was parsed and planned anew: on a chain edge,
 * ~1 ms of Postgres' time on the recording's path (the counting statement's plan alone ~0.5 ms, its run 0.15), per
 * pg_stat_statements with track_planning. A statement's first execution on a connection is described first (one
 * round trip, once per connection). Only statements whose text never changes may be named (these, built once):
 * a text per call would leave a statement per call on the server. PGlite ignores the name.
 */
const NAMED = 'once';

/**
 * Raw SQL built per call, sent as a prepared statement (NAMED) and its rows as `queryRows` gives them: for a hot-path
 * statement whose text is one of a few fixed forms, every value a parameter (`arrayOf`, `jsonRows`, `${value}`), never
 * spelled into the text (`sql.raw` of a value, `insertRows`' column lists): each text becomes a statement kept on every
 * connection. Reaches the connection in as many steps as `queryRows`, so neither overtakes the other on a transaction.
 */
export async function preparedRows<T>(db: Session, query: SQL): Promise<T[]> {
  const result = (await new SentWhenAwaited(() => db._.session.prepareQuery(dialect.sqlToQuery(query), undefined, NAMED, false).execute())) as
    | T[]
    | { rows: T[] };
  return Array.isArray(result) ? result : result.rows;
}

/** Builds raw SQL's text (no table or casing settings are involved in it). */
const dialect = new PgDialect();

/**
 * Sent when first awaited (or `then`), as drizzle's builders are (the same QueryPromise): a statement issued after
 * another on a transaction then reaches the connection after it, whichever way each was issued (`writeBehind` relies on
 * it). Sent once, however often awaited.
 */
class SentWhenAwaited<T> extends QueryPromise<T> {
  #sent: Promise<T> | undefined;
  constructor(private readonly send: () => Promise<T>) {
    super();
  }
  execute(): Promise<T> {
    this.#sent ??= this.send();
    return this.#sent;
  }
}
