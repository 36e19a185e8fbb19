// Backfills start runs: a backfill of a schedule needs what starting its runs needs (`start` on Run in its
// workflow's domain, the token's scopes included), not only the right to change the schedule. Unchecked, a token scoped
// to changing schedules queued runs that act for the schedule's creator, a thousand a call (test/scheduler/backfill.test.ts
// bounds how many a schedule holds).
import { eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueToken } from '../../server/auth/tokens';
import { queryRows } from '../../server/db/client';
import { identities } from '../../server/db/tables/identities';
import { startTestApp, type TestApp } from '../harness/app';
import { type ApiClient, apiClient } from '../harness/client';

const BACKFILL = `mutation ($id: ID!, $from: DateTime!, $to: DateTime!) { backfillSchedule(id: $id, from: $from, to: $to) { queued alreadyDealtWith } }`;
const MINUTE = 60_000;

let t: TestApp;
let mia: ApiClient;
let schedulesOnly: ApiClient;
let scheduleId = '';
const queuedFires = async () =>
  (await queryRows<{ n: number }>(t.app.services.db, sql`select count(*)::int as n from schedule_fires where backfill and schedule_id = ${scheduleId}`))[0]!.n;
const minutesAgo = (n: number) => new Date(Math.floor(Date.now() / MINUTE) * MINUTE - n * MINUTE).toISOString();

beforeAll(async () => {
  t = await startTestApp();
  await t.publishFixture('echo');
  mia = await t.user('mia');
  await t.team('ml', ['mia']);
  await mia.gql(`mutation ($s: String!) { createWorkflow(spec: $s) { created } }`, {
    s: JSON.stringify({ name: 'minutely', tasks: [{ name: 'say', module: 'test/echo', pool: 'parked' }] }),
  });
  const { createSchedule } = await mia.gql(`mutation ($input: CreateScheduleInput!) { createSchedule(input: $input) { id } }`, {
    input: { workflow: 'minutely', cron: '* * * * *', paused: true },
  });
  scheduleId = createSchedule.id;
  const [row] = await t.app.services.db.select().from(identities).where(eq(identities.name, 'mia'));
  schedulesOnly = apiClient(t.url, await issueToken(t.app.services.db, row!.id, 'changes schedules', { scopes: ['update:Schedule', 'read:Schedule'] }));
}, 120_000);
afterAll(() => t?.stop());

describe('backfills', () => {
  it('need start on Run: a token scoped to changing schedules may not backfill (FORBIDDEN), and nothing is queued', async () => {
    const r = await schedulesOnly.raw(BACKFILL, { id: scheduleId, from: minutesAgo(10), to: minutesAgo(1) });
    expect(r.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(r.errors?.[0]?.message).toContain('start');
    expect(await queuedFires()).toBe(0);
  });
});
