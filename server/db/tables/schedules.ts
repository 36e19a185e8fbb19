// Schedules (a cron expression in a time zone that starts runs of a workflow) and their fires: one row per
// fire time the scheduler dealt with, whose UNIQUE (schedule, fire time) key makes each fire happen once.
import { sql } from 'drizzle-orm';
import { boolean, index, integer, jsonb, pgTable, text, timestamp, unique, uuid } from 'drizzle-orm/pg-core';
import { catchUpPolicies, domains, fireOutcomes, overlapPolicies } from '../../vocabulary';
import { at, createdAt, id } from './columns';
import { identities } from './identities';
import { runs } from './runs';
import { teams } from './teams';
import { workflows } from './workflows';

/** SKIP: missed fire times are not run. LATEST: the latest missed one runs once. ALL: all run, up to `catchUpLimit`. */

export const schedules = pgTable(
  'schedules',
  {
    id: id(),
    workflowId: uuid('workflow_id')
      .notNull()
      .references(() => workflows.id),
    name: text('name').notNull(),
    cron: text('cron').notNull(),
    /** An IANA time zone: `0 9 * * *` in America/New_York is 9:00 there, summer and winter. */
    timeZone: text('time_zone').notNull().default('UTC'),
    parameters: jsonb('parameters').$type<Record<string, unknown>>().notNull().default({}),
    /**
     * The domain its workflow was in when `parameters` were set: they stay that domain's data (read, and run, no less
     * guarded than it) even after the workflow moves to a more open one.
     */
    parametersDomain: text('parameters_domain', { enum: domains }).notNull().default('production'),
    /**
     * The run parameter that receives each fire time (ISO 8601 in the schedule's time zone, `fireTimeText`), so a run
     * knows the time it stands for: a caught-up or backfilled run processes its own day, not today's. Null: none.
     */
    fireTimeParameter: text('fire_time_parameter'),
    /** Fire times outside [startAt, endAt] (both included) never fire. */
    startAt: at('start_at'),
    endAt: at('end_at'),
    catchUp: text('catch_up', { enum: catchUpPolicies }).notNull().default('SKIP'),
    catchUpLimit: integer('catch_up_limit').notNull().default(10),
    overlap: text('overlap', { enum: overlapPolicies }).notNull().default('SKIP'),
    /** The priority of the runs it starts (-10..10; see docs/batch-inference.md). */
    priority: integer('priority').notNull().default(0),
    paused: boolean('paused').notNull().default(false),
    /** The latest fire time dealt with (fired or skipped); only later ones are due. Creation time at first. */
    lastFireTime: timestamp('last_fire_time', { withTimezone: true, mode: 'date' }).notNull(),
    /** The first fire time after `lastFireTime` inside the window, or null when there is none: what ticks look for. */
    nextFireTime: at('next_fire_time'),
    createdBy: uuid('created_by').references(() => identities.id),
    /** The scopes of the token that created it (null: unscoped): its runs read no more than that token may. */
    scopes: text('scopes').array(),
    /** The owning team: its writing members (and admins) change, pause, resume and delete it. Null: its creator alone (and admins). */
    teamId: uuid('team_id').references(() => teams.id),
    createdAt: createdAt(),
    updatedAt: timestamp('updated_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  },
  (t) => [unique('schedules_workflow_name_key').on(t.workflowId, t.name), index('schedules_due_idx').on(t.nextFireTime).where(sql`not paused`)],
);

export const scheduleFires = pgTable(
  'schedule_fires',
  {
    id: id(),
    scheduleId: uuid('schedule_id')
      .notNull()
      .references(() => schedules.id, { onDelete: 'cascade' }),
    fireTime: timestamp('fire_time', { withTimezone: true, mode: 'date' }).notNull(),
    runId: uuid('run_id').references(() => runs.id),
    outcome: text('outcome', { enum: fireOutcomes }).notNull(),
    message: text('message'),
    /** Asked for by a backfill (server/scheduler/backfill.ts): started whatever the overlap policy, after on-time fires. */
    backfill: boolean('backfill').notNull().default(false),
    createdAt: createdAt(),
  },
  (t) => [
    // The exactly-once key: whoever inserts a fire time first owns it.
    unique('schedule_fires_schedule_time_key').on(t.scheduleId, t.fireTime),
    index('schedule_fires_pending_idx').on(t.fireTime).where(sql`outcome = 'PENDING'`),
  ],
);

export type Schedule = typeof schedules.$inferSelect;
export type NewSchedule = typeof schedules.$inferInsert;
export type ScheduleFire = typeof scheduleFires.$inferSelect;
export type NewScheduleFire = typeof scheduleFires.$inferInsert;
