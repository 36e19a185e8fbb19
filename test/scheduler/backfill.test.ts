// A run that knows the time it stands for, and backfills: a schedule's fireTimeParameter gives each run its fire time
// (ISO 8601 in the schedule's time zone), on time, caught up after an outage, and backfilled over a past range.
// Backfills queue each fire time once, start whatever the overlap policy and after every on-time fire; bad input is
// refused with the field it concerns and changes nothing. The real database and orchestrator, a settable clock.
import { eq } from 'drizzle-orm';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { auditEvents } from '../../server/db/tables/governance';
import { schedules } from '../../server/db/tables/schedules';
import { backfillSchedule, MAX_BACKFILL } from '../../server/scheduler/backfill';
import { createScheduler, type Scheduler } from '../../server/scheduler/scheduler';
import { createSchedule, findSchedule, type ScheduleInput, updateSchedule } from '../../server/scheduler/schedules';
import { type Clock, createClock, openStack, type Stack } from './stack';

// No executor host serves pool "parked": a started run stays QUEUED, which an overlap policy would weigh.
const daily = {
  name: 'daily',
  parameters: { day: { default: 'none' }, steps: { default: 1 } },
  tasks: [{ name: 'load', module: 'test/echo', pool: 'parked', parameters: { message: '${params.day}', steps: '${params.steps}' } }],
};

let stack: Stack;
let clock: Clock;
let scheduler: Scheduler;

beforeAll(async () => {
  stack = await openStack();
  await stack.createWorkflow(daily);
  clock = createClock('2030-01-01T00:00:00Z');
  scheduler = createScheduler({ db: stack.db, orchestrator: stack.orchestrator, clock });
});
afterAll(() => stack?.close());
afterEach(async () => {
  await stack.db.delete(schedules);
});

const create = (now: string, input: Partial<ScheduleInput>) =>
  createSchedule(stack.db, { workflow: 'daily', cron: '0 9 * * *', timeZone: 'Europe/Paris', fireTimeParameter: 'day', ...input }, null, clock.set(now));
const tickAt = async (now: string) => {
  clock.set(now);
  await scheduler.tick();
};
const startedDays = async (id: string) => {
  const fires = (await stack.firesOf(id)).filter((f) => f.runId);
  return Promise.all(fires.map(async (f) => (await stack.runOf(f.runId!)).parameters.day));
};

it('gives each run its fire time in the schedule’s time zone, on time and caught up', async () => {
  const s = await create('2030-03-28T00:00:00Z', { catchUp: 'ALL', overlap: 'ALLOW' });
  // down over three fire times, across the night Paris moves to summer time (31 March 2030)
  await tickAt('2030-03-31T12:00:00Z');
  expect(await startedDays(s.id)).toEqual(['2030-03-28T09:00:00+01:00', '2030-03-29T09:00:00+01:00', '2030-03-30T09:00:00+01:00', '2030-03-31T09:00:00+02:00']);
  const [fire] = await stack.firesOf(s.id);
  expect(fire!.backfill).toBe(false);
  // removed (null), the runs take the parameter's default again
  await updateSchedule(stack.db, s.id, { fireTimeParameter: null }, clock.set('2030-03-31T12:00:00Z'));
  await tickAt('2030-04-01T07:00:01Z');
  expect((await startedDays(s.id)).at(-1)).toBe('none');
});

it('refuses a fire-time parameter the workflow does not declare, sets otherwise, or cannot take', async () => {
  await expect(create('2030-01-01T00:00:00Z', { fireTimeParameter: 'date' })).rejects.toMatchObject({
    code: 'BAD_USER_INPUT',
    message: expect.stringMatching(/fireTimeParameter "date" is not a run parameter of workflow "daily" \(it declares: day, steps\); declare it/),
    details: [{ path: 'fireTimeParameter', message: 'is not declared by the workflow' }],
  });
  await expect(create('2030-01-01T00:00:00Z', { parameters: { day: 'x' } })).rejects.toMatchObject({
    code: 'BAD_USER_INPUT',
    message: expect.stringMatching(/sets "day" in its parameters and as its fireTimeParameter; each fire sets it/),
  });
  // `steps` feeds test/echo's integer parameter: a fire time is no integer (refused as a run start refuses it). The
  // schedule's values are at fault, not the workflow: the code an undeclared parameter gets, by either path.
  await expect(create('2030-01-01T00:00:00Z', { fireTimeParameter: 'steps' })).rejects.toMatchObject({
    code: 'BAD_USER_INPUT',
    message: expect.stringMatching(
      /^The schedule's parameters do not fit workflow "daily": Run parameters do not fit the workflow's modules \(pass values their schemas accept\): parameters\.steps: /,
    ),
    details: [{ path: 'parameters.steps' }],
  });
  await expect(create('2030-01-01T00:00:00Z', { fireTimeParameter: null, parameters: { steps: 'lots' } })).rejects.toMatchObject({
    code: 'BAD_USER_INPUT',
    details: [{ path: 'parameters.steps' }],
  });
  expect(await stack.db.select().from(schedules)).toEqual([]);
  const s = await create('2030-01-01T00:00:00Z', {});
  await expect(updateSchedule(stack.db, s.id, { fireTimeParameter: 'nope' }, clock.now())).rejects.toMatchObject({ code: 'BAD_USER_INPUT' });
  expect((await findSchedule(stack.db, s.id)).fireTimeParameter).toBe('day');
});

it('backfills a past range once, whatever the overlap policy, each run with its own day', async () => {
  const s = await create('2030-01-20T00:00:00Z', { overlap: 'SKIP' });
  const first = await backfillSchedule(stack.db, s.id, { from: new Date('2030-01-01T00:00:00Z'), to: new Date('2030-01-10T23:59:59Z') }, clock.now(), null);
  expect(first.queued.map((d) => d.toISOString().slice(0, 10))).toEqual(Array.from({ length: 10 }, (_, i) => `2030-01-${String(i + 1).padStart(2, '0')}`));
  expect(first.alreadyDealtWith).toEqual([]);
  await tickAt('2030-01-20T00:00:01Z');
  // every run is still QUEUED (pool "parked"): overlap SKIP would have let only one start
  const days = await startedDays(s.id);
  expect(days).toHaveLength(10);
  expect(days[0]).toBe('2030-01-01T09:00:00+01:00');
  expect((await stack.firesOf(s.id)).every((f) => f.backfill && f.outcome === 'STARTED')).toBe(true);

  // asked again over an overlapping range: only what was never dealt with is queued
  const again = await backfillSchedule(stack.db, s.id, { from: new Date('2030-01-05T00:00:00Z'), to: new Date('2030-01-12T23:00:00Z') }, clock.now(), null);
  expect(again.queued.map((d) => d.toISOString().slice(0, 10))).toEqual(['2030-01-11', '2030-01-12']);
  expect(again.alreadyDealtWith).toHaveLength(6);
  const [audited] = await stack.db.select().from(auditEvents).where(eq(auditEvents.action, 'schedule.backfill')).orderBy(auditEvents.at);
  expect(audited).toMatchObject({ decision: 'allow', subject: `schedule:${s.name}` });

  // an on-time fire weighs only on-time runs: the backfill's ten QUEUED runs do not make overlap SKIP skip it
  await tickAt('2030-01-20T08:00:01Z');
  const onTime = (await stack.firesOf(s.id)).filter((f) => !f.backfill);
  expect(onTime.map((f) => f.outcome)).toEqual(['STARTED']);
});

it('starts a backfill’s fires after every on-time one, a few each tick', async () => {
  const hourly = await create('2030-02-01T00:00:00Z', { name: 'hourly', cron: '0 * * * *', fireTimeParameter: null, overlap: 'ALLOW' });
  const s = await create('2030-02-01T00:00:00Z', { name: 'big', cron: '*/10 * * * *', timeZone: 'UTC' });
  const { queued } = await backfillSchedule(
    stack.db,
    s.id,
    { from: new Date('2030-01-31T00:00:00Z'), to: new Date('2030-01-31T09:59:00Z') },
    clock.now(),
    null,
  );
  expect(queued).toHaveLength(60);
  await tickAt('2030-02-01T01:00:00Z');
  expect((await stack.firesOf(hourly.id)).map((f) => f.outcome)).toEqual(['STARTED']);
  // its own on-time fire (01:00) too; 00:10 to 00:50 were missed (catch-up SKIP)
  const fires = await stack.firesOf(s.id);
  expect(fires.filter((f) => !f.backfill && f.outcome === 'STARTED').map((f) => f.fireTime.toISOString())).toEqual(['2030-02-01T01:00:00.000Z']);
  expect(fires.filter((f) => f.backfill && f.outcome === 'STARTED')).toHaveLength(50);
  // oldest first: the latest ten wait for the next tick
  expect(fires.filter((f) => f.outcome === 'PENDING').map((f) => f.fireTime)).toEqual(queued.slice(50));
  await tickAt('2030-02-01T01:00:01Z');
  expect((await stack.firesOf(s.id)).filter((f) => f.backfill && f.outcome !== 'STARTED')).toEqual([]);
  expect((await startedDays(s.id))[0]).toBe('2030-01-31T00:00:00Z');
});

it('refuses a backfill that ends in the future, runs backwards, holds no fire time or too many, and queues nothing', async () => {
  const s = await create('2030-03-01T00:00:00Z', {});
  const backfill = (from: string, to: string) => backfillSchedule(stack.db, s.id, { from: new Date(from), to: new Date(to) }, clock.now(), null);
  await expect(backfill('2030-02-01T00:00:00Z', '2030-03-05T00:00:00Z')).rejects.toMatchObject({
    code: 'BAD_USER_INPUT',
    message: expect.stringMatching(/to must not be later than now .*: the schedule fires later times itself/),
  });
  await expect(backfill('2030-02-10T00:00:00Z', '2030-02-01T00:00:00Z')).rejects.toMatchObject({ code: 'BAD_USER_INPUT', details: [{ path: 'to' }] });
  await expect(backfill('2030-02-10T09:00:01Z', '2030-02-10T10:00:00Z')).rejects.toMatchObject({
    code: 'BAD_USER_INPUT',
    message: /No fire time of "0 9 \* \* \*" \(Europe\/Paris\)/,
  });
  const minutely = await create('2030-03-01T00:00:00Z', { name: 'minutely', cron: '* * * * *' });
  await expect(
    backfillSchedule(stack.db, minutely.id, { from: new Date('2030-02-27T00:00:00Z'), to: new Date('2030-02-28T00:00:00Z') }, clock.now(), null),
  ).rejects.toMatchObject({ code: 'BAD_USER_INPUT', message: new RegExp(`More than ${MAX_BACKFILL} fire times`) });
  expect(await stack.firesOf(s.id)).toEqual([]);
  expect(await stack.firesOf(minutely.id)).toEqual([]);
});

it('holds at most MAX_BACKFILL backfilled fires waiting per schedule, across calls: more is refused saying so, the same range again is not', async () => {
  const s = await create('2030-03-01T00:00:00Z', { cron: '* * * * *', timeZone: 'UTC' });
  const MINUTE = 60_000;
  const at = (minutes: number) => new Date(Date.parse('2030-02-01T00:00:00Z') + minutes * MINUTE);
  const backfill = (from: number, to: number) => backfillSchedule(stack.db, s.id, { from: at(from), to: at(to) }, clock.now(), null);
  expect((await backfill(0, MAX_BACKFILL - 1)).queued).toHaveLength(MAX_BACKFILL);
  await expect(backfill(MAX_BACKFILL, MAX_BACKFILL)).rejects.toMatchObject({
    code: 'CONFLICT',
    message: expect.stringMatching(new RegExp(`already has ${MAX_BACKFILL} backfilled fires waiting to start.*at most ${MAX_BACKFILL}.*Nothing was queued`)),
  });
  expect(await backfill(0, MAX_BACKFILL - 1)).toMatchObject({ queued: [], alreadyDealtWith: expect.any(Array) });
  // once some have started, that many more may wait
  await tickAt('2030-03-01T00:00:00Z');
  expect((await backfill(MAX_BACKFILL, MAX_BACKFILL + 9)).queued).toHaveLength(10);
});
