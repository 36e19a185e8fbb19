// A monitor's actions end to end on the embedded app: a regression alert's opening starts the retraining run once
// (idempotency key `alert:ID`, acting for the monitor's team) and rolls an alias back (in the alias's history, as
// the monitor's creator); a monitor whose owner lacks the grant gets an audited refusal recorded on the alert.
// The evaluator and the action worker are driven by calling their passes (their own loops slowed down).
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alertActions } from '../../server/db/tables/monitoring';
import { runs } from '../../server/db/tables/runs';
import { runAlertActions } from '../../server/monitoring/actions';
import { evaluateDueMonitors } from '../../server/monitoring/evaluator';
import { startTestApp, type TestApp } from '../harness/app';
import type { ApiClient } from '../harness/client';
import { REGISTER, runToEnd, setUpRegistryWorld } from '../registry/setup';

let t: TestApp;
let alice: ApiClient;
let carol: ApiClient;
let t0 = new Date();
const pass = (seconds: number) => evaluateDueMonitors(t.app.services.db, { now: new Date(t0.getTime() + seconds * 1000) });
const act = () => runAlertActions(t.app.services.db, t.app.services.orchestrator);
const CREATE = `mutation ($i: MonitorInput!) { createMonitor(input: $i) { id actions { kind workflow parameters model alias } } }`;
const ALERTS = `query ($id: ID!) { monitor(id: $id) { alerts { id actions { kind status runId message } events { kind reason details } } } }`;
const HISTORY = `{ model(name: "ml/churn") { aliasHistory { alias action movedBy { name } reason from { version } to { version } } aliases { alias version { version } } } }`;
const record = (api: ApiClient, target: unknown, metric: string, value: number) =>
  api.gql(`mutation ($o: [ObservationInput!]!) { recordObservations(observations: $o) { recorded } }`, {
    o: [{ target, metric, value, at: new Date(t0.getTime() - 5000).toISOString() }],
  });

beforeAll(async () => {
  t = await startTestApp({ ATELIER_MONITOR_EVAL_MS: '3600000' });
  ({ alice, carol } = await setUpRegistryWorld(t));
  for (const seed of [1, 2]) {
    const run = await runToEnd(t, 'train', { seed });
    await t.api.gql(REGISTER, { m: 'ml/churn', t: run.task.train!.id, o: 'model' });
  }
  for (const version of ['1', '2'])
    await alice.gql(`mutation { setModelAlias(model: "ml/churn", alias: "challenger", version: "${version}") { version { version } } }`);
  await t.api.gql(
    `mutation { createDataset(name: "lab/events", domain: experimentation, columns: [{ name: "kind", type: "string" }], digest: "sha256:${'f'.repeat(64)}") { id } }`,
  );
}, 120_000);
afterAll(() => t?.stop());

describe('monitor actions', () => {
  let monitor = '';

  it('are checked when the monitor is made', async () => {
    const bad = await alice.raw(CREATE, {
      i: {
        name: 'x',
        target: { kind: 'DATASET', ref: 'lab/events' },
        metric: 'm',
        rules: [{ kind: 'THRESHOLD', above: 1 }],
        actions: [{ kind: 'ROLLBACK_ALIAS' }],
      },
    });
    expect(bad.errors?.[0]?.message).toBe('actions.0: ROLLBACK_ALIAS needs model (namespace/name) and alias (e.g. champion).');
  });

  it('a regression alert starts the retraining run once and rolls the alias back, in its history', async () => {
    const target = { kind: 'MODEL_VERSION', ref: 'ml/churn@2' };
    const { createMonitor } = await alice.gql(CREATE, {
      i: {
        name: 'churn accuracy',
        target,
        metric: 'accuracy',
        rules: [{ id: 'acc', kind: 'REGRESSION', baseline: 'EVALUATION', maxDrop: 0.05 }],
        actions: [
          { kind: 'NOTIFY' },
          { kind: 'START_WORKFLOW', workflow: 'train', parameters: { seed: 7 } },
          { kind: 'ROLLBACK_ALIAS', model: 'ml/churn', alias: 'challenger' },
        ],
      },
    });
    monitor = createMonitor.id;
    t0 = new Date(Date.now() + 1000);
    expect(createMonitor.actions).toEqual([
      { kind: 'NOTIFY', workflow: null, parameters: null, model: null, alias: null },
      { kind: 'START_WORKFLOW', workflow: 'train', parameters: { seed: 7 }, model: null, alias: null },
      { kind: 'ROLLBACK_ALIAS', workflow: null, parameters: null, model: 'ml/churn', alias: 'challenger' },
    ]);
    await record(alice, target, 'accuracy', 0.7);
    expect(await pass(0)).toEqual({ evaluated: 1, opened: 1 });
    expect(await act()).toBe(2);
    expect(await act()).toBe(0); // done once
    const [alert] = (await alice.gql(ALERTS, { id: monitor })).monitor.alerts;
    const [start, rollback] = alert.actions;
    expect(start).toMatchObject({ kind: 'START_WORKFLOW', status: 'DONE', runId: expect.any(String) });
    expect(rollback).toMatchObject({ kind: 'ROLLBACK_ALIAS', status: 'DONE', message: 'rolled ml/churn alias "challenger" back from version 2 to 1' });
    expect(alert.events.filter((e: any) => e.kind === 'ACTION').map((e: any) => e.details.status)).toEqual(['DONE', 'DONE']);
    const [run] = await t.app.services.db.select().from(runs).where(eq(runs.id, start.runId));
    expect(run).toMatchObject({ idempotencyKey: `alert:${alert.id}`, trigger: 'EVENT', createdBy: null, parameters: { seed: 7 } });
    const { model } = await alice.gql(HISTORY);
    expect(model.aliasHistory[0]).toEqual({
      alias: 'challenger',
      action: 'rollback',
      movedBy: { name: 'alice' },
      reason: expect.stringMatching(/^monitor "churn accuracy", alert /),
      from: { version: 2 },
      to: { version: 1 },
    });
    expect(model.aliases).toContainEqual({ alias: 'challenger', version: { version: 1 } });
    // A crash after the run started but before its record: carried out again, it finds the same run.
    await t.app.services.db.update(alertActions).set({ status: 'PENDING', runId: null }).where(eq(alertActions.runId, start.runId));
    expect(await act()).toBe(1);
    const again = (await alice.gql(ALERTS, { id: monitor })).monitor.alerts[0].actions[0];
    expect(again).toMatchObject({ status: 'DONE', runId: start.runId });
    expect(
      (
        await t.app.services.db
          .select()
          .from(runs)
          .where(eq(runs.idempotencyKey, `alert:${alert.id}`))
      ).length,
    ).toBe(1);
    // A continuing breach updates the alert: no second run, no second rollback.
    await record(alice, target, 'accuracy', 0.6);
    expect(await pass(61)).toEqual({ evaluated: 1, opened: 0 });
    expect(await act()).toBe(0);
  });

  it('an owner without the grant gets an audited refusal, recorded on the alert; the alias stays', async () => {
    const target = { kind: 'DATASET', ref: 'lab/events' };
    const { createMonitor } = await carol.gql(CREATE, {
      i: {
        name: 'lab errors',
        target,
        metric: 'errors',
        rules: [{ kind: 'THRESHOLD', above: 1 }],
        actions: [{ kind: 'ROLLBACK_ALIAS', model: 'ml/churn', alias: 'challenger' }],
      },
    });
    t0 = new Date(Date.now() + 1000);
    await record(carol, target, 'errors', 5);
    expect(await pass(200)).toMatchObject({ opened: 1 });
    expect(await act()).toBe(1);
    const [alert] = (await carol.gql(ALERTS, { id: createMonitor.id })).monitor.alerts;
    expect(alert.actions).toEqual([{ kind: 'ROLLBACK_ALIAS', status: 'REFUSED', runId: null, message: expect.stringMatching(/^the rollback was not done: /) }]);
    const event = alert.events.find((e: any) => e.kind === 'ACTION');
    expect(event).toMatchObject({ reason: alert.actions[0].message, details: { status: 'REFUSED' } });
    const { auditEvents } = await t.api.gql(`{ auditEvents(limit: 50) { action decision identity { name } subject } }`);
    expect(auditEvents).toContainEqual({ action: 'model.alias.rollback', decision: 'deny', identity: { name: 'carol' }, subject: 'model:ml/churn' });
    const { model } = await alice.gql(HISTORY);
    expect(model.aliases).toContainEqual({ alias: 'challenger', version: { version: 1 } });
  });
});
