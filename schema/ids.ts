// Ids the API takes: UUIDs, checked before any lookup so a malformed one is a BAD_USER_INPUT, not a database error.

import { isUuid } from '../server/db/uuid';
import { badInput } from '../server/errors';

/** The id, or BAD_USER_INPUT naming what it should have been the id of. */
export function checkId(id: string, what: string): string {
  if (!isUuid(id)) throw badInput(`"${id}" is not a ${what} id (a UUID): pass the id the API or the CLI printed for it.`);
  return id;
}
