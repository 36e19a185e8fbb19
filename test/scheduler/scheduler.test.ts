// The scheduler against the real database and orchestrator, with a settable clock and `tick()` called directly:
// exactly-once firing (also by two replicas on one Postgres), time zones across DST, each catch-up and overlap
// policy, pause/resume, start/end windows, upcoming fire times, bad input, and failed or interrupted starts.
import { and, eq, inArray, like, sql } from 'drizzle-orm';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runs } from '../../server/db/tables/runs';
import { type Schedule, schedules } from '../../server/db/tables/schedules';
import type { Orchestrator } from '../../server/orchestrator/orchestrator';
import { createScheduler, fireKey, type Scheduler } from '../../server/scheduler/scheduler';
import {
  createSchedule,
  findSchedule,
  pauseSchedule,
  resumeSchedule,
  type ScheduleInput,
  upcomingFireTimes,
  updateSchedule,
} from '../../server/scheduler/schedules';
import { type PostgresServer, startPostgres } from '../harness/postgres';
import { type Clock, createClock, openStack, type Stack } from './stack';

// No executor host serves pool "parked": a started run stays QUEUED, so overlap is easy to set up.
const report = {
  name: 'report',
  parameters: { greeting: { default: 'hi' } },
  tasks: [{ name: 'say', module: 'test/echo', pool: 'parked', parameters: { message: '${params.greeting}' } }],
};
const iso = (dates: Date[]) => dates.map((d) => d.toISOString());
const ACTIVE = ['QUEUED', 'RUNNING'];

describe('scheduler (embedded PGlite)', () => {
  let stack: Stack;
  let clock: Clock;
  let scheduler: Scheduler;
  const logs: string[] = [];

  beforeAll(async () => {
    stack = await openStack();
    await stack.createWorkflow(report);
    clock = createClock('2030-01-01T00:00:00Z');
    scheduler = createScheduler({ db: stack.db, orchestrator: stack.orchestrator, clock, log: (m) => logs.push(m) });
  });
  afterAll(() => stack?.close());
  // Ticks see every schedule, and each test sets its own time: start each from none.
  afterEach(async () => {
    await stack.db.delete(schedules);
    logs.length = 0;
  });

  const create = (now: string, input: Partial<ScheduleInput>) =>
    createSchedule(stack.db, { workflow: 'report', cron: '0 * * * *', overlap: 'ALLOW', ...input }, null, clock.set(now));
  const tickAt = async (now: string) => {
    clock.set(now);
    await scheduler.tick();
  };
  const outcomes = async (s: Schedule) => (await stack.firesOf(s.id)).map((f) => `${f.fireTime.toISOString().slice(11, 16)} ${f.outcome}`);

  it('fires once per fire time, records the run it started, and never runs the past before its creation', async () => {
    const s = await create('2030-01-01T00:00:30Z', { cron: '*/10 * * * *', parameters: { greeting: 'bonjour' } });
    expect(s.lastFireTime.toISOString()).toBe('2030-01-01T00:00:30.000Z');
    expect(s.nextFireTime?.toISOString()).toBe('2030-01-01T00:10:00.000Z');
    await tickAt('2030-01-01T00:05:00Z');
    expect(await stack.firesOf(s.id)).toEqual([]);
    await tickAt('2030-01-01T00:10:00Z');
    await tickAt('2030-01-01T00:10:00Z');
    await tickAt('2030-01-01T00:15:00Z');
    const [fire, ...more] = await stack.firesOf(s.id);
    expect(more).toEqual([]);
    expect(fire).toMatchObject({ outcome: 'STARTED', message: null });
    expect(fire!.fireTime.toISOString()).toBe('2030-01-01T00:10:00.000Z');
    const run = await stack.runOf(fire!.runId!);
    expect(run).toMatchObject({ trigger: 'SCHEDULE', parameters: { greeting: 'bonjour' }, idempotencyKey: fireKey(s.id, fire!.fireTime) });
    await tickAt('2030-01-01T00:20:01Z');
    expect(await outcomes(s)).toEqual(['00:10 STARTED', '00:20 STARTED']);
    expect((await findSchedule(stack.db, s.id)).lastFireTime.toISOString()).toBe('2030-01-01T00:20:00.000Z');
  });

  it('starts its runs at its priority; a priority out of range is refused and creates nothing', async () => {
    const s = await create('2030-01-01T00:00:30Z', { cron: '*/10 * * * *', priority: 7 });
    await tickAt('2030-01-01T00:10:00Z');
    const [fire] = await stack.firesOf(s.id);
    expect(await stack.runOf(fire!.runId!)).toMatchObject({ trigger: 'SCHEDULE', priority: 7 });
    await expect(create('2030-01-01T00:00:30Z', { name: 'too-high', priority: 11 })).rejects.toThrow(/priority must be a whole number from -10 to 10/);
    await expect(updateSchedule(stack.db, s.id, { priority: 2.5 }, clock.now())).rejects.toThrow(/priority/);
    expect((await findSchedule(stack.db, s.id)).priority).toBe(7);
  });

  it('reads the cron expression in its time zone, across DST changes', async () => {
    const s = await create('2030-03-08T12:00:00Z', { cron: '0 9 * * *', timeZone: 'America/New_York' });
    // 9:00 in New York is 14:00 UTC in winter and 13:00 UTC from Sunday 10 March 2030 on.
    const expected = ['2030-03-08T14:00:00.000Z', '2030-03-09T14:00:00.000Z', '2030-03-10T13:00:00.000Z', '2030-03-11T13:00:00.000Z'];
    expect(iso(upcomingFireTimes(s, clock.now(), 4))).toEqual(expected);
    for (let t = Date.parse('2030-03-08T12:00:00Z'); t <= Date.parse('2030-03-11T14:00:00Z'); t += 3_600_000) await tickAt(new Date(t).toISOString());
    const fires = await stack.firesOf(s.id);
    expect(iso(fires.map((f) => f.fireTime))).toEqual(expected);
    expect(fires.every((f) => f.outcome === 'STARTED')).toBe(true);

    const timing = (cron: string, timeZone: string, from: string, n: number) =>
      iso(upcomingFireTimes({ ...s, cron, timeZone, startAt: null, endAt: null, lastFireTime: new Date(from) }, new Date(from), n));
    // and back to 14:00 UTC after Sunday 3 November 2030
    expect(timing('0 9 * * *', 'America/New_York', '2030-11-01T12:00:00Z', 4)).toEqual([
      '2030-11-01T13:00:00.000Z',
      '2030-11-02T13:00:00.000Z',
      '2030-11-03T14:00:00.000Z',
      '2030-11-04T14:00:00.000Z',
    ]);
    // 2:30 does not exist on 10 March in New York: a fixed-time job runs once, at the first valid time after the gap
    expect(timing('30 2 * * *', 'America/New_York', '2030-03-08T12:00:00Z', 3)).toEqual([
      '2030-03-09T07:30:00.000Z',
      '2030-03-10T07:00:00.000Z',
      '2030-03-11T06:30:00.000Z',
    ]);
    // 2:30 happens twice on 27 October in Paris: a fixed-time job still runs once that day
    expect(timing('30 2 * * *', 'Europe/Paris', '2030-10-25T12:00:00Z', 3)).toEqual([
      '2030-10-26T00:30:00.000Z',
      '2030-10-27T00:30:00.000Z',
      '2030-10-28T01:30:00.000Z',
    ]);
  });

  it('applies each catch-up policy after a 5-hour outage', async () => {
    const at = '2030-02-01T00:00:30Z';
    const skip = await create(at, { name: 'skip', catchUp: 'SKIP' });
    const latest = await create(at, { name: 'latest', catchUp: 'LATEST' });
    const all = await create(at, { name: 'all', catchUp: 'ALL' });
    const bounded = await create(at, { name: 'all-3', catchUp: 'ALL', catchUpLimit: 3 });
    await tickAt(at);
    // down from 00:00:30 to 05:30: fire times 01:00 … 05:00 were missed
    await tickAt('2030-02-01T05:30:00Z');
    const missed = (hours: number[]) => hours.map((h) => `0${h}:00 SKIPPED_MISSED`);
    const started = (hours: number[]) => hours.map((h) => `0${h}:00 STARTED`);
    expect(await outcomes(skip)).toEqual(missed([1, 2, 3, 4, 5]));
    expect(await outcomes(latest)).toEqual([...missed([1, 2, 3, 4]), ...started([5])]);
    expect(await outcomes(all)).toEqual(started([1, 2, 3, 4, 5]));
    expect(await outcomes(bounded)).toEqual([...missed([1, 2]), ...started([3, 4, 5])]);
    // ALL starts the missed runs oldest first
    const allRuns = await Promise.all((await stack.firesOf(all.id)).map((f) => stack.runOf(f.runId!)));
    expect(allRuns.map((r) => r.createdAt.getTime())).toEqual(allRuns.map((r) => r.createdAt.getTime()).sort());
    const [firstMissed] = await stack.firesOf(skip.id);
    expect(firstMissed!.message).toMatch(/missed by 4\.5 h: catch-up policy SKIP/);
    // back to normal: the next fire time runs under every policy
    await tickAt('2030-02-01T06:00:05Z');
    for (const s of [skip, latest, all, bounded]) expect((await outcomes(s)).at(-1)).toBe('06:00 STARTED');
  });

  it('neither fires twice nor skips silently when the wall clock steps back or forward an hour', async () => {
    const s = await create('2030-02-03T00:30:00Z', {});
    await tickAt('2030-02-03T01:00:10Z');
    // Stepped back an hour after firing 01:00: 01:00 comes round again and does not fire again.
    for (const at of ['00:01:00', '00:30:00', '01:00:05', '01:30:00', '02:00:05']) await tickAt(`2030-02-03T${at}Z`);
    expect(await outcomes(s)).toEqual(['01:00 STARTED', '02:00 STARTED']);
    // Stepped forward an hour (02:30 read as 03:30): 03:00 is found late and recorded missed, not skipped silently;
    // stepped back again, 03:00 is not fired a second time.
    for (const at of ['03:30:00', '02:31:00', '03:00:05', '04:00:05']) await tickAt(`2030-02-03T${at}Z`);
    expect(await outcomes(s)).toEqual(['01:00 STARTED', '02:00 STARTED', '03:00 SKIPPED_MISSED', '04:00 STARTED']);
    expect((await stack.firesOf(s.id)).find((f) => f.outcome === 'SKIPPED_MISSED')!.message).toMatch(/missed by 30 min/);
    // One run per fire that started.
    const started = (await stack.firesOf(s.id)).filter((f) => f.outcome === 'STARTED');
    expect(new Set(started.map((f) => f.runId)).size).toBe(3);
  });

  it('fires what falls due after a change made while the clock was an hour ahead, once the clock is set right', async () => {
    // Created, and another resumed, while the clock read 01:30 at 00:30: set right, 01:00 still fires for both.
    const created = await create('2030-02-04T01:30:00Z', { name: 'created-ahead' });
    const resumed = await create('2030-02-04T00:00:30Z', { name: 'resumed-ahead' });
    await pauseSchedule(stack.db, resumed.id, clock.set('2030-02-04T00:10:00Z'));
    await resumeSchedule(stack.db, resumed.id, clock.set('2030-02-04T01:30:00Z'));
    for (const at of ['00:31:00', '01:00:05', '01:30:05', '02:00:05']) await tickAt(`2030-02-04T${at}Z`);
    for (const s of [created, resumed]) expect(await outcomes(s)).toEqual(['01:00 STARTED', '02:00 STARTED']);
  });

  it('under SKIP still runs a fire time found late within the grace, not one found later', async () => {
    const s = await create('2030-02-02T00:00:30Z', { catchUp: 'SKIP' });
    await tickAt('2030-02-02T01:00:45Z');
    await tickAt('2030-02-02T03:05:00Z');
    expect(await outcomes(s)).toEqual(['01:00 STARTED', '02:00 SKIPPED_MISSED', '03:00 SKIPPED_MISSED']);
  });

  it('applies each overlap policy while the previous run is still queued', async () => {
    const at = '2030-03-01T00:00:30Z';
    const allow = await create(at, { name: 'allow', overlap: 'ALLOW' });
    const skip = await create(at, { name: 'skip', overlap: 'SKIP' });
    const cancel = await create(at, { name: 'cancel', overlap: 'CANCEL_PREVIOUS' });
    await tickAt('2030-03-01T01:00:00Z');
    await tickAt('2030-03-01T02:00:00Z');

    const allowFires = await stack.firesOf(allow.id);
    expect(allowFires.map((f) => f.outcome)).toEqual(['STARTED', 'STARTED']);
    for (const f of allowFires) expect(ACTIVE).toContain((await stack.runOf(f.runId!)).status);

    const [first, skipped] = await stack.firesOf(skip.id);
    expect(skipped).toMatchObject({ outcome: 'SKIPPED_OVERLAP', runId: null });
    expect(skipped!.message).toContain(first!.runId!);
    const [previous, next] = await stack.firesOf(cancel.id);
    expect(next).toMatchObject({ outcome: 'STARTED' });
    expect(next!.message).toContain(`cancelled the previous run ${previous!.runId}`);
    expect((await stack.runOf(previous!.runId!)).status).toBe('CANCELLED');
    expect(ACTIVE).toContain((await stack.runOf(next!.runId!)).status);

    // once the previous run has ended, SKIP runs the next fire time again
    await stack.orchestrator.cancelRun(first!.runId!, null);
    await tickAt('2030-03-01T03:00:00Z');
    expect(await outcomes(skip)).toEqual(['01:00 STARTED', '02:00 SKIPPED_OVERLAP', '03:00 STARTED']);
  });

  it('pauses and resumes: nothing fires while paused, and resuming catches up only as the policy says', async () => {
    const at = '2030-04-01T00:00:30Z';
    const skip = await create(at, { name: 'skip', catchUp: 'SKIP' });
    const latest = await create(at, { name: 'latest', catchUp: 'LATEST' });
    const born = await create(at, { name: 'born-paused', paused: true });
    clock.set('2030-04-01T00:30:00Z');
    for (const s of [skip, latest]) expect((await pauseSchedule(stack.db, s.id, clock.now())).paused).toBe(true);
    expect(upcomingFireTimes(await findSchedule(stack.db, skip.id), clock.now(), 5)).toEqual([]);
    await tickAt('2030-04-01T01:00:00Z');
    await tickAt('2030-04-01T02:00:00Z');
    for (const s of [skip, latest, born]) expect(await stack.firesOf(s.id)).toEqual([]);

    clock.set('2030-04-01T02:30:00Z');
    const resumed = await resumeSchedule(stack.db, skip.id, clock.now());
    expect(resumed.paused).toBe(false);
    expect(iso(upcomingFireTimes(resumed, clock.now(), 1))).toEqual(['2030-04-01T03:00:00.000Z']);
    await resumeSchedule(stack.db, latest.id, clock.now());
    await tickAt('2030-04-01T02:30:00Z');
    // SKIP: the paused hours are not run (nor listed); LATEST: the latest one runs once
    expect(await outcomes(skip)).toEqual([]);
    expect(await outcomes(latest)).toEqual(['01:00 SKIPPED_MISSED', '02:00 STARTED']);
    await tickAt('2030-04-01T03:00:00Z');
    expect(await outcomes(skip)).toEqual(['03:00 STARTED']);
    expect(await outcomes(born)).toEqual([]);
  });

  it('fires only inside its start/end window (both included)', async () => {
    const s = await create('2030-05-01T00:00:30Z', { startAt: new Date('2030-05-02T00:00:00Z'), endAt: new Date('2030-05-02T03:00:00Z') });
    expect(iso(upcomingFireTimes(s, clock.now(), 10))).toEqual(['00', '01', '02', '03'].map((h) => `2030-05-02T${h}:00:00.000Z`));
    for (let t = Date.parse('2030-05-01T01:00:00Z'); t <= Date.parse('2030-05-02T06:00:00Z'); t += 3_600_000) await tickAt(new Date(t).toISOString());
    expect(await outcomes(s)).toEqual(['00:00 STARTED', '01:00 STARTED', '02:00 STARTED', '03:00 STARTED']);
    const after = await findSchedule(stack.db, s.id);
    expect(after.nextFireTime).toBeNull();
    expect(upcomingFireTimes(after, clock.now(), 5)).toEqual([]);
  });

  it('lists the next fire times', async () => {
    const s = await create('2030-06-01T10:07:00Z', { cron: '*/15 * * * *' });
    expect(iso(upcomingFireTimes(s, clock.now(), 5))).toEqual(['10:15', '10:30', '10:45', '11:00', '11:15'].map((t) => `2030-06-01T${t}:00.000Z`));
    expect(upcomingFireTimes(s, clock.now(), 2)).toHaveLength(2);
    const seconds = await create('2030-06-01T10:07:00Z', { name: 'seconds', cron: '*/20 * * * * *' });
    expect(iso(upcomingFireTimes(seconds, clock.now(), 3))).toEqual(['2030-06-01T10:07:20.000Z', '2030-06-01T10:07:40.000Z', '2030-06-01T10:08:00.000Z']);
    // a changed cron applies from now on: nothing of the past is caught up
    clock.set('2030-06-01T12:00:00Z');
    const changed = await updateSchedule(stack.db, s.id, { cron: '0 18 * * *', timeZone: 'Asia/Tokyo' }, clock.now());
    expect(changed.lastFireTime.toISOString()).toBe('2030-06-01T12:00:00.000Z');
    expect(iso(upcomingFireTimes(changed, clock.now(), 2))).toEqual(['2030-06-02T09:00:00.000Z', '2030-06-03T09:00:00.000Z']);
  });

  it('refuses bad input with a typed error naming the field, and creates or changes nothing', async () => {
    const now = '2030-07-01T00:00:00Z';
    const count = async () => (await stack.db.select({ n: sql<number>`count(*)::int` }).from(schedules))[0]!.n;
    const existing = await create(now, { name: 'taken' });
    const refused = async (input: Partial<ScheduleInput>, code: string, path: string, message?: RegExp) => {
      const error = await create(now, input).then(
        () => null,
        (e) => e,
      );
      expect(error, JSON.stringify(input)).toMatchObject({ code, details: expect.arrayContaining([expect.objectContaining({ path })]) });
      if (message) expect(error.message).toMatch(message);
    };
    await refused({ cron: 'every day at nine' }, 'BAD_USER_INPUT', 'cron', /does not parse/);
    await refused({ cron: '61 * * * *' }, 'BAD_USER_INPUT', 'cron', /minute/);
    await refused({ cron: '0 0 30 2 *' }, 'BAD_USER_INPUT', 'cron', /never fires/);
    await refused({ timeZone: 'Mars/Olympus' }, 'BAD_USER_INPUT', 'timeZone', /not a known IANA time zone/);
    await refused({ startAt: new Date('2030-09-01T00:00:00Z'), endAt: new Date('2030-08-01T00:00:00Z') }, 'BAD_USER_INPUT', 'endAt', /after startAt/);
    await refused({ endAt: new Date('2030-06-01T00:00:00Z') }, 'BAD_USER_INPUT', 'endAt', /no fire time is left/);
    await refused({ workflow: 'no-such-workflow' }, 'NOT_FOUND', 'workflow', /no-such-workflow/);
    await refused({ parameters: { colour: 'red' } }, 'BAD_USER_INPUT', 'parameters.colour', /colour/);
    await refused({ catchUpLimit: 0 }, 'BAD_USER_INPUT', 'catchUpLimit');
    await refused({ name: 'taken' }, 'CONFLICT', 'name');
    expect(await count()).toBe(1);

    await expect(updateSchedule(stack.db, existing.id, { cron: '0 0 31 4 *' }, new Date(now))).rejects.toMatchObject({
      code: 'BAD_USER_INPUT',
      details: [expect.objectContaining({ path: 'cron' })],
    });
    expect(await findSchedule(stack.db, existing.id)).toEqual(existing);
    await expect(findSchedule(stack.db, 'not-a-uuid')).rejects.toMatchObject({ code: 'BAD_USER_INPUT' });
    await expect(findSchedule(stack.db, '00000000-0000-4000-8000-000000000000')).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('records a run that cannot start as FAILED, with its reason, and goes on with other schedules', async () => {
    await stack.createWorkflow({ ...report, name: 'fragile' });
    const fragile = await create('2030-08-01T00:00:30Z', { workflow: 'fragile', parameters: { greeting: 'hello' } });
    const healthy = await create('2030-08-01T00:00:30Z', {});
    // the workflow's next version no longer declares the parameter the schedule passes
    await stack.createWorkflow({ name: 'fragile', tasks: report.tasks.map((t) => ({ ...t, parameters: { message: 'fixed' } })) });
    await tickAt('2030-08-01T01:00:00Z');
    const [failed] = await stack.firesOf(fragile.id);
    expect(failed).toMatchObject({ outcome: 'FAILED', runId: null });
    expect(failed!.message).toMatch(/could not start: Unknown run parameter "greeting"/);
    expect(await outcomes(healthy)).toEqual(['01:00 STARTED']);
    // a failed fire is not retried; the next fire time is tried afresh
    await tickAt('2030-08-01T01:30:00Z');
    expect(await stack.firesOf(fragile.id)).toHaveLength(1);
  });

  it('finishes a fire interrupted between claiming and starting, with exactly one run', async () => {
    const s = await create('2030-09-01T00:00:30Z', {});
    let failures = 0;
    let startedThenLost = false;
    const flaky: Pick<Orchestrator, 'startRun' | 'cancelRun'> = {
      cancelRun: stack.orchestrator.cancelRun,
      async startRun(input, identity) {
        if (failures++ === 0) throw new Error('connection reset'); // before anything was written
        const run = await stack.orchestrator.startRun(input, identity);
        if (!startedThenLost) {
          startedThenLost = true;
          throw new Error('connection lost after commit'); // the run exists, the answer is lost
        }
        return run;
      },
    };
    const fragileScheduler = createScheduler({ db: stack.db, orchestrator: flaky, clock, log: (m) => logs.push(m) });
    clock.set('2030-09-01T01:00:00Z');
    await fragileScheduler.tick();
    expect(await outcomes(s)).toEqual(['01:00 PENDING']);
    expect(logs.join('\n')).toMatch(/connection reset/);
    await fragileScheduler.tick();
    expect(await outcomes(s)).toEqual(['01:00 PENDING']);
    expect(logs.join('\n')).toMatch(/connection lost after commit/);
    await fragileScheduler.tick();
    const [fire] = await stack.firesOf(s.id);
    expect(fire).toMatchObject({ outcome: 'STARTED' });
    const started = await stack.db
      .select()
      .from(runs)
      .where(like(runs.idempotencyKey, `schedule:${s.id}:%`));
    expect(started.map((r) => r.id)).toEqual([fire!.runId]);
  });
});

describe('scheduler replicas on one Postgres', () => {
  let pg: PostgresServer;
  let a: Stack;
  let b: Stack;

  beforeAll(async () => {
    pg = await startPostgres({ migrated: true });
    a = await openStack({ url: pg.url });
    b = await openStack({ url: pg.url, publish: false });
    await a.createWorkflow(report);
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await pg?.stop();
  });

  // With the leader lock only one replica works per tick; without it the unique fire key and the run's
  // idempotency key alone must still make every fire time happen once.
  for (const leaderLock of [undefined, false]) {
    it(`fires each fire time exactly once with two schedulers ticking at once (${leaderLock === false ? 'no leader lock' : 'leader lock'})`, async () => {
      const clock = createClock('2030-10-01T00:00:00Z');
      const made = [];
      for (let i = 0; i < 4; i++) {
        made.push(
          await createSchedule(
            a.db,
            { workflow: 'report', name: `every-minute-${i}-${leaderLock}`, cron: '* * * * *', overlap: 'ALLOW', catchUp: 'ALL' },
            null,
            clock.now(),
          ),
        );
      }
      const replicas = [a, b, a, b].map((s) => createScheduler({ db: s.db, orchestrator: s.orchestrator, clock, leaderLock }));
      for (let minute = 1; minute <= 10; minute++) {
        clock.set(new Date(Date.parse('2030-10-01T00:00:05Z') + minute * 60_000));
        await Promise.all(replicas.map((r) => r.tick()));
      }
      const ids = made.map((s) => s.id);
      for (const s of made) {
        const fires = await b.firesOf(s.id);
        expect(fires.map((f) => f.outcome)).toEqual(Array(10).fill('STARTED'));
        expect(new Set(fires.map((f) => f.runId)).size).toBe(10);
      }
      const started = await a.db
        .select({ id: runs.id })
        .from(runs)
        .where(and(eq(runs.trigger, 'SCHEDULE'), inArray(sql`split_part(${runs.idempotencyKey}, ':', 2)`, ids)));
      expect(started).toHaveLength(40);
      await a.db.delete(schedules);
    });
  }
});
