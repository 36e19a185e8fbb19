// Whether the owners of something that starts runs on its own (a trigger, a monitor's START_WORKFLOW action) may
// start a run of a workflow in a domain now: its creator may start runs of the domain, its owning team is granted the
// domain, and the workflow is its owners' own. Shared by the trigger dispatcher and the monitors' actions, so both
// need exactly the grants a person would need. A denial is audited and answered in words that say what to do.
import { subject } from '@casl/ability';
import { eq } from 'drizzle-orm';
import { audit } from '../audit/audit';
import { defineAbilityFor, type TokenScopes } from '../auth/ability';
import { grantsOf } from '../auth/grants';
import type { Db } from '../db/client';
import { identities } from '../db/tables/identities';
import type { Workflow } from '../db/tables/workflows';
import { scheduleMayNotFire } from '../scheduler/ownership';
import { owningTeamName } from '../teams/ownership';
import { domainsGrantedTo } from '../teams/queries';
import type { Domain } from '../vocabulary';

export interface RunStarter {
  /** `trigger` or `monitor`: the audit action is `KIND.fire`, the subject `KIND:NAME`. */
  kind: 'trigger' | 'monitor';
  name: string;
  teamId: string | null;
  createdBy: string | null;
  /** The scopes of the token that created it (null: unscoped): it starts runs only as that token could. */
  scopes: TokenScopes;
}

/** Why the starter's owners may not start this run now (audited), or null. */
export async function ownersMayNotStart(db: Db, starter: RunStarter, workflow: Workflow, domain: Domain): Promise<string | null> {
  const [creator] = starter.createdBy ? await db.select().from(identities).where(eq(identities.id, starter.createdBy)) : [];
  const deny = async (rule: string, message: string) => {
    await audit(db, {
      identity: creator ?? null,
      action: `${starter.kind}.fire`,
      decision: 'deny',
      subject: `${starter.kind}:${starter.name}`,
      rule,
      details: { domain, workflow: workflow.name },
    });
    return `the run could not start: ${message}`;
  };
  const rule = `a ${starter.kind} starts runs only while its creator and its owning team may`;
  if (creator && !defineAbilityFor(creator, await grantsOf(db, creator), starter.scopes).can('start', subject('Run', { domain })))
    return deny(
      rule,
      `${creator.name}, who created this ${starter.kind}, may not start ${domain} runs (${rule}); an admin grants the domain with \`npx atelier team grant TEAM ${domain}\``,
    );
  if (starter.teamId && domain !== 'experimentation' && !(await domainsGrantedTo(db, starter.teamId)).includes(domain)) {
    const team = await owningTeamName(db, starter);
    return deny(
      rule,
      `team "${team}", which owns this ${starter.kind}, is not granted ${domain} (${rule}); an admin runs \`npx atelier team grant ${team} ${domain}\``,
    );
  }
  const foreign = await scheduleMayNotFire(db, starter, workflow);
  if (foreign) return deny(`a ${starter.kind} fires only workflows its own owners publish`, foreign.replace(/schedule/g, starter.kind));
  return null;
}
