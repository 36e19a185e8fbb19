// Backfills: the fire times of a schedule's cron in a past range, run now, as Dagster's backfills or Airflow's
// `dags backfill`. Each fire time becomes a fire row like any other (its unique key makes each run once, so asking
// again queues only what was never dealt with), marked `backfill`: the scheduler starts those after every on-time fire,
// a few each tick, whatever the overlap policy, and the workflow's maxActiveRuns paces the runs. With the schedule's
// fireTimeParameter each run receives the time it stands for.
import { audit } from '../audit/audit';
import type { Db } from '../db/client';
import type { Identity } from '../db/tables/identities';
import { type Schedule, scheduleFires } from '../db/tables/schedules';
import { badInput, type ErrorDetail } from '../errors';
import type { Owner } from '../teams/ownership';
import { dueFireTimes } from './cron';
import { scheduleToChange, timingOf } from './schedules';

/** The most fire times one backfill queues: a longer range is asked for in parts. */
export const MAX_BACKFILL = 1000;

export interface Backfill {
  schedule: Schedule;
  /** Fire times queued now, oldest first. */
  queued: Date[];
  /** Fire times in the range the schedule had already dealt with (run, skipped or queued before): left as they were. */
  alreadyDealtWith: Date[];
}

export async function backfillSchedule(
  db: Db,
  id: string,
  range: { from: Date; to: Date },
  now: Date,
  identity: Identity | null,
  owner?: Owner,
): Promise<Backfill> {
  const schedule = await scheduleToChange(db, id, 'update', owner);
  const { from, to } = range;
  const problems: ErrorDetail[] = [];
  if (to.getTime() < from.getTime()) problems.push({ path: 'to', message: `must not be before from (${from.toISOString()})` });
  if (to.getTime() > now.getTime())
    problems.push({ path: 'to', message: `must not be later than now (${now.toISOString()}): the schedule fires later times itself` });
  if (problems.length) throw badInput(`Invalid backfill: ${problems.map((p) => `${p.path} ${p.message}`).join('; ')}`, problems);
  const { times, truncated } = dueFireTimes(timingOf(schedule), new Date(from.getTime() - 1), to, MAX_BACKFILL);
  const cron = `"${schedule.cron}" (${schedule.timeZone})`;
  if (truncated)
    throw badInput(
      `More than ${MAX_BACKFILL} fire times of ${cron} fall between ${from.toISOString()} and ${to.toISOString()}; backfill a shorter range at a time.`,
      [{ path: 'from', message: `the range holds more than ${MAX_BACKFILL} fire times` }],
    );
  if (!times.length) {
    const window =
      schedule.startAt || schedule.endAt ? `, inside its window ${schedule.startAt?.toISOString() ?? '…'} to ${schedule.endAt?.toISOString() ?? '…'}` : '';
    throw badInput(`No fire time of ${cron}${window} falls between ${from.toISOString()} and ${to.toISOString()}; widen the range.`, [
      { path: 'from', message: 'the range holds no fire time' },
    ]);
  }
  const inserted = await db
    .insert(scheduleFires)
    .values(times.map((fireTime) => ({ scheduleId: schedule.id, fireTime, outcome: 'PENDING' as const, backfill: true, createdAt: now })))
    .onConflictDoNothing({ target: [scheduleFires.scheduleId, scheduleFires.fireTime] })
    .returning({ fireTime: scheduleFires.fireTime });
  const queued = new Set(inserted.map((r) => r.fireTime.getTime()));
  await audit(db, {
    identity,
    action: 'schedule.backfill',
    decision: 'allow',
    subject: `schedule:${schedule.name}`,
    rule: 'a schedule’s owners may backfill it',
    details: { from: from.toISOString(), to: to.toISOString(), queued: queued.size, alreadyDealtWith: times.length - queued.size },
  });
  return { schedule, queued: times.filter((t) => queued.has(t.getTime())), alreadyDealtWith: times.filter((t) => !queued.has(t.getTime())) };
}
