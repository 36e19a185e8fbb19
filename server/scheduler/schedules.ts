// Creating, changing, pausing, resuming and deleting schedules. Every input is checked (cron, time zone, window,
// workflow, parameters) before anything is written, and a bad one is refused with the field it concerns. A schedule
// belongs to a team (by default its workflow's): with an owner given (API callers), only its owners change it, and
// a refusal (FORBIDDEN, audited) changes nothing.

import { and, asc, desc, eq, inArray, ne } from 'drizzle-orm';
import { audited } from '../audit/audit';
import type { TokenScopes } from '../auth/ability';
import type { Db } from '../db/client';
import type { Identity } from '../db/tables/identities';
import { type Schedule, type ScheduleFire, scheduleFires, schedules } from '../db/tables/schedules';
import { type Workflow, workflows } from '../db/tables/workflows';
import { isUuid } from '../db/uuid';
import { AtelierError, badInput, type ErrorDetail, notFound } from '../errors';
import { assertOwnerMay, type OwnedThing, type Owner } from '../teams/ownership';
import { type CatchUpPolicy, type OverlapPolicy, RUN_PRIORITY_MAX, RUN_PRIORITY_MIN } from '../vocabulary';
import { checkStoredParameters } from '../workflows/stored-parameters';
import { checkCron, fireTimeText, nextFireTime, nextFireTimes, type Timing } from './cron';
import { firingOwnerTeam } from './ownership';

export interface ScheduleInput {
  /** Workflow name or id. */
  workflow: string;
  /** Unique per workflow; defaults to the cron expression (with its time zone when not UTC). */
  name?: string | null;
  cron: string;
  timeZone?: string | null;
  parameters?: Record<string, unknown> | null;
  /** The run parameter each fire time goes into (`fireTimeText`), declared by the workflow; null: none. */
  fireTimeParameter?: string | null;
  startAt?: Date | null;
  endAt?: Date | null;
  catchUp?: CatchUpPolicy | null;
  catchUpLimit?: number | null;
  overlap?: OverlapPolicy | null;
  /** Of the runs it starts, -10..10 (default 0). */
  priority?: number | null;
  paused?: boolean | null;
  /** The owning team's name; default: the workflow's team when the creator writes for it, else the creator's only team. */
  team?: string | null;
}

/** Fields left undefined keep their value; `startAt`/`endAt` set to null remove that bound, `fireTimeParameter` it. */
export interface SchedulePatch {
  name?: string | null;
  cron?: string | null;
  timeZone?: string | null;
  parameters?: Record<string, unknown> | null;
  fireTimeParameter?: string | null;
  startAt?: Date | null;
  endAt?: Date | null;
  catchUp?: CatchUpPolicy | null;
  catchUpLimit?: number | null;
  overlap?: OverlapPolicy | null;
  priority?: number | null;
}

export const MAX_CATCH_UP_LIMIT = 1000;

export const timingOf = (s: Pick<Schedule, 'cron' | 'timeZone' | 'startAt' | 'endAt'>): Timing => ({
  cron: s.cron,
  timeZone: s.timeZone,
  startAt: s.startAt,
  endAt: s.endAt,
});

export async function findSchedule(db: Db, id: string): Promise<Schedule> {
  if (!isUuid(id))
    throw badInput(`"${id}" is not a schedule id (a UUID); \`atelier schedule list WORKFLOW\` shows them.`, [{ path: 'id', message: 'is not a UUID' }]);
  const [schedule] = await db.select().from(schedules).where(eq(schedules.id, id));
  if (!schedule) throw notFound(`No schedule ${id}; \`atelier schedule list\` lists them.`);
  return schedule;
}

export async function findWorkflow(db: Db, ref: string): Promise<Workflow> {
  const [workflow] = await db
    .select()
    .from(workflows)
    .where(isUuid(ref) ? eq(workflows.id, ref) : eq(workflows.name, ref));
  if (!workflow)
    throw new AtelierError('NOT_FOUND', `No workflow "${ref}"; create it first (\`atelier workflow create FILE\`).`, [
      { path: 'workflow', message: 'does not exist' },
    ]);
  return workflow;
}

export async function listSchedules(db: Db, workflow?: string | null): Promise<Schedule[]> {
  const query = db.select().from(schedules);
  if (!workflow) return query.orderBy(asc(schedules.createdAt), asc(schedules.id)).limit(1000);
  const w = await findWorkflow(db, workflow);
  return query.where(eq(schedules.workflowId, w.id)).orderBy(asc(schedules.createdAt), asc(schedules.id));
}

/** The schedules of each workflow, oldest first. */
export const schedulesOfWorkflows = (db: Db, workflowIds: string[]): Promise<Schedule[]> =>
  db.select().from(schedules).where(inArray(schedules.workflowId, workflowIds)).orderBy(asc(schedules.createdAt), asc(schedules.id));

/** The schedule whose fire started each of these runs (runs no schedule started are absent). */
export async function schedulesOfRuns(db: Db, runIds: string[]): Promise<Map<string, Schedule>> {
  const rows = await db
    .select({ runId: scheduleFires.runId, schedule: schedules })
    .from(scheduleFires)
    .innerJoin(schedules, eq(schedules.id, scheduleFires.scheduleId))
    .where(inArray(scheduleFires.runId, runIds));
  return new Map(rows.map((r) => [r.runId!, r.schedule]));
}

/** The fire that started each of these runs (runs no schedule started are absent). */
export async function firesOfRuns(db: Db, runIds: string[]): Promise<Map<string, ScheduleFire>> {
  const rows = await db.select().from(scheduleFires).where(inArray(scheduleFires.runId, runIds));
  return new Map(rows.map((f) => [f.runId!, f]));
}

/** A schedule's latest `limit` fires, newest first. */
export const recentFires = (db: Db, scheduleId: string, limit: number): Promise<ScheduleFire[]> =>
  db.select().from(scheduleFires).where(eq(scheduleFires.scheduleId, scheduleId)).orderBy(desc(scheduleFires.fireTime)).limit(limit);

/** The next `count` fire times from now (none while paused: nothing fires then). */
export function upcomingFireTimes(schedule: Schedule, now: Date, count: number): Date[] {
  if (schedule.paused) return [];
  const after = schedule.lastFireTime > now ? schedule.lastFireTime : now;
  return nextFireTimes(timingOf(schedule), after, Math.min(Math.max(count, 0), 100));
}

function defaultName(cron: string, timeZone: string): string {
  return timeZone === 'UTC' ? cron.trim() : `${cron.trim()} (${timeZone})`;
}

/** Checks the fields that need no database; throws one BAD_USER_INPUT listing every problem. */
function checkFields(v: {
  name: string;
  cron: string;
  timeZone: string;
  startAt: Date | null;
  endAt: Date | null;
  catchUpLimit: number;
  priority: number;
}): void {
  const problems: ErrorDetail[] = [...checkCron(v.cron, v.timeZone)];
  // biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
  if (!v.name.trim() || v.name.length > 100 || /[\u0000-\u001f]/.test(v.name))
    problems.push({ path: 'name', message: 'must be 1 to 100 printable characters' });
  if (!Number.isInteger(v.catchUpLimit) || v.catchUpLimit < 1 || v.catchUpLimit > MAX_CATCH_UP_LIMIT)
    problems.push({ path: 'catchUpLimit', message: `must be a whole number from 1 to ${MAX_CATCH_UP_LIMIT}` });
  if (!Number.isInteger(v.priority) || v.priority < RUN_PRIORITY_MIN || v.priority > RUN_PRIORITY_MAX)
    problems.push({
      path: 'priority',
      message: `must be a whole number from ${RUN_PRIORITY_MIN} to ${RUN_PRIORITY_MAX} (higher goes first in a saturated pool)`,
    });
  if (v.startAt && v.endAt && v.endAt.getTime() <= v.startAt.getTime())
    problems.push({ path: 'endAt', message: `must be after startAt (${v.startAt.toISOString()})` });
  if (problems.length) throw invalid(problems);
}

const invalid = (problems: ErrorDetail[]) => badInput(`Invalid schedule: ${problems.map((p) => `${p.path} ${p.message}`).join('; ')}`, problems);

/** A schedule that can never fire is refused rather than kept forever silent (a Feb 30, an end in the past). */
function checkFires(timing: Timing, now: Date): Date {
  const next = nextFireTime(timing, now);
  if (next) return next;
  const unbounded = nextFireTime({ ...timing, endAt: null }, now);
  if (!unbounded) throw invalid([{ path: 'cron', message: `"${timing.cron}" never fires (no matching date${timing.startAt ? ` after startAt` : ''})` }]);
  throw invalid([
    { path: 'endAt', message: `no fire time is left before endAt (${timing.endAt!.toISOString()}); the next would be ${unbounded.toISOString()}` },
  ]);
}

/** The fire-time parameter with the value its next fire would give it, for the stored parameters' check. */
function sampleFireTime(v: Timing & { fireTimeParameter: string | null }, now: Date): { name: string; value: string } | undefined {
  if (v.fireTimeParameter === null) return undefined;
  return { name: v.fireTimeParameter, value: fireTimeText(nextFireTime(v, now) ?? now, v.timeZone) };
}

function checkJsonObject(value: unknown): Record<string, unknown> {
  if (value === null || value === undefined) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw invalid([{ path: 'parameters', message: 'must be a JSON object' }]);
  return value as Record<string, unknown>;
}

/** `scopes`: those of the token creating it (null: unscoped); its runs act for no more than that token may. */
export async function createSchedule(
  db: Db,
  input: ScheduleInput,
  identity: Identity | null,
  now: Date,
  owner?: Owner,
  scopes: TokenScopes = null,
): Promise<Schedule> {
  const timeZone = input.timeZone ?? 'UTC';
  const values = {
    cron: input.cron.trim(),
    timeZone,
    name: input.name ?? defaultName(input.cron, timeZone),
    startAt: input.startAt ?? null,
    endAt: input.endAt ?? null,
    catchUp: input.catchUp ?? 'SKIP',
    catchUpLimit: input.catchUpLimit ?? 10,
    overlap: input.overlap ?? 'SKIP',
    priority: input.priority ?? 0,
    parameters: checkJsonObject(input.parameters),
    fireTimeParameter: input.fireTimeParameter ?? null,
  };
  checkFields(values);
  const workflow = await findWorkflow(db, input.workflow);
  await checkStoredParameters(db, workflow, values.parameters, { owner: 'schedule', fireTime: sampleFireTime(values, now) });
  const next = checkFires(values, now);
  const teamId = owner
    ? await audited(db, () =>
        firingOwnerTeam(db, owner, input.team, workflow, {
          kind: 'schedule',
          name: values.name,
          refused: (why) => `You may not schedule workflow "${workflow.name}": ${why}. Ask a member of its team to schedule it.`,
        }),
      )
    : null;
  // Created now: fire times before this moment are not "missed", so nothing of the past is caught up.
  const [created] = await db
    .insert(schedules)
    .values({
      ...values,
      workflowId: workflow.id,
      parametersDomain: workflow.domain,
      paused: input.paused ?? false,
      lastFireTime: now,
      nextFireTime: next,
      createdBy: identity?.id ?? null,
      scopes,
      teamId,
      createdAt: now,
      updatedAt: now,
    })
    .onConflictDoNothing({ target: [schedules.workflowId, schedules.name] })
    .returning();
  if (!created) throw nameTaken(values.name, workflow);
  return created;
}

const scheduleThing = (schedule: Schedule, verb: string): OwnedThing => ({
  action: `schedule.${verb}`,
  subject: `schedule:${schedule.name}`,
  label: `Schedule "${schedule.name}"`,
});

/** The schedule, once its owners' check passed (FORBIDDEN, audited, otherwise); no check without an owner. A backfill is a change. */
export async function scheduleToChange(db: Db, id: string, verb: 'update' | 'pause' | 'resume' | 'delete', owner?: Owner): Promise<Schedule> {
  const schedule = await findSchedule(db, id);
  if (owner) await audited(db, () => assertOwnerMay(db, owner, schedule, scheduleThing(schedule, verb), verb === 'update' ? 'change' : verb));
  return schedule;
}

const nameTaken = (name: string, workflow: Workflow) =>
  new AtelierError('CONFLICT', `Workflow "${workflow.name}" already has a schedule named "${name}"; pick another name (--name) or update that one.`, [
    { path: 'name', message: 'is already used' },
  ]);

export async function updateSchedule(db: Db, id: string, patch: SchedulePatch, now: Date, owner?: Owner): Promise<Schedule> {
  const current = await scheduleToChange(db, id, 'update', owner);
  const merged = {
    name: patch.name ?? current.name,
    cron: (patch.cron ?? current.cron).trim(),
    timeZone: patch.timeZone ?? current.timeZone,
    startAt: patch.startAt === undefined ? current.startAt : patch.startAt,
    endAt: patch.endAt === undefined ? current.endAt : patch.endAt,
    catchUp: patch.catchUp ?? current.catchUp,
    catchUpLimit: patch.catchUpLimit ?? current.catchUpLimit,
    overlap: patch.overlap ?? current.overlap,
    priority: patch.priority ?? current.priority,
    parameters: patch.parameters === undefined || patch.parameters === null ? current.parameters : checkJsonObject(patch.parameters),
    fireTimeParameter: patch.fireTimeParameter === undefined ? current.fireTimeParameter : patch.fireTimeParameter,
  };
  checkFields(merged);
  const [workflow] = await db.select().from(workflows).where(eq(workflows.id, current.workflowId));
  await checkStoredParameters(db, workflow!, merged.parameters, { owner: 'schedule', fireTime: sampleFireTime(merged, now) });
  // New timing applies from now on: fire times of the new cron that lie in the past are not caught up.
  const timingChanged =
    merged.cron !== current.cron ||
    merged.timeZone !== current.timeZone ||
    merged.startAt?.getTime() !== current.startAt?.getTime() ||
    merged.endAt?.getTime() !== current.endAt?.getTime();
  if (timingChanged) checkFires(merged, now);
  if (merged.name !== current.name) {
    const [other] = await db
      .select({ id: schedules.id })
      .from(schedules)
      .where(and(eq(schedules.workflowId, current.workflowId), eq(schedules.name, merged.name), ne(schedules.id, id)));
    if (other) throw nameTaken(merged.name, workflow!);
  }
  const lastFireTime = timingChanged && now > current.lastFireTime ? now : current.lastFireTime;
  // New parameters are data of the workflow's domain now; kept ones stay that of the domain they were set under.
  const parametersDomain = patch.parameters === undefined || patch.parameters === null ? current.parametersDomain : workflow!.domain;
  const [updated] = await db
    .update(schedules)
    .set({ ...merged, parametersDomain, lastFireTime, nextFireTime: nextFireTime(merged, lastFireTime), updatedAt: now })
    .where(eq(schedules.id, id))
    .returning();
  return updated!;
}

export async function pauseSchedule(db: Db, id: string, now: Date, owner?: Owner): Promise<Schedule> {
  await scheduleToChange(db, id, 'pause', owner);
  const [updated] = await db.update(schedules).set({ paused: true, updatedAt: now }).where(eq(schedules.id, id)).returning();
  return updated!;
}

/**
 * Resumes a paused schedule. The fire times that fell while it was paused follow its catch-up policy, as after an
 * outage: SKIP runs none of them (nothing is even recorded: they were not missed, they were paused), LATEST runs the
 * latest once, ALL runs them up to `catchUpLimit`.
 */
export async function resumeSchedule(db: Db, id: string, now: Date, owner?: Owner): Promise<Schedule> {
  const current = await scheduleToChange(db, id, 'resume', owner);
  if (!current.paused) return current;
  const lastFireTime = current.catchUp === 'SKIP' && now > current.lastFireTime ? now : current.lastFireTime;
  const [updated] = await db
    .update(schedules)
    .set({ paused: false, lastFireTime, nextFireTime: nextFireTime(timingOf(current), lastFireTime), updatedAt: now })
    .where(eq(schedules.id, id))
    .returning();
  return updated!;
}

/** Deletes a schedule and its fire records; the runs it started stay. */
export async function deleteSchedule(db: Db, id: string, owner?: Owner): Promise<Schedule> {
  const schedule = await scheduleToChange(db, id, 'delete', owner);
  await db.delete(schedules).where(eq(schedules.id, id));
  return schedule;
}
