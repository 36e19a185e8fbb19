// Ids the API takes: UUIDs, checked before any lookup so a malformed one is a BAD_USER_INPUT, not a database error.
import { badInput } from '../server/errors';

const uuidRe = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const isUuid = (id: string) => uuidRe.test(id);

/** The id, or BAD_USER_INPUT naming what it should have been the id of. */
export function checkId(id: string, what: string): string {
  if (!uuidRe.test(id)) throw badInput(`"${id}" is not a ${what} id (a UUID).`);
  return id;
}
