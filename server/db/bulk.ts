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
  const used = [...new Set(rows.flatMap((r) => Object.keys(r as object)))].filter((k) => k in columns);
  const list = sql.raw(used.map((k) => `"${columns[k]!.name}"`).join(', '));
  const name = sql.raw(`"${getTableName(table)}"`);
  const shared: Record<string, unknown> = {};
  const varying: string[] = [];
  for (const k of used) {
    const value = sameInEvery(rows as Record<string, unknown>[], k);
    if (value === VARIES) varying.push(k);
    else if (value !== null) shared[columns[k]!.name] = value;
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

const VARIES = Symbol('varies');
const cell = (v: unknown) => (v instanceof Date ? v.toISOString() : v);

/**
 * The value column `k` has in every row, as JSON takes it (a row without it: null), or VARIES. Objects that are not
 * one shared instance are compared by their JSON, stopping at the first that differs: a column that varies costs one
 * comparison, one that is shared saves its text in every row.
 */
function sameInEvery(rows: Record<string, unknown>[], k: string): unknown {
  const first = cell(rows[0]![k] ?? null);
  let text: string | undefined;
  for (let i = 1; i < rows.length; i++) {
    const v = cell(rows[i]![k] ?? null);
    if (v === first) continue;
    if (typeof v !== 'object' || v === null || typeof first !== 'object' || first === null) return VARIES;
    text ??= JSON.stringify(first);
    if (JSON.stringify(v) !== text) return VARIES;
  }
  return first;
}
