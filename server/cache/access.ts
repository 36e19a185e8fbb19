// Who may reuse a cached result: a run reuses only results its starter may read, asked of the starter's CASL
// ability (with their teams' grants) with the source task's outputs as the subject: reusing a result is reading
// its outputs, which are run data of the source run's domain.
import { subject } from '@casl/ability';
import { defineAbilityFor, type Grants } from '../auth/ability';
import type { Identity } from '../db/tables/identities';
import type { Run } from '../db/tables/runs';

/** Runs started by the control plane itself (no identity) may reuse any result of their own domain. */
export const readableBy = (identity: Identity | null, source: Run, grants?: Grants): boolean =>
  !identity || defineAbilityFor(identity, grants).can('read', subject('Task', { domain: source.domain }), 'outputs');
