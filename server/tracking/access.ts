// Which domains' run data (metrics, params, tags, notes) a caller may read: every tracking read starts from these,
// so a run outside them is, to that caller, a run that does not exist.
import { subject } from '@casl/ability';
import type { AppAbility } from '../auth/ability';
import { type Domain, domains } from '../vocabulary';

/** The domains where the ability reads a run's data fields (its role, grants and token scopes all count). */
export const runDataDomains = (ability: AppAbility): Domain[] => domains.filter((domain) => ability.can('read', subject('Run', { domain }), 'parameters'));
