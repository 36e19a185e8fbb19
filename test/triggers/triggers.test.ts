// Triggers beyond cron against one real server: each source (a dataset version, a run succeeding, an alias moved, an
// alert opening, an inbound hook) fires its trigger once, with the run recording which trigger and signal started it;
// overlap SKIP; a storm of 10,000 signals coalesced and rate-limited, every one recorded; payload mapping errors.
import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queryRows } from '../../server/db/client';
import { hookSubject, monitorSubject, recordSignal } from '../../server/signals/signals';
import { startTestApp, type TestApp } from '../harness/app';
import { REGISTER, runToEnd, setUpRegistryWorld } from '../registry/setup';
import { CREATE_TRIGGER, decided, firings, postHook, until } from './world';

let t: TestApp;
const DIGEST = (c: string) => `sha256:${c.repeat(64)}`;
const COLUMNS = [
  { name: 'id', type: 'string', label: { level: 'INTERNAL' } },
  { name: 'country', type: 'string', label: { level: 'PUBLIC' } },
  { name: 'email', type: 'string', label: { level: 'RESTRICTED', categories: ['PII'] } },
];

const create = async (input: object) => (await t.api.gql(CREATE_TRIGGER, { input: { workflow: 'retrain', ...input } })).createTrigger;

beforeAll(async () => {
  t = await startTestApp();
  await t.publishFixture('echo');
  await setUpRegistryWorld(t);
  // Runs of `retrain` wait in a pool no host serves: they stay QUEUED (active), which the overlap tests need.
  await t.createWorkflow({
    name: 'retrain',
    parameters: { version: { default: 0 }, reason: { default: 'none' } },
    tasks: [{ name: 'say', module: 'test/echo', pool: 'parked', parameters: { message: '${params.reason}' } }],
  });
}, 120_000);
afterAll(() => t?.stop());

describe('each source fires its trigger once, recorded on the run', () => {
  it('a new dataset version (mapped onto a parameter); the same version again records nothing', async () => {
    await create({ name: 'on-users', kind: 'DATASET_VERSION', source: 'crm/users', parameterMap: { version: '/version' } });
    const ADD = `mutation ($d: String!, $c: [DatasetColumnInput!]!) { addDatasetVersion(name: "crm/users", columns: $c, digest: $d) { id } }`;
    await t.api.gql(ADD, { d: DIGEST('d'), c: COLUMNS });
    await t.api.gql(ADD, { d: DIGEST('d'), c: COLUMNS }); // unchanged: no new version, no signal
    const [f] = await decided(t, 'on-users', 1);
    expect(f).toMatchObject({ outcome: 'STARTED', signalType: 'dataset.version', run: { trigger: 'EVENT', parameters: { version: 2, reason: 'none' } } });
    const { run } = await t.api.gql(`query ($id: ID!) { run(id: $id) { triggeredBy { outcome signalSubject trigger { name kind } } } }`, { id: f.run.id });
    expect(run.triggeredBy).toEqual({ outcome: 'STARTED', signalSubject: 'dataset:crm/users', trigger: { name: 'on-users', kind: 'DATASET_VERSION' } });
    t.app.services.triggers.kick();
    await t.app.services.triggers.drain();
    expect(await firings(t, 'on-users')).toHaveLength(1);
  });

  it('a run of another workflow succeeding, and an alias moved', async () => {
    await create({ name: 'after-train', kind: 'RUN_SUCCEEDED', source: 'train' });
    const run = await runToEnd(t, 'train', { seed: 7 });
    const [f] = await decided(t, 'after-train', 1);
    expect(f).toMatchObject({ outcome: 'STARTED', signalType: 'run.succeeded', signalPayload: { run: { id: run.id } } });
    await t.api.gql(REGISTER, { m: 'ml/churn', t: run.task.train!.id, o: 'model' });
    await create({ name: 'on-champion', kind: 'ALIAS_MOVED', source: 'ml/churn@champion', parameterMap: { version: '/to' } });
    await t.api.gql(`mutation { setModelAlias(model: "ml/churn", alias: "champion", version: "1") { alias } }`);
    const [moved] = await decided(t, 'on-champion', 1);
    expect(moved).toMatchObject({ outcome: 'STARTED', signalType: 'alias.moved', run: { parameters: { version: 1 } } });
  });

  it('an alert opening (recorded by the monitors’ seam, recordSignal) fires a trigger on that monitor', async () => {
    const monitor = randomUUID();
    await create({ name: 'on-alert', kind: 'ALERT_OPENED', source: monitor, parameterMap: { reason: '/alert/rule' } });
    const payload = { alert: { id: randomUUID(), rule: 'accuracy below 0.9' }, monitor: { id: monitor } };
    const key = `alert:${payload.alert.id}`;
    await recordSignal(t.app.services.db, { type: 'alert.opened', team: null, subject: monitorSubject(monitor), key, payload });
    await recordSignal(t.app.services.db, { type: 'alert.opened', team: null, subject: monitorSubject(monitor), key, payload }); // the same event: one signal
    const [f] = await decided(t, 'on-alert', 1);
    expect(f).toMatchObject({ outcome: 'STARTED', run: { parameters: { reason: 'accuracy below 0.9' } } });
    expect(await firings(t, 'on-alert')).toHaveLength(1);
  });

  it('starts its runs at its priority, which an update changes within -10..10', async () => {
    const { trigger } = await create({ name: 'urgent-hook', kind: 'HTTP', priority: 6 });
    expect(trigger.priority).toBe(6);
    expect((await postHook(t, 'urgent-hook', {}, { token: t.app.adminToken })).status).toBeLessThan(300);
    const [f] = await decided(t, 'urgent-hook', 1);
    const { run } = await t.api.gql(`query ($id: ID!) { run(id: $id) { priority } }`, { id: f.run.id });
    expect(run.priority).toBe(6);
    const UPDATE = `mutation ($id: String!, $p: Int) { updateTrigger(id: $id, input: { priority: $p }) { priority } }`;
    const bad = await t.api.raw(UPDATE, { id: trigger.id, p: -11 });
    expect(bad.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', details: [{ path: 'priority' }] });
    expect((await t.api.gql(UPDATE, { id: trigger.id, p: -4 })).updateTrigger.priority).toBe(-4);
  });

  it('an inbound hook, by token or HMAC; a redelivery is the same signal and run', async () => {
    const { secret, trigger } = await create({ name: 'deploy-hook', kind: 'HTTP', parameterMap: { reason: '/why' } });
    expect(trigger.hookPath).toBe('/hooks/trigger/deploy-hook');
    expect(secret).toMatch(/^trsec_/);
    const byToken = await postHook(t, 'deploy-hook', { why: 'token' }, { token: t.app.adminToken });
    expect(byToken).toMatchObject({ status: 202, json: { outcome: 'STARTED' } });
    const signed = await postHook(t, 'deploy-hook', { why: 'signed' }, { secret, delivery: 'd-1' });
    expect(signed.status).toBe(202);
    const again = await postHook(t, 'deploy-hook', { why: 'signed' }, { secret, delivery: 'd-1' });
    expect(again.json).toMatchObject({ signalId: signed.json.signalId, runId: signed.json.runId });
    const all = await decided(t, 'deploy-hook', 2);
    expect(all.map((f) => f.run.parameters.reason).sort()).toEqual(['signed', 'token']);
  });
});

describe('payload mapping', () => {
  it('a payload missing a mapped value is a 400 naming the parameter, and records nothing', async () => {
    await create({ name: 'strict-hook', kind: 'HTTP', parameterMap: { reason: '/why', version: '/v' } });
    const r = await postHook(t, 'strict-hook', { why: 'no version' }, { token: t.app.adminToken });
    expect(r.status).toBe(400);
    expect(r.json.error.details).toEqual([{ path: 'parameters.version', message: 'the payload has nothing at "/v"' }]);
    expect(r.json.error.message).toContain('parameters.version');
    const [row] = await queryRows<{ n: number }>(
      t.app.services.db,
      sql`select count(*)::int as n from signals where subject like 'trigger:%' and payload->>'why' = 'no version'`,
    );
    expect(row!.n).toBe(0);
  });

  it('a mapping onto an undeclared parameter, or a bad pointer, is refused at creation', async () => {
    const r = await t.api.raw(CREATE_TRIGGER, { input: { workflow: 'retrain', name: 'bad-map', kind: 'HTTP', parameterMap: { epochs: '/e' } } });
    expect(r.errors?.[0]).toMatchObject({ extensions: { code: 'BAD_USER_INPUT' } });
    expect(r.errors?.[0]?.message).toContain('"epochs"');
    const p = await t.api.raw(CREATE_TRIGGER, { input: { workflow: 'retrain', name: 'bad-ptr', kind: 'HTTP', parameterMap: { reason: 'why' } } });
    expect(p.errors?.[0]?.extensions?.details).toEqual([
      { path: 'parameterMap.reason', message: 'must be a JSON pointer ("" for the whole payload, or "/a/b")' },
    ]);
  });
});

describe('overlap and storms', () => {
  it('overlap SKIP: a signal while the trigger’s run is active is recorded SKIPPED_OVERLAP', async () => {
    await create({ name: 'skip-hook', kind: 'HTTP', overlap: 'SKIP' });
    expect((await postHook(t, 'skip-hook', {}, { token: t.app.adminToken })).json.outcome).toBe('STARTED');
    const second = await postHook(t, 'skip-hook', {}, { token: t.app.adminToken });
    expect(second.json).toMatchObject({ outcome: 'SKIPPED_OVERLAP', runId: null });
    expect(second.json.message).toContain('overlap policy SKIP');
  });

  it('overlap CANCEL_PREVIOUS cancels the trigger’s active run before starting the next; a paused trigger’s hook is refused (409)', async () => {
    await create({ name: 'cancel-hook', kind: 'HTTP', overlap: 'CANCEL_PREVIOUS' });
    const first = (await postHook(t, 'cancel-hook', {}, { token: t.app.adminToken })).json;
    const second = (await postHook(t, 'cancel-hook', {}, { token: t.app.adminToken })).json;
    expect(second).toMatchObject({ outcome: 'STARTED' });
    expect(second.message).toContain(`cancelled the previous run ${first.runId}`);
    const { run } = await t.api.gql(`query ($id: ID!) { run(id: $id) { status } }`, { id: first.runId });
    expect(run.status).toBe('CANCELLED');
    await t.api.gql(`mutation { pauseTrigger(id: "cancel-hook") { paused } }`);
    const paused = await postHook(t, 'cancel-hook', {}, { token: t.app.adminToken });
    expect(paused).toMatchObject({ status: 409, json: { error: { code: 'CONFLICT' } } });
    expect(await firings(t, 'cancel-hook')).toHaveLength(2);
  });

  it('10,000 signals at once start at most maxRunsPerMinute runs; every signal is recorded COALESCED or RATE_LIMITED', async () => {
    const { trigger } = await create({ name: 'storm-hook', kind: 'HTTP', maxRunsPerMinute: 3 });
    const db = t.app.services.db;
    await queryRows(
      db,
      sql`insert into signals (type, subject, key, payload) select 'hook.received', ${hookSubject(trigger.id)}, 'storm:' || g, '{}'::jsonb from generate_series(1, 10000) g`,
    );
    const open = async () =>
      (
        await queryRows<{ n: number }>(
          db,
          sql`select (select count(*) from signals where handled_at is null) + (select count(*) from trigger_firings where outcome = 'PENDING') as n`,
        )
      )[0]!.n;
    await until(
      'the storm to be dealt with',
      async () => {
        t.app.services.triggers.kick();
        return Number(await open()) === 0;
      },
      60_000,
    );
    const counts = await queryRows<{ outcome: string; n: number }>(
      db,
      sql`select outcome, count(*)::int as n from trigger_firings where trigger_id = ${trigger.id} group by outcome order by outcome`,
    );
    const by = Object.fromEntries(counts.map((c) => [c.outcome, c.n]));
    expect(by.PENDING ?? 0).toBe(0);
    expect((by.STARTED ?? 0) + (by.COALESCED ?? 0) + (by.RATE_LIMITED ?? 0)).toBe(10_000);
    expect(by.STARTED).toBeGreaterThanOrEqual(1);
    expect(by.STARTED).toBeLessThanOrEqual(3);
    const [runs] = await queryRows<{ n: number }>(db, sql`select count(*)::int as n from runs where idempotency_key like ${`trigger:${trigger.id}:%`}`);
    expect(runs!.n).toBe(by.STARTED);
  });
});
