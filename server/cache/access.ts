// Who may see a cached result. A run reuses only results its starter may read, asked of the starter's CASL ability
// (with their teams' grants, narrowed by the scopes of the token that started it) with the source task's outputs as the subject: reusing a result is reading its outputs,
// which are run data of the source run's domain. The cache's read paths (previews, explanations, statistics) answer
// a request with what its caller may read: the request's own ability (its token's scopes included) and the same
// reuse rule. What a caller may not read is absent, never named: "exists but unreadable" looks like "does not exist".
import { subject } from '@casl/ability';
import { type AppAbility, defineAbilityFor, type Grants, type TokenScopes } from '../auth/ability';
import type { Identity } from '../db/tables/identities';
import type { Run } from '../db/tables/runs';
import { type Domain, domains } from '../vocabulary';

// One ability per lookup (its grants object), however many entries it decides.
const abilities = new WeakMap<Grants, { identity: Identity; scopes: TokenScopes; ability: AppAbility }>();

/** Runs started by the control plane itself (no identity) may reuse any result of their own domain. */
export function readableBy(identity: Identity | null, source: Run, grants?: Grants, scopes: TokenScopes = null): boolean {
  if (!identity) return true;
  let known = grants ? abilities.get(grants) : undefined;
  if (!known || known.identity !== identity || known.scopes !== scopes) {
    known = { identity, scopes, ability: defineAbilityFor(identity, grants, scopes) };
    if (grants) abilities.set(grants, known);
  }
  return mayReadOutputsIn(known.ability, source.domain);
}

const mayReadOutputsIn = (ability: AppAbility, domain: Domain) => ability.can('read', subject('Task', { domain }), 'outputs');

/** The rule that decides whether a run may reuse a result (`readableBy`, or a stand-in in tests). */
export type MayReuse = (identity: Identity | null, source: Run, grants?: Grants, scopes?: TokenScopes) => boolean;

/** What one caller may see of the cache. */
export interface CacheReader {
  identity: Identity | null;
  /** Domains whose task outputs (and so cached results) the caller may read; every query narrows to these first. */
  domains: Domain[];
  /** Whether the caller may see the cached results, tasks and ids of this run. */
  mayRead(run: Run): boolean;
}

export function cacheReaderFor(ability: AppAbility, identity: Identity | null, grants: Grants | undefined, mayReuse: MayReuse): CacheReader {
  const readable = domains.filter((d) => mayReadOutputsIn(ability, d));
  return {
    identity,
    domains: readable,
    mayRead: (run) => readable.includes(run.domain) && mayReuse(identity, run, grants),
  };
}

export const readRule = 'the cache answers with results of runs whose outputs you may read';
