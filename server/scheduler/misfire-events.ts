// The `schedule.misfired` webhook event: fire times a schedule missed (the control plane was down past the grace, or
// they fell beyond its catch-up policy), emitted in the transaction that records them SKIPPED_MISSED, to the
// schedule's team's webhooks. The data is the schedule's meta fields and the missed times, never its parameters.
import type { Tx } from '../db/client';
import type { Schedule } from '../db/tables/schedules';
import { emitWebhookEvent } from '../webhooks/emit';

/** At most this many missed fire times are listed in one event; `missed` counts them all. */
const LISTED = 20;

/** True when a delivery was written (kick the delivery worker after the commit). */
export async function emitScheduleMisfired(tx: Tx, schedule: Schedule, missed: Date[], more: boolean, why: string, at: Date): Promise<boolean> {
  const written = await emitWebhookEvent(tx, {
    type: 'schedule.misfired',
    team: schedule.teamId,
    subject: `schedule:${schedule.id}`,
    at,
    payload: {
      schedule: { id: schedule.id, name: schedule.name, cron: schedule.cron, timeZone: schedule.timeZone, catchUp: schedule.catchUp },
      workflow: { id: schedule.workflowId },
      missed: missed.length,
      olderNotListed: more,
      fireTimes: missed.slice(-LISTED).map((t) => t.toISOString()),
      reason: why,
    },
  });
  return written > 0;
}
