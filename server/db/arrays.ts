// Lists as ONE bound parameter: a Postgres array literal cast to its type (`= any(...)`), instead of the one
// parameter per element that drizzle's inArray generates. Building those lists was 11% of the control plane's CPU
// at 2,000 tasks (issue 21); one parameter also keeps the statement's text the same whatever the list's length.
// A text literal with a cast, not a driver array, so postgres-js and PGlite read it alike.
import { type SQL, sql } from 'drizzle-orm';

type ElementType = 'uuid' | 'text' | 'int' | 'bigint';

/** `values` as a `type[]` value, for `column = any(${arrayOf(ids, 'uuid')})`. */
export function arrayOf(values: readonly (string | number)[], type: ElementType): SQL {
  return sql`${arrayLiteral(values)}::${sql.raw(type)}[]`;
}

/**
 * `values` as a Postgres array literal (a query built once takes it as a placeholder's value, cast there). A string
 * with no quote or backslash (every id) is quoted as it is: the two replacements, run on each, were half the cost.
 */
export function arrayLiteral(values: readonly (string | number)[]): string {
  return `{${values.map((v) => (typeof v === 'number' ? String(v) : `"${v.includes('"') || v.includes('\\') ? v.replaceAll('\\', '\\\\').replaceAll('"', '\\"') : v}"`)).join(',')}}`;
}

/** Rows as one JSON parameter read by `json_to_recordset`: `from ${jsonRows(rows)} as v(id uuid, ...)`. */
export function jsonRows(rows: readonly Record<string, unknown>[]): SQL {
  return sql`json_to_recordset(${JSON.stringify(rows)}::json)`;
}

/**
 * `column = $1` for one value, else `column = any($1)`. A prepared statement (prepared.ts) with `= any($1)` is planned
 * anew on every call: its generic plan guesses ten values and is costed above the custom plan for the one given, so
 * Postgres never settles on it (the success's update of a chain edge: ~0.3 ms of planning an edge, on the path). With
 * `= $1` the generic plan is the custom one and is kept after five calls per connection. Two texts, not one: each is kept
 * prepared on every connection.
 */
export function oneOrAny(column: string, values: readonly (string | number)[], type: ElementType): SQL {
  return values.length === 1 ? sql`${sql.raw(column)} = ${values[0]}::${sql.raw(type)}` : sql`${sql.raw(column)} = any(${arrayOf(values, type)})`;
}

/**
 * `alias.id = any(ids)` (`= id` for one: oneOrAny), beside `alias.id = v.id` in an update from a `jsonRows` row set:
 * the planner takes such a set for 100 rows whatever it holds, and joins it by a hash over a scan of the whole table
 * (12 ms for 170 rows among 10,000 tasks, growing with the table); an id list it can count leads it to the primary key.
 */
export function idAmong(alias: string, ids: readonly string[]): SQL {
  return oneOrAny(`${alias}.id`, ids, 'uuid');
}
