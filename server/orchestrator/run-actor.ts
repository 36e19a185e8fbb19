// Whom a run acts for, where that decides what it may use (a hot cluster) and read (model versions, cached results):
// its starter, narrowed by the scopes of the token it started with; for a scheduled or triggered run (which has no
// starter) and the nested runs under it, the schedule's, trigger's or monitor's owning team and its creator (narrowed
// by the scopes of the token that created it), or its creator when it has no team. A run never reads more than every
// one of them may: the intersection (docs/governance.md, "What a run acts for").
import { and, eq } from 'drizzle-orm';
import { type AppAbility, defineAbilityFor } from '../auth/ability';
import { grantsOf } from '../auth/grants';
import { actorOfIdentity, type RunActor } from '../compute/cluster-access';
import type { Db, Tx } from '../db/client';
import { identities } from '../db/tables/identities';
import { alertActions, monitors } from '../db/tables/monitoring';
import { runs } from '../db/tables/runs';
import { type Schedule, scheduleFires, schedules } from '../db/tables/schedules';
import { triggerFirings, workflowTriggers } from '../db/tables/triggers';
import { domainsGrantedTo } from '../teams/queries';

/**
 * What a schedule's (or a trigger's, or a monitor's) runs act for: its team and its creator (as the token that created
 * it could act); with no team, its creator; with neither, null (the platform itself).
 */
export async function scheduleActor(db: Db | Tx, schedule: Pick<Schedule, 'teamId' | 'createdBy' | 'scopes'>): Promise<RunActor | null> {
  const [creator] = schedule.createdBy ? await db.select().from(identities).where(eq(identities.id, schedule.createdBy)) : [];
  if (schedule.teamId) return { identity: creator ?? null, admin: false, teamIds: [schedule.teamId], scopes: schedule.scopes, owningTeamId: schedule.teamId };
  return creator ? actorOfIdentity(db, creator, schedule.scopes) : null;
}

/**
 * The abilities a run acting for `actor` reads with: a read is allowed only when every one allows it. Its identity's
 * (with its teams' grants) narrowed by the token's scopes, and an owning team's (a member holding only that team's
 * grants), so a team's schedule reads no more than the team may even when its creator is gone or left the team.
 * Empty for no actor: the platform itself.
 */
export async function readersOf(db: Db | Tx, actor: RunActor | null): Promise<AppAbility[]> {
  if (!actor) return [];
  const readers: AppAbility[] = [];
  if (actor.identity) readers.push(defineAbilityFor(actor.identity, await grantsOf(db, actor.identity), actor.scopes ?? null));
  if (actor.owningTeamId)
    readers.push(defineAbilityFor({ id: `team:${actor.owningTeamId}`, role: 'member' }, { domains: await domainsGrantedTo(db as Db, actor.owningTeamId) }));
  return readers;
}

/**
 * What a run with no starter acts for: the schedule or trigger that fired it or its topmost ancestor. Null when none is found (a
 * nested run started in the same transaction as its scheduled parent, whose plan already checked the nested ones).
 */
export async function starterlessActor(tx: Tx, runId: string): Promise<RunActor | null> {
  let id = runId;
  for (let depth = 0; depth < 20; depth++) {
    const [run] = await tx.select({ parentRunId: runs.parentRunId }).from(runs).where(eq(runs.id, id));
    if (!run?.parentRunId) break;
    id = run.parentRunId;
  }
  const [row] = await tx
    .select({ teamId: schedules.teamId, createdBy: schedules.createdBy, scopes: schedules.scopes })
    .from(scheduleFires)
    .innerJoin(schedules, eq(schedules.id, scheduleFires.scheduleId))
    .where(eq(scheduleFires.runId, id));
  if (row) return scheduleActor(tx, row);
  const [fired] = await tx
    .select({ teamId: workflowTriggers.teamId, createdBy: workflowTriggers.createdBy, scopes: workflowTriggers.scopes })
    .from(triggerFirings)
    .innerJoin(workflowTriggers, eq(workflowTriggers.id, triggerFirings.triggerId))
    .where(and(eq(triggerFirings.runId, id), eq(triggerFirings.outcome, 'STARTED')));
  if (fired) return scheduleActor(tx, fired);
  // A run a monitor's START_WORKFLOW action started (server/monitoring/actions.ts) acts for the monitor's owners.
  const [acted] = await tx
    .select({ teamId: monitors.teamId, createdBy: monitors.createdBy, scopes: monitors.scopes })
    .from(alertActions)
    .innerJoin(monitors, eq(monitors.id, alertActions.monitorId))
    .where(eq(alertActions.runId, id));
  return acted ? scheduleActor(tx, acted) : null;
}
