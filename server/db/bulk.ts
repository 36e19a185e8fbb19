// Multi-row writes that stay fast at 10k rows: the rows travel as one JSON parameter expanded by
// json_populate_recordset, instead of one bound parameter per cell (which costs more to build than to run).
import { getTableColumns, getTableName, type SQL, sql } from 'drizzle-orm';
import type { PgTable } from 'drizzle-orm/pg-core';
import { type Db, queryRows, type Tx } from './client';

const CHUNK = 5000;

/** Inserts rows keyed by the table's property names; columns a row leaves out get their defaults. */
export async function bulkInsert<T extends PgTable>(
  db: Db | Tx,
  table: T,
  rows: T['$inferInsert'][],
  options: { onConflictDoNothing?: boolean; returning?: SQL } = {},
): Promise<Record<string, unknown>[]> {
  if (!rows.length) return [];
  const out: Record<string, unknown>[] = [];
  for (let i = 0; i < rows.length; i += CHUNK) {
    const query = sql`${insertRows(table, rows.slice(i, i + CHUNK))}${options.onConflictDoNothing ? sql` on conflict do nothing` : sql``}${
      options.returning ? sql` returning ${options.returning}` : sql``
    }`;
    if (options.returning) out.push(...(await queryRows<Record<string, unknown>>(db, query)));
    else await db.execute(query);
  }
  return out;
}

/**
 * The insert statement of `rows` (keyed by the table's property names; columns a row leaves out get their
 * defaults), all in one JSON parameter: for a data-modifying WITH of a larger statement, or `bulkInsert`. A column
 * every row sets to the same value travels once, as the record the rows are filled from (json_populate_recordset's
 * base), not once per row: a wide run's tasks share most of their ~27 columns (run, module, pool, limits, status), so
 * its 10,000 rows are a few keys each to build, send and parse, not 27.
 */
export function insertRows<T extends PgTable>(table: T, rows: T['$inferInsert'][]): SQL {
  const columns = getTableColumns(table) as Record<string, { name: string }>;
  const seen = columnValues(rows as Record<string, unknown>[]);
  const used = [...seen.keys()].filter((k) => k in columns);
  const list = sql.raw(used.map((k) => `"${columns[k]!.name}"`).join(', '));
  const name = sql.raw(`"${getTableName(table)}"`);
  const shared: Record<string, unknown> = {};
  const varying: string[] = [];
  for (const k of used) {
    const { first, varies, count } = seen.get(k)!;
    // A column some rows leave out is the same in all only if it is null where it is set.
    if (varies || (first !== null && count < rows.length)) varying.push(k);
    else if (first !== null) shared[columns[k]!.name] = first;
  }
  const json = JSON.stringify(
    rows.map((row) => {
      const o: Record<string, unknown> = {};
      for (const k of varying) {
        const v = (row as Record<string, unknown>)[k];
        if (v !== undefined) o[columns[k]!.name] = cell(v);
      }
      return o;
    }),
  );
  // A column no row's JSON names takes the base's value: the shared one, or null (as an absent key did before).
  const base = Object.keys(shared).length ? sql`json_populate_record(null::${name}, ${JSON.stringify(shared)}::json)` : sql`null::${name}`;
  return sql`insert into ${name} (${list}) select ${list} from json_populate_recordset(${base}, ${json}::json)`;
}

const cell = (v: unknown) => (typeof v === 'object' && v instanceof Date ? v.toISOString() : v);

/**
 * Per key any row sets: its value in the first row that sets it (as JSON takes it), whether another row sets it
 * otherwise, and how many rows set it. Objects that are not one shared instance are compared by their JSON, a key
 * no longer once it varies. Row by row (for…in), each key's entry found by its place when the rows list their keys
 * in one order (rows built by one literal do): a lookup by name per row and column was most of the time at 10,000 rows.
 */
function columnValues(rows: Record<string, unknown>[]): Map<string, ColumnValue> {
  const seen = new Map<string, ColumnValue>();
  const order: string[] = [];
  const entries: ColumnValue[] = [];
  for (const row of rows) {
    let i = 0;
    for (const k in row) {
      const raw = row[k];
      const place = i++;
      if (raw === undefined) continue;
      let entry = order[place] === k ? entries[place] : seen.get(k);
      if (!entry) {
        entry = { raw, first: cell(raw), varies: false, count: 0 };
        seen.set(k, entry);
      }
      if (order[place] === undefined) {
        order[place] = k;
        entries[place] = entry;
      }
      entry.count++;
      // The same value, or the same instance (a Date every row shares is not formatted again per row).
      if (entry.count === 1 || entry.varies || raw === entry.first || raw === entry.raw) continue;
      const v = cell(raw);
      if (v === entry.first) continue;
      if (typeof v !== 'object' || v === null || typeof entry.first !== 'object' || entry.first === null) entry.varies = true;
      else if (!sameJson(v, entry)) entry.varies = true;
    }
  }
  return seen;
}

/** Whether object `v` is, as JSON, the entry's first value (an object): two empty ones of one kind without serializing. */
function sameJson(v: object, entry: ColumnValue): boolean {
  const first = entry.first as object;
  if (isEmpty(v) && isEmpty(first)) return Array.isArray(v) === Array.isArray(first);
  return JSON.stringify(v) === (entry.text ??= JSON.stringify(first));
}

/** `{}` or `[]` (a task's parameters, settings, upstreams, as most rows have them). */
function isEmpty(v: object): boolean {
  if (Array.isArray(v)) return v.length === 0;
  if (Object.getPrototypeOf(v) !== Object.prototype) return false;
  for (const _ in v) return false;
  return true;
}

interface ColumnValue {
  /** The first value as the row had it, `first` as JSON takes it. */
  raw: unknown;
  first: unknown;
  text?: string;
  varies: boolean;
  count: number;
}
