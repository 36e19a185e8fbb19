// Who may reuse a cached result: a run reuses only results its starter may read, asked of the starter's CASL
// ability (with their teams' grants) with the source task's outputs as the subject: reusing a result is reading
// its outputs, which are run data of the source run's domain.
import { subject } from '@casl/ability';
import { type AppAbility, defineAbilityFor, type Grants } from '../auth/ability';
import type { Identity } from '../db/tables/identities';
import type { Run } from '../db/tables/runs';

// One ability per lookup (its grants object), however many entries it decides.
const abilities = new WeakMap<Grants, { identity: Identity; ability: AppAbility }>();

/** Runs started by the control plane itself (no identity) may reuse any result of their own domain. */
export function readableBy(identity: Identity | null, source: Run, grants?: Grants): boolean {
  if (!identity) return true;
  let known = grants ? abilities.get(grants) : undefined;
  if (!known || known.identity !== identity) {
    known = { identity, ability: defineAbilityFor(identity, grants) };
    if (grants) abilities.set(grants, known);
  }
  return known.ability.can('read', subject('Task', { domain: source.domain }), 'outputs');
}
