// Who may reuse a cached result: a run reuses only results its starter may read, asked of the starter's CASL
// ability with the source run as the subject, so governance rules on runs (domain, team) apply to the cache as-is.
import { subject } from '@casl/ability';
import { defineAbilityFor } from '../auth/ability';
import type { Identity } from '../db/tables/identities';
import type { Run } from '../db/tables/runs';

/** Runs started by the control plane itself (no identity) may reuse any result of their own domain. */
export const readableBy = (identity: Identity | null, source: Run): boolean => !identity || defineAbilityFor(identity).can('read', subject('Run', source));
