// Notifications (issue 19 item 6): a schedule's missed fire times reach its team's webhooks as one signed
// `schedule.misfired` event, emitted in the transaction that records them; a run failing already sends `run.failed`.
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { queryRows } from '../../server/db/client';
import { startTestApp, type TestApp } from '../harness/app';
import type { ApiClient } from '../harness/client';
import { type Receiver, startReceiver, until } from '../webhooks/receiver';

let t: TestApp;
let receiver: Receiver;
let alice: ApiClient;

beforeAll(async () => {
  receiver = await startReceiver();
  t = await startTestApp({ ATELIER_WEBHOOK_ALLOWLIST: 'http://127.0.0.1:*', ATELIER_WEBHOOK_POLL_MS: '100' });
  await t.publishFixture('echo');
  alice = await t.user('alice');
  await t.team('ml', ['alice']);
  await alice.gql(`mutation ($s: String!) { createWorkflow(spec: $s, team: "ml") { created } }`, {
    s: JSON.stringify({ name: 'hourly', tasks: [{ name: 'say', module: 'test/echo', pool: 'parked' }] }),
  });
  await alice.gql(`mutation ($u: String!) { createWebhook(team: "ml", url: $u, events: ["schedule.*"]) { secret } }`, { u: `${receiver.url}/ml` });
}, 60_000);
afterAll(async () => {
  await t?.stop();
  await receiver?.close();
});

it('sends schedule.misfired with the missed fire times once, when the scheduler finds them', async () => {
  const { createSchedule } = await alice.gql(`mutation { createSchedule(input: { workflow: "hourly", cron: "0 * * * *", name: "top-of-hour" }) { id } }`);
  // As if the control plane had been down for three hours and more: the three top-of-hour times before its end (an
  // hour ago, so none lies within the 60 s grace whenever this runs) are missed (catch-up SKIP).
  await queryRows(
    t.app.services.db,
    sql`update schedules set last_fire_time = date_trunc('hour', now()) - interval '3 hours' - interval '1 minute', next_fire_time = date_trunc('hour', now()) - interval '3 hours', end_at = date_trunc('hour', now()) - interval '1 hour' where id = ${createSchedule.id}`,
  );
  const [post] = await until(
    () => receiver.at('/ml'),
    (r) => r.length > 0,
    'a schedule.misfired delivery',
  );
  const event = JSON.parse(post!.body);
  expect(event.type).toBe('schedule.misfired');
  expect(event.data).toMatchObject({ schedule: { id: createSchedule.id, name: 'top-of-hour', catchUp: 'SKIP' }, missed: 3, olderNotListed: false });
  expect(event.data.fireTimes).toHaveLength(3);
  expect(event.data).not.toHaveProperty('parameters');
  expect(post!.headers['atelier-signature']).toMatch(/^v1=/);
  const { schedule } = await alice.gql(`query ($id: ID!) { schedule(id: $id) { fires { outcome } } }`, { id: createSchedule.id });
  expect(schedule.fires.map((f: any) => f.outcome)).toEqual(Array(3).fill('SKIPPED_MISSED'));
});
