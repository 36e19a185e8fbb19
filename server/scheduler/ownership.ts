// Who owns a schedule and whether it may fire its workflow. A schedule runs its workflow's latest version at each fire
// time, with its owners' grants: so it fires only a workflow whose next version its own owners decide (one their team
// owns, or one only admins change). Otherwise another team could publish a version of its own workflow and have this
// schedule run that code on this team's grants.
import { eq } from 'drizzle-orm';
import { AuditedDenial } from '../audit/audit';
import type { Db } from '../db/client';
import { identities } from '../db/tables/identities';
import type { Schedule } from '../db/tables/schedules';
import type { Workflow } from '../db/tables/workflows';
import { newOwnerTeam, type Owner, owningTeamName } from '../teams/ownership';
import { writableTeamsOf } from '../teams/queries';

/** Whether only admins change the workflow: it has no team, and no creator or an admin one. */
async function adminOwned(db: Db, workflow: Pick<Workflow, 'teamId' | 'createdBy'>): Promise<boolean> {
  if (workflow.teamId) return false;
  if (!workflow.createdBy) return true;
  const [creator] = await db.select({ role: identities.role }).from(identities).where(eq(identities.id, workflow.createdBy));
  return creator?.role === 'admin';
}

/** Null when a schedule owned so may fire the workflow; otherwise why not (what the refusal and the fire record say). */
export async function scheduleMayNotFire(
  db: Db,
  schedule: Pick<Schedule, 'teamId' | 'createdBy'>,
  workflow: Pick<Workflow, 'name' | 'teamId' | 'createdBy'>,
): Promise<string | null> {
  if (await adminOwned(db, workflow)) return null;
  if (workflow.teamId ? schedule.teamId === workflow.teamId : !schedule.teamId && schedule.createdBy === workflow.createdBy) return null;
  const owner = workflow.teamId ? `team "${await owningTeamName(db, workflow)}"` : 'the identity that created it';
  const own = schedule.teamId ? `team "${await owningTeamName(db, schedule)}"` : 'its creator';
  return `workflow "${workflow.name}" belongs to ${owner}, and this schedule to ${own}: a schedule fires only workflows its own owners publish (else another owner's next version would run on this schedule's grants)`;
}

/**
 * The team that owns a new schedule or trigger: the one named, else its workflow's when the creator writes for it,
 * else the creator's only team. Refused (audited) when that owner could not fire the workflow (another owner's).
 */
export async function firingOwnerTeam(
  db: Db,
  owner: Owner,
  team: string | null | undefined,
  workflow: Workflow,
  what: { kind: 'schedule' | 'trigger'; name: string; refused: (why: string) => string },
): Promise<string | null> {
  const thing = { action: `${what.kind}.create`, subject: `${what.kind}:${what.name}`, label: `a ${what.kind}` };
  const writesForWorkflowTeam = !!workflow.teamId && (owner.admin || (await writableTeamsOf(db, owner.identity.id)).some((t) => t.id === workflow.teamId));
  const teamId = (team === undefined || team === null) && writesForWorkflowTeam ? workflow.teamId : await newOwnerTeam(db, owner, team, thing);
  const why = await scheduleMayNotFire(db, { teamId, createdBy: owner.identity.id }, workflow);
  if (why)
    throw new AuditedDenial(
      {
        identity: owner.identity,
        action: thing.action,
        decision: 'deny',
        subject: thing.subject,
        rule: `a ${what.kind} fires only workflows its own owners publish`,
        details: { workflow: workflow.name },
      },
      what.refused(why),
    );
  return teamId;
}
