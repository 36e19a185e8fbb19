// Writes sent with the reads they depend on (issue 21): the caller guesses what the reads would return, sends the
// writes that follow from the guess in the same round trip, and guards them with `atelier_expect` (migration 0073),
// which raises SQLSTATE AT001 when the guess is wrong. The transaction is then aborted with none of its writes kept,
// and the caller runs its ordinary path.
import { type SQL, sql } from 'drizzle-orm';

/** SQLSTATE that `atelier_expect` raises when a guess does not hold. */
export const GUESS_MISSED = 'AT001';

/** A select whose row is true when `holds` is, and which otherwise aborts its transaction (null counts as false). */
export function expectGuess(holds: SQL, what: string): SQL {
  return sql`select atelier_expect(${holds}, ${what}) as held`;
}

/** Whether an error (from the postgres driver or PGlite, possibly wrapped by drizzle) is a guess that did not hold. */
export function guessMissed(error: unknown): boolean {
  for (let cause: unknown = error, depth = 0; cause && typeof cause === 'object' && depth < 4; depth++) {
    if ((cause as { code?: unknown }).code === GUESS_MISSED) return true;
    cause = (cause as { cause?: unknown }).cause;
  }
  return false;
}
