// Schedules through the real API and CLI: the GraphQL fields (next fire times, fires, Workflow.schedules), the
// mutations with their typed errors and authorization, and `atelier schedule …` as a user runs it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureIdentity, issueToken } from '../../server/auth/tokens';
import { startTestApp, type TestApp } from '../harness/app';
import { runCli } from '../harness/cli';
import { apiClient } from '../harness/client';

const FIELDS =
  'id name cron timeZone paused catchUp catchUpLimit overlap parameters startAt endAt lastFireTime nextFireTimes(count: 3) workflow { name } fires { outcome } createdBy { name }';
const CREATE = `mutation ($input: CreateScheduleInput!) { createSchedule(input: $input) { ${FIELDS} } }`;

describe('schedules API and CLI', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
    await t.publishFixture('echo');
    await t.createWorkflow({
      name: 'report',
      parameters: { greeting: { default: 'hi' } },
      tasks: [{ name: 'say', module: 'test/echo', pool: 'parked', parameters: { message: '${params.greeting}' } }],
    });
  });
  afterAll(() => t?.stop());

  it('creates, lists, changes, pauses, resumes and deletes a schedule', async () => {
    const { createSchedule: s } = await t.api.gql(CREATE, {
      input: { workflow: 'report', cron: '0 9 * * *', timeZone: 'Europe/Paris', parameters: { greeting: 'salut' }, catchUp: 'LATEST' },
    });
    expect(s).toMatchObject({
      name: '0 9 * * * (Europe/Paris)',
      paused: false,
      catchUp: 'LATEST',
      catchUpLimit: 10,
      overlap: 'SKIP',
      parameters: { greeting: 'salut' },
      workflow: { name: 'report' },
      fires: [],
      createdBy: { name: 'admin' },
    });
    expect(s.nextFireTimes).toHaveLength(3);
    for (const at of s.nextFireTimes)
      expect(new Intl.DateTimeFormat('en-GB', { timeZone: 'Europe/Paris', hour: '2-digit', minute: '2-digit' }).format(new Date(at))).toBe('09:00');
    expect(Date.parse(s.nextFireTimes[0])).toBeGreaterThan(Date.now());

    const listed = await t.api.gql(`{ schedules(workflow: "report") { id } workflow(name: "report") { schedules { id name } } }`);
    expect(listed.schedules.map((x: any) => x.id)).toContain(s.id);
    expect(listed.workflow.schedules).toContainEqual({ id: s.id, name: s.name });

    const { updateSchedule: u } = await t.api.gql(
      `mutation ($id: ID!, $input: UpdateScheduleInput!) { updateSchedule(id: $id, input: $input) { ${FIELDS} } }`,
      {
        id: s.id,
        input: { name: 'mornings', cron: '30 7 * * 1-5', overlap: 'CANCEL_PREVIOUS', endAt: null },
      },
    );
    expect(u).toMatchObject({ name: 'mornings', cron: '30 7 * * 1-5', timeZone: 'Europe/Paris', overlap: 'CANCEL_PREVIOUS', catchUp: 'LATEST', endAt: null });

    const { pauseSchedule: p } = await t.api.gql(`mutation ($id: ID!) { pauseSchedule(id: $id) { paused nextFireTimes } }`, { id: s.id });
    expect(p).toEqual({ paused: true, nextFireTimes: [] });
    const { resumeSchedule: r } = await t.api.gql(`mutation ($id: ID!) { resumeSchedule(id: $id) { paused nextFireTimes(count: 2) } }`, { id: s.id });
    expect(r.paused).toBe(false);
    expect(r.nextFireTimes).toHaveLength(2);

    expect((await t.api.gql(`mutation ($id: ID!) { deleteSchedule(id: $id) }`, { id: s.id })).deleteSchedule).toBe(s.id);
    expect((await t.api.gql(`query ($id: ID!) { schedule(id: $id) { id } }`, { id: s.id })).schedule).toBeNull();
  });

  it('answers bad input with typed errors naming the field, and refuses writes to a viewer', async () => {
    const refused = async (input: object) => (await t.api.raw(CREATE, { input: { workflow: 'report', cron: '0 9 * * *', ...input } })).errors?.[0];
    expect(await refused({ cron: '0 0 30 2 *' })).toMatchObject({ extensions: { code: 'BAD_USER_INPUT', details: [{ path: 'cron' }] } });
    expect(await refused({ timeZone: 'Europe/Atlantis' })).toMatchObject({ extensions: { code: 'BAD_USER_INPUT', details: [{ path: 'timeZone' }] } });
    expect(await refused({ parameters: { nope: 1 } })).toMatchObject({ extensions: { code: 'BAD_USER_INPUT', details: [{ path: 'parameters.nope' }] } });
    expect(await refused({ workflow: 'ghost' })).toMatchObject({ extensions: { code: 'NOT_FOUND' } });
    expect((await t.api.gql(`{ schedules { id } }`)).schedules).toEqual([]);

    const viewer = await ensureIdentity(t.app.services.db, { name: 'watcher', kind: 'user', role: 'viewer' });
    const api = apiClient(t.url, await issueToken(t.app.services.db, viewer.id, 'watcher'));
    expect((await api.raw(CREATE, { input: { workflow: 'report', cron: '0 9 * * *' } })).errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect((await api.gql(`{ schedules { id } }`)).schedules).toEqual([]);
  });

  it('backfills a past range through the API, each run given its fire time; a viewer may not, nor a bad range', async () => {
    await t.createWorkflow({
      name: 'daily',
      parameters: { day: {} },
      tasks: [{ name: 'load', module: 'test/echo', pool: 'parked', parameters: { message: '${params.day}' } }],
    });
    const { createSchedule: s } = await t.api.gql(CREATE.replace('{ id name', '{ id fireTimeParameter name'), {
      input: { workflow: 'daily', name: 'nightly', cron: '30 1 * * *', timeZone: 'Asia/Tokyo', fireTimeParameter: 'day' },
    });
    expect(s.fireTimeParameter).toBe('day');
    const BACKFILL = `mutation ($id: ID!, $from: DateTime!, $to: DateTime!) { backfillSchedule(id: $id, from: $from, to: $to) { schedule { name } queued alreadyDealtWith } }`;
    const range = { id: s.id, from: '2026-11-01T00:00:00Z', to: '2026-11-03T23:59:59Z' };
    const viewer = await ensureIdentity(t.app.services.db, { name: 'watcher', kind: 'user', role: 'viewer' });
    const api = apiClient(t.url, await issueToken(t.app.services.db, viewer.id, 'watcher-2'));
    expect((await api.raw(BACKFILL, range)).errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const late = await t.api.raw(BACKFILL, { ...range, to: new Date(Date.now() + 86_400_000).toISOString() });
    expect(late.errors?.[0]).toMatchObject({ extensions: { code: 'BAD_USER_INPUT', details: [{ path: 'to' }] } });

    const { backfillSchedule: b } = await t.api.gql(BACKFILL, range);
    // 01:30 in Tokyo is 16:30 UTC the day before: the range holds those of 2, 3 and 4 November in Tokyo
    expect(b).toEqual({
      schedule: { name: 'nightly' },
      queued: ['2026-11-01T16:30:00.000Z', '2026-11-02T16:30:00.000Z', '2026-11-03T16:30:00.000Z'],
      alreadyDealtWith: [],
    });
    let fires: any[] = [];
    for (let i = 0; i < 100 && fires.filter((f) => f.run).length < 3; i++) {
      await new Promise((r) => setTimeout(r, 100));
      ({ fires } = (
        await t.api.gql(`query ($id: ID!) { schedule(id: $id) { fires { fireTime backfill outcome run { parameters } } } }`, { id: s.id })
      ).schedule);
    }
    expect(fires.map((f) => [f.backfill, f.outcome, f.run?.parameters.day]).reverse()).toEqual([
      [true, 'STARTED', '2026-11-02T01:30:00+09:00'],
      [true, 'STARTED', '2026-11-03T01:30:00+09:00'],
      [true, 'STARTED', '2026-11-04T01:30:00+09:00'],
    ]);
    expect((await t.api.gql(BACKFILL, range)).backfillSchedule).toMatchObject({ queued: [], alreadyDealtWith: b.queued });
  });

  it('drives schedules from the CLI', async () => {
    const cli = (...args: string[]) => runCli({ url: t.url, token: t.app.adminToken }, args);

    const created = await cli(
      'schedule',
      'create',
      'report',
      '--cron',
      '0 6 * * *',
      '--tz',
      'America/New_York',
      '--param',
      'greeting=hello',
      '--catch-up',
      'all',
      '--catch-up-limit',
      '3',
      '--overlap',
      'cancel-previous',
      '--name',
      'dawn',
      '-q',
    );
    expect(created.code, created.stderr).toBe(0);
    const id = created.stdout.trim();
    const { schedule } = await t.api.gql(`query ($id: ID!) { schedule(id: $id) { ${FIELDS} } }`, { id });
    expect(schedule).toMatchObject({
      name: 'dawn',
      timeZone: 'America/New_York',
      catchUp: 'ALL',
      catchUpLimit: 3,
      overlap: 'CANCEL_PREVIOUS',
      parameters: { greeting: 'hello' },
    });

    const list = await cli('schedule', 'list', 'report');
    expect(list.stdout).toContain(`${id}  report  "dawn"  0 6 * * * (America/New_York)  catch-up all, overlap cancel-previous`);
    expect(list.stdout).toContain(`next ${schedule.nextFireTimes.join(', ')}`);
    expect((await cli('schedule', 'pause', id)).stdout).toMatch(/^paused schedule .*\n\s+paused\n$/);
    expect((await cli('schedule', 'resume', id)).stdout).toContain('resumed schedule');
    expect((await cli('schedule', 'delete', id)).stdout).toBe(`deleted schedule ${id}\n`);

    // a run parameter set by each fire, then a backfill of two past days, shown with their runs
    const daily = await cli('schedule', 'create', 'daily', '--cron', '0 2 * * *', '--name', 'two', '--fire-time-param', 'day', '-q');
    expect(daily.code, daily.stderr).toBe(0);
    const dailyId = daily.stdout.trim();
    expect((await cli('schedule', 'show', dailyId)).stdout).toContain('fire time → day');
    const filled = await cli('schedule', 'backfill', dailyId, '--from', '2026-10-01T00:00:00Z', '--to', '2026-10-02T23:00:00Z');
    expect(filled.stdout).toBe(
      `queued 2 fire times of schedule "two", 2026-10-01T02:00:00.000Z to 2026-10-02T02:00:00.000Z\nthey start after the schedule's on-time fires; follow them with \`atelier schedule show ${dailyId}\`\n`,
    );
    const refilled = await cli('schedule', 'backfill', dailyId, '--from', '2026-10-01T00:00:00Z', '--to', '2026-10-03T23:00:00Z');
    expect(refilled.stdout).toContain(
      'queued 1 fire time of schedule "two", 2026-10-03T02:00:00.000Z to 2026-10-03T02:00:00.000Z; 2 fire times already dealt with',
    );
    let shown = '';
    for (let i = 0; i < 100 && (shown.match(/STARTED +backfill/g) ?? []).length < 3; i++) {
      await new Promise((r) => setTimeout(r, 100));
      shown = (await cli('schedule', 'show', dailyId)).stdout;
    }
    expect(shown).toMatch(/2026-10-01T02:00:00.000Z {2}STARTED +backfill {2}run [0-9a-f-]{36}/);
    const future = await cli('schedule', 'backfill', dailyId, '--from', '2026-10-01T00:00:00Z', '--to', '2099-01-01T00:00:00Z');
    expect(future.code).toBe(1);
    expect(future.stderr).toMatch(/BAD_USER_INPUT.*to: must not be later than now .*: the schedule fires later times itself/s);
    expect((await cli('schedule', 'update', dailyId, '--fire-time-param', 'none')).stdout).not.toContain('fire time →');

    const bad = await cli('schedule', 'create', 'report', '--cron', '0 0 30 2 *');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('BAD_USER_INPUT');
    expect(bad.stderr).toMatch(/cron: .*never fires/);
  });
});
