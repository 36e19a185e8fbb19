// Backfills: the fire times of a schedule's cron in a past range, run now, as Dagster's backfills or Airflow's
// `dags backfill`. Each fire time becomes a fire row like any other (its unique key makes each run once, so asking
// again queues only what was never dealt with), marked `backfill`: the scheduler starts those after every on-time fire,
// a few each tick, whatever the overlap policy, and the workflow's maxActiveRuns paces the runs. With the schedule's
// fireTimeParameter each run receives the time it stands for. A schedule holds at most MAX_BACKFILL backfilled fires
// waiting to start, across calls.

import { and, count, eq, gte, lte } from 'drizzle-orm';
import { audit } from '../audit/audit';
import type { Db } from '../db/client';
import type { Identity } from '../db/tables/identities';
import { type Schedule, scheduleFires, schedules } from '../db/tables/schedules';
import { badInput, conflict, type ErrorDetail } from '../errors';
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
  // A schedule holds at most MAX_BACKFILL fires queued by backfills, whatever the number of calls: its scheduler starts
  // a few each tick, and unbounded, one member's thousand-a-call backfills were work without end queued for its owners.
  // Counted and inserted under the schedule's row lock, so two backfills at once cannot both pass.
  const inserted = await db.transaction(async (tx) => {
    await tx.select({ id: schedules.id }).from(schedules).where(eq(schedules.id, schedule.id)).for('update');
    const known = await tx
      .select({ fireTime: scheduleFires.fireTime })
      .from(scheduleFires)
      .where(and(eq(scheduleFires.scheduleId, schedule.id), gte(scheduleFires.fireTime, times[0]!), lte(scheduleFires.fireTime, times.at(-1)!)));
    const dealtWith = new Set(known.map((r) => r.fireTime.getTime()));
    const fresh = times.filter((t) => !dealtWith.has(t.getTime()));
    const [pending] = await tx
      .select({ waiting: count() })
      .from(scheduleFires)
      .where(and(eq(scheduleFires.scheduleId, schedule.id), eq(scheduleFires.backfill, true), eq(scheduleFires.outcome, 'PENDING')));
    const waiting = pending?.waiting ?? 0;
    if (fresh.length && waiting + fresh.length > MAX_BACKFILL)
      throw conflict(
        `Schedule "${schedule.name}" already has ${waiting} backfilled fires waiting to start, and this backfill would add ${fresh.length}: a schedule holds at most ${MAX_BACKFILL}. Backfill a shorter range, or again once the waiting ones have started (Schedule.fires). Nothing was queued.`,
      );
    if (!fresh.length) return [];
    return tx
      .insert(scheduleFires)
      .values(fresh.map((fireTime) => ({ scheduleId: schedule.id, fireTime, outcome: 'PENDING' as const, backfill: true, createdAt: now })))
      .onConflictDoNothing({ target: [scheduleFires.scheduleId, scheduleFires.fireTime] })
      .returning({ fireTime: scheduleFires.fireTime });
  });
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
