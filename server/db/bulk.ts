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
 * defaults), all in one JSON parameter: for a data-modifying WITH of a larger statement, or `bulkInsert`.
 */
export function insertRows<T extends PgTable>(table: T, rows: T['$inferInsert'][]): SQL {
  const columns = getTableColumns(table) as Record<string, { name: string }>;
  const used = [...new Set(rows.flatMap((r) => Object.keys(r as object)))].filter((k) => k in columns);
  const list = sql.raw(used.map((k) => `"${columns[k]!.name}"`).join(', '));
  const name = sql.raw(`"${getTableName(table)}"`);
  const json = JSON.stringify(
    rows.map((row) => {
      const o: Record<string, unknown> = {};
      for (const k of used) {
        const v = (row as Record<string, unknown>)[k];
        if (v !== undefined) o[columns[k]!.name] = v instanceof Date ? v.toISOString() : v;
      }
      return o;
    }),
  );
  return sql`insert into ${name} (${list}) select ${list} from json_populate_recordset(null::${name}, ${json}::json)`;
}
