// Whom a run acts for, where that decides what it may use (a hot cluster): its starter; for a scheduled or triggered
// run (which has no starter) and the nested runs under it, the schedule's, trigger's or monitor's owning team, or its
// creator when it has none.
import { and, eq } from 'drizzle-orm';
import { actorOfIdentity, type RunActor } from '../compute/cluster-access';
import type { Db, Tx } from '../db/client';
import { identities } from '../db/tables/identities';
import { alertActions, monitors } from '../db/tables/monitoring';
import { runs } from '../db/tables/runs';
import { type Schedule, scheduleFires, schedules } from '../db/tables/schedules';
import { triggerFirings, workflowTriggers } from '../db/tables/triggers';

/** What a schedule's (or a trigger's) runs act for: its team; with none, its creator; with neither, null (the platform itself). */
export async function scheduleActor(db: Db | Tx, schedule: Pick<Schedule, 'teamId' | 'createdBy'>): Promise<RunActor | null> {
  const [creator] = schedule.createdBy ? await db.select().from(identities).where(eq(identities.id, schedule.createdBy)) : [];
  if (schedule.teamId) return { identity: creator ?? null, admin: false, teamIds: [schedule.teamId] };
  return creator ? actorOfIdentity(db, creator) : null;
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
    .select({ teamId: schedules.teamId, createdBy: schedules.createdBy })
    .from(scheduleFires)
    .innerJoin(schedules, eq(schedules.id, scheduleFires.scheduleId))
    .where(eq(scheduleFires.runId, id));
  if (row) return scheduleActor(tx, row);
  const [fired] = await tx
    .select({ teamId: workflowTriggers.teamId, createdBy: workflowTriggers.createdBy })
    .from(triggerFirings)
    .innerJoin(workflowTriggers, eq(workflowTriggers.id, triggerFirings.triggerId))
    .where(and(eq(triggerFirings.runId, id), eq(triggerFirings.outcome, 'STARTED')));
  if (fired) return scheduleActor(tx, fired);
  // A run a monitor's START_WORKFLOW action started (server/monitoring/actions.ts) acts for the monitor's owners.
  const [acted] = await tx
    .select({ teamId: monitors.teamId, createdBy: monitors.createdBy })
    .from(alertActions)
    .innerJoin(monitors, eq(monitors.id, alertActions.monitorId))
    .where(eq(alertActions.runId, id));
  return acted ? scheduleActor(tx, acted) : null;
}
