// Keyset pages over (a timestamp, an id), newest first: the run list, a webhook's deliveries. A cursor holds the last
// row's timestamp as Postgres has it, to the microsecond. A JavaScript Date keeps milliseconds: a cursor made from one
// fell inside the millisecond of its own row, and the next page skipped every row of that millisecond older than it
// (runs made in one transaction share its microsecond time; a database default writes microseconds).
// The position is a row comparison, `(at, id) < (cursor)`, which a btree on (at desc, id desc) takes as the start of its
// scan; `at < x or (at = x and id < y)` is read from the newest row down to the cursor's, a page deep in a long list
// costing every row above it.
import { type SQL, sql } from 'drizzle-orm';
import type { PgColumn } from 'drizzle-orm/pg-core';
import { isUuid } from './uuid';

/** A position in a list: the exact timestamp (ISO 8601, UTC, microseconds) and id of the row next to it. */
export interface TimeCursor {
  at: string;
  id: string;
}

/** The column's value as a cursor keeps it (select it beside the row). */
export const cursorTime = (column: PgColumn): SQL<string> => sql<string>`to_char(${column} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

export const encodeTimeCursor = (c: TimeCursor): string => Buffer.from(`${c.at}|${c.id}`).toString('base64url');

/** The cursor, or null when it is not one a list gave (cursors made with millisecond times before still are). */
export function decodeTimeCursor(cursor: string): TimeCursor | null {
  const [at, id, ...rest] = Buffer.from(cursor, 'base64url').toString().split('|');
  if (rest.length || !id || !isUuid(id) || !at || !ISO_UTC.test(at) || Number.isNaN(Date.parse(at))) return null;
  return { at, id };
}

const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$/;

/** Rows after the cursor in the list's order (older), or before it (`newer`). */
export function beyondCursor(time: PgColumn, id: PgColumn, c: TimeCursor, direction: 'older' | 'newer'): SQL {
  return direction === 'older' ? sql`(${time}, ${id}) < (${c.at}::timestamptz, ${c.id}::uuid)` : sql`(${time}, ${id}) > (${c.at}::timestamptz, ${c.id}::uuid)`;
}
