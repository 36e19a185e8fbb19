// The human behind an identity, for the rules that count people rather than identities: the two-person rule
// (a declassification now, a production model promotion later) and private cache namespaces. A user is their own
// human; a service account acts for its owner (set when an admin creates it: `createServiceAccount(owner:)`,
// defaulting to that admin). A service account without an owner (one the platform made itself, such as the git
// hook's) has no known human, so it can never be the second person, nor be approved by anyone as a first one.
import type { Identity } from '../db/tables/identities';

export type Person = Pick<Identity, 'id' | 'kind' | 'ownerId'>;

/** The id of the human an identity acts for; null when nobody is known to stand behind it. */
export function humanBehind(identity: Person): string | null {
  if (identity.kind === 'user') return identity.id;
  return identity.ownerId ?? null;
}

/** Whether two identities are (or may be) the same human: true too when either has no known human. */
export function sameHuman(a: Person, b: Person): boolean {
  const human = humanBehind(a);
  return human === null || human === humanBehind(b);
}

/**
 * Why `second` may not be the second person (said as the refusal's message) for what `first` asked (a different human is required), or null when
 * they may. One rule for every two-person decision: declassifications, and later production model promotions.
 */
export function secondPersonProblem(first: Person, second: Person, what: string): string | null {
  if (humanBehind(second) === null)
    return `A service account without an owner decides no ${what}: a second person must, or a service account an admin gave an owner.`;
  if (humanBehind(first) === null)
    return `This ${what} was asked by a service account without an owner, so no second person can be told apart from the first; ask again as a person.`;
  if (first.id === second.id) return `You asked for this ${what}, so someone else must decide it.`;
  if (sameHuman(first, second))
    return `This ${what} was asked by you, or by a service account of yours (or of the person your service account acts for): a different person must decide it.`;
  return null;
}
