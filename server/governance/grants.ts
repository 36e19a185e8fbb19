// Domain grants: which teams may start runs in the ad hoc and production domains (experimentation is open to
// every member). Read once per request into the CASL ability (remembered a moment with the token: a change is said to
// every replica's memory of tokens, server/auth/token-cache.ts); changed by admins, audited.

import { subject } from '@casl/ability';
import { and, eq } from 'drizzle-orm';
import { type AuditedDenial, audit, recordRefusal } from '../audit/audit';
import { type Action, type AppAbility, assertCan, isAdmin } from '../auth/ability';
import type { FieldSubject } from '../auth/fields';
import { refusal, refuse } from '../auth/refuse';
import { tokensChanged } from '../auth/token-cache';
import type { Db } from '../db/client';
import { domainGrants } from '../db/tables/governance';
import type { Identity } from '../db/tables/identities';
import { type Team, teamMembers } from '../db/tables/teams';
import { badInput, forbidden } from '../errors';
import { teamByName } from '../teams/teams';
import { atLeastAsGuarded, type Domain, domains } from '../vocabulary';

/** Throws FORBIDDEN, saying which grant is missing, unless the caller may start runs in `domain`. */
export function assertMayStartIn(ability: AppAbility, domain: Domain): void {
  if (ability.can('start', subject('Run', { domain }))) return;
  throw forbidden(`Starting ${domain} runs needs a grant to one of your teams: an admin runs \`npx atelier team grant TEAM ${domain}\`.`);
}

/** The rule a run of a workflow outside the workflow's domain is decided by (audited with its refusals). */
export const WORKFLOW_DOMAIN_RULE = 'a run starts in a domain at least as guarded as its workflow’s, unless its starter may read the workflow’s domain';

/**
 * Whether a run of a workflow of `workflowDomain` may start in `runDomain`: a run's parameters and outputs are its
 * own domain's data, so a run in a less guarded domain than the workflow's would publish the workflow's spec (its
 * parameter defaults) there; only who may read that spec may do so.
 */
export function mayStartWorkflowIn(ability: AppAbility, workflowDomain: Domain, runDomain: Domain): boolean {
  return atLeastAsGuarded(runDomain, workflowDomain) || ability.can('read', subject('Workflow', { domain: workflowDomain }), 'spec');
}

/** The refusal of a run of `workflow` in `runDomain`: which rule, why, and what to do. */
export function workflowDomainRefusal(workflow: { name: string; domain: Domain }, runDomain: Domain): string {
  const allowed = domains.filter((d) => atLeastAsGuarded(d, workflow.domain));
  return `Workflow "${workflow.name}" is a ${workflow.domain} workflow: its runs start only in ${allowed.join(' or ')}, a domain at least as guarded as its own, since a run in ${runDomain} would make its spec's parameter defaults readable there; starting it in ${runDomain} needs a grant to ${workflow.domain} for one of your teams (an admin runs \`npx atelier team grant TEAM ${workflow.domain}\`).`;
}

/** The audited refusal of a run of `workflow` in `runDomain`, or null when the caller may start it ({@link mayStartWorkflowIn}). */
export function workflowStartRefusal(
  ability: AppAbility,
  identity: Identity | null,
  workflow: { name: string; domain: Domain },
  runDomain: Domain,
): AuditedDenial | null {
  if (mayStartWorkflowIn(ability, workflow.domain, runDomain)) return null;
  return refusal(
    {
      identity,
      action: 'run.start',
      subject: `workflow:${workflow.name}`,
      rule: WORKFLOW_DOMAIN_RULE,
      details: { workflowDomain: workflow.domain, domain: runDomain },
    },
    workflowDomainRefusal(workflow, runDomain),
  );
}

/** Throws FORBIDDEN (audited now) unless the caller may start a run of `workflow` in `runDomain` ({@link mayStartWorkflowIn}). */
export async function assertMayStartWorkflowIn(
  db: Db,
  ability: AppAbility,
  identity: Identity | null,
  workflow: { name: string; domain: Domain },
  runDomain: Domain,
): Promise<void> {
  const refused = workflowStartRefusal(ability, identity, workflow, runDomain);
  if (!refused) return;
  await recordRefusal(db, refused);
  throw refused;
}

/**
 * Throws FORBIDDEN (audited as a refused read of data) unless the caller may read `workflow`'s spec: for what is
 * computed from it (a cache preview plans the spec with its defaults, and answers with keys hashed from them).
 */
export async function assertMayReadSpec(db: Db, ability: AppAbility, identity: Identity | null, workflow: { name: string; domain: Domain }, what: string) {
  if (ability.can('read', subject('Workflow', { domain: workflow.domain }), 'spec')) return;
  await refuse(
    db,
    {
      identity,
      action: 'data.read',
      subject: `workflow:${workflow.name}`,
      rule: 'a workflow’s spec is readable only in domains one of your teams is granted',
      details: { workflowDomain: workflow.domain, what },
    },
    `You may not ${what} of workflow "${workflow.name}": it is computed from its spec, data of the ${workflow.domain} domain, which none of your teams is granted; an admin runs \`npx atelier team grant TEAM ${workflow.domain}\`.`,
  );
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
  const { team, members } = await db.transaction(async (tx) => {
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
    const members = await tx.select({ id: teamMembers.identityId }).from(teamMembers).where(eq(teamMembers.teamId, team.id));
    return { team, members: members.map((m) => m.id) };
  });
  await tokensChanged(db, members);
  return team;
}
