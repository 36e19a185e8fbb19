// Schedules: cron expressions in a time zone that start runs of a workflow, their upcoming fire times and recent
// fires; `Workflow.schedules`; create, update, pause, resume and delete.
import { assertCan } from '../../server/auth/ability';
import type { Run } from '../../server/db/tables/runs';
import type { Schedule, ScheduleFire } from '../../server/db/tables/schedules';
import { assertMayIn, assertMayStartIn } from '../../server/governance/grants';
import { type Backfill, backfillSchedule, MAX_BACKFILL } from '../../server/scheduler/backfill';
import {
  createSchedule,
  deleteSchedule,
  findSchedule,
  firesOfRuns,
  listSchedules,
  pauseSchedule,
  recentFires,
  resumeSchedule,
  schedulesOfRuns,
  schedulesOfWorkflows,
  upcomingFireTimes,
  updateSchedule,
} from '../../server/scheduler/schedules';
import { ownerOf } from '../../server/teams/ownership';
import { type Domain, moreGuarded } from '../../server/vocabulary';
import { workflowDomainOf } from '../../server/workflows/queries';
import { guard } from '../auth';
import { builder } from '../builder';
import type { Context } from '../context';
import { NodeRef } from '../node';
import { CatchUpEnum, FireOutcomeEnum, OverlapEnum } from './enums';
import { IdentityRef } from './identity';
import { RunRef } from './runs';
import { TeamRef } from './teams';
import { WorkflowRef } from './workflows';

export const ScheduleRef = builder.objectRef<Schedule>('Schedule');
const ScheduleFireRef = builder.objectRef<ScheduleFire>('ScheduleFire');

ScheduleFireRef.implement({
  authScopes: guard('ScheduleFire', 'Schedule'),
  description: 'One fire time a schedule dealt with: the run it started, or why it started none.',
  fields: (t) => ({
    id: t.exposeID('id'),
    fireTime: t.expose('fireTime', { type: 'DateTime' }),
    outcome: t.field({ type: FireOutcomeEnum, resolve: (f) => f.outcome }),
    message: t.exposeString('message', { nullable: true }),
    run: t.field({ type: RunRef, nullable: true, resolve: (f) => f.runId }),
    backfill: t.exposeBoolean('backfill', { description: 'Queued by a backfill (backfillSchedule), not by the clock.' }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});

ScheduleRef.implement({
  // Its parameters stay the data of the domain they were set under, even after its workflow moved to a more open one.
  authScopes: guard('Schedule', 'Schedule', async (s: Schedule, ctx) => ({
    ...s,
    domain: moreGuarded((await WorkflowRef.getDataloader(ctx).load(s.workflowId))?.domain ?? 'production', s.parametersDomain),
  })),
  interfaces: [NodeRef],
  description: 'A cron expression in a time zone that starts runs of a workflow (its latest version at each fire time).',
  fields: (t) => ({
    id: t.exposeID('id'),
    name: t.exposeString('name'),
    workflow: t.field({ type: WorkflowRef, resolve: (s) => s.workflowId }),
    cron: t.exposeString('cron', { description: '5 fields (minute hour day-of-month month day-of-week), or 6 with seconds first.' }),
    timeZone: t.exposeString('timeZone', { description: 'IANA time zone the cron expression is read in.' }),
    parameters: t.expose('parameters', {
      type: 'JSON',
      nullable: true,
      description:
        'Null (with a FORBIDDEN error) unless your teams are granted the workflow’s domain, and the domain it was in when they were set (they keep that protection).',
    }),
    fireTimeParameter: t.exposeString('fireTimeParameter', {
      nullable: true,
      description:
        'The run parameter that receives each fire time, as ISO 8601 in the schedule’s time zone (`2026-03-29T09:00:00+02:00`; its first ten characters are the local date): a caught-up or backfilled run knows the time it stands for.',
    }),
    startAt: t.expose('startAt', { type: 'DateTime', nullable: true, description: 'No fire time before this one (included).' }),
    endAt: t.expose('endAt', { type: 'DateTime', nullable: true, description: 'No fire time after this one (included).' }),
    catchUp: t.field({ type: CatchUpEnum, resolve: (s) => s.catchUp }),
    catchUpLimit: t.exposeInt('catchUpLimit'),
    overlap: t.field({ type: OverlapEnum, resolve: (s) => s.overlap }),
    priority: t.exposeInt('priority', {
      description:
        'Priority of the runs it starts, -10 to 10 (default 0): in a saturated pool, tasks of higher-priority runs dispatch first (aged while waiting, see docs/batch-inference.md).',
    }),
    paused: t.exposeBoolean('paused'),
    lastFireTime: t.expose('lastFireTime', {
      type: 'DateTime',
      description: 'The latest fire time dealt with (run or skipped); the creation time until the first.',
    }),
    nextFireTimes: t.field({
      type: ['DateTime'],
      description: 'The coming fire times, soonest first (none while paused or past endAt).',
      args: { count: t.arg.int({ defaultValue: 5, description: '1 to 100.' }) },
      resolve: (s, args) => upcomingFireTimes(s, new Date(), Math.min(Math.max(args.count ?? 5, 1), 100)),
    }),
    fires: t.field({
      type: [ScheduleFireRef],
      description: 'Recent fire times, newest first.',
      args: { limit: t.arg.int({ defaultValue: 20, description: '1 to 500.' }) },
      resolve: (s, args, ctx) => recentFires(ctx.services.db, s.id, Math.min(Math.max(args.limit ?? 20, 1), 500)),
    }),
    createdBy: t.field({ type: IdentityRef, nullable: true, resolve: (s) => s.createdBy }),
    team: t.field({
      type: TeamRef,
      nullable: true,
      description:
        'The team that owns it: only its members (and admins) change, pause, resume or delete it, and it fires with its grants. None: its creator alone.',
      resolve: (s) => s.teamId,
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
  }),
});

builder.objectField(RunRef, 'schedule', (t) =>
  t.loadable({
    type: ScheduleRef,
    nullable: true,
    description: 'The schedule whose fire started this run (trigger SCHEDULE); null for runs no schedule started, or once it is deleted.',
    load: async (ids: string[], ctx: Context) => {
      const byRun = await schedulesOfRuns(ctx.services.db, ids);
      return ids.map((id) => byRun.get(id) ?? null);
    },
    resolve: (run) => (run as Run).id,
  }),
);

builder.objectField(RunRef, 'scheduleFire', (t) =>
  t.loadable({
    type: ScheduleFireRef,
    nullable: true,
    description:
      'The fire that started this run: the time it stands for (fireTime, which a schedule’s fireTimeParameter passes to it) and whether a backfill queued it. Null for runs no schedule started, or once the schedule is deleted.',
    load: async (ids: string[], ctx: Context) => {
      const byRun = await firesOfRuns(ctx.services.db, ids);
      return ids.map((id) => byRun.get(id) ?? null);
    },
    resolve: (run) => (run as Run).id,
  }),
);

builder.objectField(WorkflowRef, 'schedules', (t) =>
  t.loadableGroup({
    type: ScheduleRef,
    description: 'The schedules that start runs of this workflow.',
    load: (ids: string[], ctx: Context) => schedulesOfWorkflows(ctx.services.db, ids),
    group: (s) => s.workflowId,
    resolve: (w, _a, ctx) => {
      assertCan(ctx.ability, 'read', 'Schedule', 'read schedules');
      return w.id;
    },
  }),
);

builder.queryFields((t) => ({
  schedules: t.field({
    type: [ScheduleRef],
    description: 'Schedules, oldest first; only those of one workflow when `workflow` is given.',
    args: { workflow: t.arg.string({ description: 'Workflow name or id.' }) },
    resolve: (_root, args, ctx) => {
      assertCan(ctx.ability, 'read', 'Schedule', 'list schedules');
      return listSchedules(ctx.services.db, args.workflow);
    },
  }),
  schedule: t.field({
    type: ScheduleRef,
    nullable: true,
    args: { id: t.arg.id({ required: true }) },
    resolve: async (_root, args, ctx) => {
      assertCan(ctx.ability, 'read', 'Schedule', 'read schedules');
      return findSchedule(ctx.services.db, String(args.id)).catch((error) => {
        if ((error as { code?: string }).code === 'NOT_FOUND') return null;
        throw error;
      });
    },
  }),
}));

type InputFields = Parameters<Parameters<typeof builder.inputType>[1]['fields']>[0];
const timingFields = (t: InputFields) => ({
  name: t.string({ description: 'Unique per workflow (default: the cron expression).' }),
  timeZone: t.string({ description: 'IANA time zone (default UTC).' }),
  parameters: t.field({ type: 'JSON', description: 'Run parameters; the workflow must declare them.' }),
  fireTimeParameter: t.string({
    description:
      'A run parameter the workflow declares, which each fire sets to its fire time (ISO 8601 in the schedule’s time zone). On update, null removes it.',
  }),
  startAt: t.field({ type: 'DateTime' }),
  endAt: t.field({ type: 'DateTime' }),
  catchUp: t.field({ type: CatchUpEnum, description: 'Default SKIP.' }),
  catchUpLimit: t.int({ description: 'With catchUp ALL: most missed fire times run (default 10, at most 1000).' }),
  overlap: t.field({ type: OverlapEnum, description: 'Default SKIP.' }),
  priority: t.int({
    description:
      'Priority of the runs it starts, -10 to 10 (default 0): in a saturated pool, tasks of higher-priority runs dispatch first (aged while waiting, see docs/batch-inference.md).',
  }),
});

const CreateScheduleInput = builder.inputType('CreateScheduleInput', {
  fields: (t) => ({
    workflow: t.string({ required: true, description: 'Workflow name or id.' }),
    cron: t.string({ required: true }),
    ...timingFields(t),
    paused: t.boolean({ description: 'Create it paused.' }),
    team: t.string({
      description: 'The team that owns it (one of yours). Default: the workflow’s team when you are in it, else your only team.',
    }),
  }),
});

const UpdateScheduleInput = builder.inputType('UpdateScheduleInput', {
  description: 'Fields left out keep their value; startAt or endAt set to null removes that bound.',
  fields: (t) => ({
    cron: t.string(),
    ...timingFields(t),
  }),
});

type JsonObject = Record<string, unknown> | null | undefined;

/**
 * Throws unless the caller may change the schedule in its domains (its workflow's, and its parameters'); NOT_FOUND for
 * none. Who owns it is checked by the change itself.
 */
/** Refuses a caller who may not change the schedule; returns the domain it was checked in (its runs' and parameters'). */
export async function assertMayChangeSchedule(ctx: Context, id: string, what: string): Promise<Domain> {
  assertCan(ctx.ability, 'update', 'Schedule', what);
  const schedule = await findSchedule(ctx.services.db, id);
  const workflow = await WorkflowRef.getDataloader(ctx).load(schedule.workflowId);
  const domain = moreGuarded(workflow?.domain ?? 'production', schedule.parametersDomain);
  assertMayIn(ctx.ability, 'update', 'Schedule', domain, what);
  return domain;
}

const ownerIn = (ctx: Context) => ownerOf(ctx.identity, ctx.ability);

const BackfillRef = builder.objectRef<Backfill>('ScheduleBackfill').implement({
  description: 'What a backfill queued: the scheduler starts these fires after every on-time one, a few each tick.',
  fields: (t) => ({
    schedule: t.field({ type: ScheduleRef, resolve: (b) => b.schedule }),
    queued: t.field({ type: ['DateTime'], description: 'Fire times queued now, oldest first.', resolve: (b) => b.queued }),
    alreadyDealtWith: t.field({
      type: ['DateTime'],
      description: 'Fire times in the range the schedule had already run, skipped or queued: left as they were.',
      resolve: (b) => b.alreadyDealtWith,
    }),
  }),
});

builder.mutationFields((t) => ({
  backfillSchedule: t.field({
    type: BackfillRef,
    description: `Runs the schedule's fire times between from and to (both included, to no later than now) that it has not dealt with yet, at most ${MAX_BACKFILL} waiting per schedule (a CONFLICT says how many wait). Needs start on Run in the workflow’s domain, as starting its runs would. Each is a fire like any other (see Schedule.fires), started whatever the overlap policy; the workflow's maxActiveRuns paces them.`,
    args: {
      id: t.arg.id({ required: true }),
      from: t.arg({ type: 'DateTime', required: true }),
      to: t.arg({ type: 'DateTime', required: true }),
    },
    resolve: async (_root, { id, from, to }, ctx) => {
      const domain = await assertMayChangeSchedule(ctx, String(id), 'backfill schedules');
      // A backfill starts runs now: it needs what starting them needs (the token's scopes included), not only the
      // right to change the schedule, though its runs act for the schedule's owners.
      assertCan(ctx.ability, 'start', 'Run', 'backfill schedules (a backfill starts runs)');
      assertMayStartIn(ctx.ability, domain);
      return backfillSchedule(ctx.services.db, String(id), { from, to }, new Date(), ctx.identity, ownerIn(ctx));
    },
  }),
  createSchedule: t.field({
    type: ScheduleRef,
    description: 'Creates a schedule. Everything is checked first (cron, time zone, window, workflow, parameters); fire times before now are never run.',
    args: { input: t.arg({ type: CreateScheduleInput, required: true }) },
    resolve: async (_root, { input }, ctx) => {
      assertCan(ctx.ability, 'create', 'Schedule', 'create schedules');
      // A schedule starts runs in its workflow's domain on its creator's behalf: creating one needs that grant.
      const domain = await workflowDomainOf(ctx.services.db, input.workflow);
      if (domain) {
        assertMayIn(ctx.ability, 'create', 'Schedule', domain, 'create schedules');
        assertMayStartIn(ctx.ability, domain);
      }
      return createSchedule(ctx.services.db, { ...input, parameters: input.parameters as JsonObject }, ctx.identity, new Date(), ownerIn(ctx), ctx.scopes);
    },
  }),
  updateSchedule: t.field({
    type: ScheduleRef,
    description: 'Changes a schedule. A new cron, time zone or window applies from now on: past fire times it would have had are not run.',
    args: { id: t.arg.id({ required: true }), input: t.arg({ type: UpdateScheduleInput, required: true }) },
    resolve: async (_root, { id, input }, ctx) => {
      await assertMayChangeSchedule(ctx, String(id), 'change schedules');
      return updateSchedule(ctx.services.db, String(id), { ...input, parameters: input.parameters as JsonObject }, new Date(), ownerIn(ctx));
    },
  }),
  pauseSchedule: t.field({
    type: ScheduleRef,
    description: 'Stops a schedule firing until it is resumed. A fire already claimed still starts its run.',
    args: { id: t.arg.id({ required: true }) },
    resolve: async (_root, { id }, ctx) => {
      await assertMayChangeSchedule(ctx, String(id), 'pause schedules');
      return pauseSchedule(ctx.services.db, String(id), new Date(), ownerIn(ctx));
    },
  }),
  resumeSchedule: t.field({
    type: ScheduleRef,
    description:
      'Resumes a paused schedule. Fire times that fell while it was paused follow its catch-up policy: SKIP runs none, LATEST the latest once, ALL up to catchUpLimit.',
    args: { id: t.arg.id({ required: true }) },
    resolve: async (_root, { id }, ctx) => {
      await assertMayChangeSchedule(ctx, String(id), 'resume schedules');
      return resumeSchedule(ctx.services.db, String(id), new Date(), ownerIn(ctx));
    },
  }),
  deleteSchedule: t.field({
    type: 'ID',
    description: 'Deletes a schedule and its fire records (the runs it started stay); returns its id.',
    args: { id: t.arg.id({ required: true }) },
    resolve: async (_root, { id }, ctx) => {
      await assertMayChangeSchedule(ctx, String(id), 'delete schedules');
      return (await deleteSchedule(ctx.services.db, String(id), ownerIn(ctx))).id;
    },
  }),
}));
