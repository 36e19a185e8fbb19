// Domain grants: which teams may start runs in the ad hoc and production domains (experimentation is open to
// every member). Read once per request into the CASL ability; changed by admins, audited.

import { subject } from '@casl/ability';
import { and, eq } from 'drizzle-orm';
import { audit } from '../audit/audit';
import { type Action, type AppAbility, assertCan, isAdmin } from '../auth/ability';
import type { FieldSubject } from '../auth/fields';
import type { Db } from '../db/client';
import { domainGrants } from '../db/tables/governance';
import type { Identity } from '../db/tables/identities';
import type { Team } from '../db/tables/teams';
import { badInput, forbidden } from '../errors';
import { teamByName } from '../teams/teams';
import { type Domain, domains } from '../vocabulary';

/** Throws FORBIDDEN, saying which grant is missing, unless the caller may start runs in `domain`. */
export function assertMayStartIn(ability: AppAbility, domain: Domain): void {
  if (ability.can('start', subject('Run', { domain }))) return;
  throw forbidden(`Starting ${domain} runs needs a grant to one of your teams: an admin runs \`npx atelier team grant TEAM ${domain}\`.`);
}

/**
 * Throws FORBIDDEN unless the ability allows `action` on a `subjectType` of `domain`: saying so when no role of the
 * caller's allows it at all, and which grant is missing when only the domain is refused.
 */
export function assertMayIn(ability: AppAbility, action: Action, subjectType: FieldSubject, domain: Domain, what: string): void {
  assertCan(ability, action, subjectType, what);
  if (ability.can(action, subject(subjectType, { domain }))) return;
  throw forbidden(
    `You may not ${what} in the ${domain} domain: that needs a grant to one of your teams; an admin runs \`npx atelier team grant TEAM ${domain}\`.`,
  );
}

export async function setDomainGrant(db: Db, ability: AppAbility, caller: Identity, input: { team: string; domain: Domain; granted: boolean }): Promise<Team> {
  if (!isAdmin(ability)) throw forbidden('Only admins grant domains to teams.');
  if (!domains.includes(input.domain)) throw badInput(`domain must be one of ${domains.join(', ')}.`);
  return db.transaction(async (tx) => {
    const team = await teamByName(tx, input.team);
    if (input.granted) await tx.insert(domainGrants).values({ teamId: team.id, domain: input.domain, grantedBy: caller.id }).onConflictDoNothing();
    else await tx.delete(domainGrants).where(and(eq(domainGrants.teamId, team.id), eq(domainGrants.domain, input.domain)));
    await audit(tx, {
      identity: caller,
      action: input.granted ? 'domain.grant' : 'domain.revoke',
      decision: 'allow',
      subject: `team:${team.name}`,
      rule: 'admins grant domains',
      details: { domain: input.domain },
    });
    return team;
  });
}
