// Monitors and alerts end to end on the embedded app, the evaluator driven by calling its pass with a chosen `now`
// (its own loop is slowed down to stay out of the way): N consecutive breaches open one alert per rule, a continuing
// breach updates it, and people's feedback (acknowledge, false positive, annotate, resolve, re-baseline) is recorded,
// audited, sent as alert.* webhooks, and changes what the next evaluations do.
import { and, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signals as signalsTable } from '../../server/db/tables/triggers';
import { webhookDeliveries } from '../../server/db/tables/webhooks';
import { evaluateDueMonitors } from '../../server/monitoring/evaluator';
import { startTestApp, type TestApp } from '../harness/app';
import type { ApiClient } from '../harness/client';

let t: TestApp;
let alice: ApiClient;
let bob: ApiClient;
const DIGEST = `sha256:${'e'.repeat(64)}`;
const features = { kind: 'DATASET', ref: 'ml/features' };
/** Times are relative to a base set just after a monitor is made (a monitor is first due when it is made). */
let t0 = new Date();
const rebase = () => (t0 = new Date(Math.ceil(Date.now() / 1000) * 1000 + 1000));
const at = (seconds: number) => new Date(t0.getTime() + seconds * 1000);
const pass = (seconds: number) => evaluateDueMonitors(t.app.services.db, { now: at(seconds) });
const record = (metric: string, points: [number, number][]) =>
  alice.gql(`mutation ($o: [ObservationInput!]!) { recordObservations(observations: $o) { recorded } }`, {
    o: points.map(([seconds, value]) => ({ target: features, metric, value, at: at(seconds).toISOString() })),
  });
const CREATE = `mutation ($i: MonitorInput!) { createMonitor(input: $i) { id name team { name } target { kind ref } rules { id kind consecutive above } } }`;
const ALERT = `query ($id: ID!) { alert(id: $id) { id state breaches value bound rule title events { kind reason details actor { name } } } }`;
const open = async (monitor: string) =>
  (await alice.gql(`query ($id: ID!) { monitor(id: $id) { alerts(states: [OPEN, ACKNOWLEDGED]) { id state breaches value } } }`, { id: monitor })).monitor
    .alerts;
const sent = async (type: string) =>
  (await t.app.services.db.select().from(webhookDeliveries).where(eq(webhookDeliveries.eventType, type))).map((d) => d.body as any);

beforeAll(async () => {
  t = await startTestApp({ ATELIER_MONITOR_EVAL_MS: '3600000', ATELIER_WEBHOOK_ALLOWLIST: 'http://127.0.0.1:*' });
  alice = await t.user('alice');
  bob = await t.user('bob');
  await t.team('ml', ['alice', 'bob'], ['ml']);
  await t.api.gql(`mutation ($c: [DatasetColumnInput!]!) { createDataset(name: "ml/features", domain: production, columns: $c, digest: "${DIGEST}") { id } }`, {
    c: [{ name: 'region', type: 'string', label: { level: 'PUBLIC' } }],
  });
  await alice.gql(`mutation { createWebhook(team: "ml", url: "http://127.0.0.1:9/hook", events: ["alert.*"]) { webhook { id } } }`);
}, 60_000);

afterAll(() => t?.stop());

describe('threshold monitor', () => {
  let monitor = '';
  let alert = '';

  it('opens one alert after N breaches in a row, and a continuing breach updates it', async () => {
    const { createMonitor } = await alice.gql(CREATE, {
      i: { name: 'latency', target: features, metric: 'latency', rules: [{ id: 'slow', kind: 'THRESHOLD', above: 100, windowSeconds: 300, consecutive: 2 }] },
    });
    monitor = createMonitor.id;
    rebase();
    expect(createMonitor).toMatchObject({ team: { name: 'ml' }, target: features, rules: [{ id: 'slow', kind: 'THRESHOLD', consecutive: 2, above: 100 }] });
    await record('latency', [[-10, 150]]);
    expect(await pass(0)).toEqual({ evaluated: 1, opened: 0 });
    expect(await open(monitor)).toEqual([]);
    expect(await pass(30)).toEqual({ evaluated: 0, opened: 0 }); // not due yet (every 60 s)
    expect(await pass(61)).toEqual({ evaluated: 1, opened: 1 });
    const [first] = await open(monitor);
    expect(first).toMatchObject({ state: 'OPEN', breaches: 1, value: 150 });
    alert = first.id;
    expect(await pass(122)).toEqual({ evaluated: 1, opened: 0 });
    expect(await open(monitor)).toEqual([{ id: alert, state: 'OPEN', breaches: 2, value: 150 }]);
    // The opening is also the trigger signal ALERT_OPENED triggers start runs from (test/triggers covers the firing).
    const signals = await t.app.services.db.select().from(signalsTable).where(eq(signalsTable.type, 'alert.opened'));
    expect(signals.map((x) => [x.subject, x.key, (x.payload as any).alert.rule])).toEqual([[`monitor:${monitor}`, `alert:${alert}`, 'slow']]);
    const [opened] = await sent('alert.opened');
    expect(opened.data).toMatchObject({
      alert: { id: alert, rule: 'slow', state: 'OPEN' },
      monitor: { id: monitor, name: 'latency' },
      target: features,
      actor: null,
    });
  });

  it('records acknowledgement and a false positive, with who and why, and the count starts over', async () => {
    const ack = await bob.gql(`mutation ($id: ID!) { acknowledgeAlert(id: $id) { state } }`, { id: alert });
    expect(ack.acknowledgeAlert.state).toBe('ACKNOWLEDGED');
    const missingWhy = await alice.raw(`mutation ($id: ID!) { markAlertFalsePositive(id: $id, reason: " ") { state } }`, { id: alert });
    expect(missingWhy.errors?.[0]?.message).toMatch(/Say why/);
    await alice.gql(`mutation ($id: ID!) { markAlertFalsePositive(id: $id, reason: "load test traffic") { state } }`, { id: alert });
    const { alert: after } = await alice.gql(ALERT, { id: alert });
    expect(after.state).toBe('FALSE_POSITIVE');
    expect(after.events.map((e: any) => [e.kind, e.actor?.name ?? null, e.reason])).toEqual([
      ['OPENED', null, expect.stringContaining('mean 150 is above 100')],
      ['ACKNOWLEDGED', 'bob', ''],
      ['FALSE_POSITIVE', 'alice', 'load test traffic'],
    ]);
    expect((await sent('alert.acknowledged')).map((b) => b.data.actor.name)).toEqual(['bob']);
    expect((await sent('alert.resolved')).map((b) => [b.data.resolution, b.data.reason])).toEqual([['FALSE_POSITIVE', 'load test traffic']]);
    const closedAgain = await alice.raw(`mutation ($id: ID!) { resolveAlert(id: $id, reason: "x") { state } }`, { id: alert });
    expect(closedAgain.errors?.[0]?.extensions?.code).toBe('CONFLICT');
    // Still breaching: a new alert needs two breaches in a row again.
    expect(await pass(183)).toEqual({ evaluated: 1, opened: 0 });
    expect(await pass(244)).toEqual({ evaluated: 1, opened: 1 });
    const { auditEvents } = await t.api.gql(`{ auditEvents(limit: 1000) { action decision identity { name } } }`);
    expect(auditEvents.filter((e: any) => e.action === 'alert.falsePositive' && e.decision === 'allow').map((e: any) => e.identity.name)).toEqual(['alice']);
  });

  it('pauses, changes and deletes a monitor, each in its history; deleting resolves its open alert', async () => {
    await alice.gql(`mutation ($id: ID!) { pauseMonitor(id: $id, paused: true, reason: "maintenance") { paused } }`, { id: monitor });
    expect(await pass(400)).toEqual({ evaluated: 0, opened: 0 });
    await alice.gql(`mutation ($id: ID!) { pauseMonitor(id: $id, paused: false) { paused } }`, { id: monitor });
    const { updateMonitor } = await bob.gql(`mutation ($id: ID!, $i: MonitorChangeInput!) { updateMonitor(id: $id, input: $i) { rules { id above } } }`, {
      id: monitor,
      i: { rules: [{ id: 'slow', kind: 'THRESHOLD', above: 200, windowSeconds: 300 }], reason: 'raise the bound' },
    });
    expect(updateMonitor.rules).toEqual([{ id: 'slow', above: 200 }]);
    await alice.gql(`mutation ($id: ID!) { deleteMonitor(id: $id, reason: "replaced") { id } }`, { id: monitor });
    const gone = await alice.raw(`query ($id: ID!) { monitor(id: $id) { id } }`, { id: monitor });
    expect(gone.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    const { alerts } = await alice.gql(`{ alerts { state monitor { id } } }`);
    expect(alerts.filter((a: any) => a.state === 'OPEN' || a.state === 'ACKNOWLEDGED')).toEqual([]);
    const { monitorEvents } = { monitorEvents: await t.app.services.db.query.monitorEvents.findMany({ where: (e) => and(eq(e.monitorId, monitor)) }) };
    expect(monitorEvents.map((e) => e.kind)).toEqual([
      'CREATED',
      'OPENED',
      'ACKNOWLEDGED',
      'FALSE_POSITIVE',
      'OPENED',
      'PAUSED',
      'RESUMED',
      'UPDATED',
      'DELETED',
    ]);
  });
});

describe('regression against a trailing baseline', () => {
  it('leaves annotated windows out of the baseline, and a re-baseline sets the baseline from now on', async () => {
    const rules = [{ id: 'drop', kind: 'REGRESSION', baseline: 'TRAILING', windowSeconds: 300, trailingSeconds: 3600, maxDrop: 0.1 }];
    const { createMonitor } = await alice.gql(CREATE, { i: { name: 'accuracy', target: features, metric: 'accuracy', rules } });
    const monitor = createMonitor.id;
    rebase();
    await record('accuracy', [
      [-1200, 0.9],
      [-60, 0.5],
    ]);
    // 0.5 against 0.9: a 44 % drop.
    await pass(0);
    const [dip] = await open(monitor);
    expect(dip.value).toBe(0.5);
    await alice.gql(`mutation ($id: ID!, $f: DateTime, $t: DateTime) { annotateAlert(id: $id, from: $f, to: $t, reason: "upstream outage") { state } }`, {
      id: dip.id,
      f: at(-120).toISOString(),
      t: at(0).toISOString(),
    });
    await alice.gql(`mutation ($id: ID!) { resolveAlert(id: $id, reason: "outage over") { state } }`, { id: dip.id });
    // Later, 0.78: against 0.9 (the dip left out) that is a 13 % drop; with the dip counted (0.7) it would pass.
    await record('accuracy', [[240, 0.78]]);
    await pass(360);
    const [later] = await open(monitor);
    expect(later).toMatchObject({ value: 0.78, breaches: 1 });
    const { alert } = await alice.gql(ALERT, { id: later.id });
    expect(alert.bound).toBeCloseTo(0.81);
    const rebased = await alice.gql(`mutation ($id: ID!) { rebaselineAlert(id: $id, reason: "new feature source: lasting") { state } }`, { id: later.id });
    expect(rebased.rebaselineAlert.state).toBe('RESOLVED');
    await pass(421);
    expect(await open(monitor)).toEqual([]);
    const { monitor: m } = await alice.gql(`query ($id: ID!) { monitor(id: $id) { state history { kind reason details } } }`, { id: monitor });
    expect(m.state.drop.baseline.value).toBe(0.78);
    expect(m.history.map((e: any) => e.kind)).toEqual(['REBASELINED', 'OPENED', 'RESOLVED', 'ANNOTATED', 'OPENED', 'CREATED']);
    expect(m.history[0].details).toMatchObject({ rule: 'drop', baseline: 0.78, previous: 0.9 });
    expect(m.history[3].details).toEqual({ from: at(-120).toISOString(), to: at(0).toISOString() });
  });

  it('refuses rules that cannot work, naming what to do', async () => {
    const bad = async (rules: unknown[], message: RegExp) => {
      const r = await alice.raw(CREATE, { i: { name: 'bad', target: features, metric: 'accuracy', rules } });
      expect(r.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
      expect(r.errors?.[0]?.message).toMatch(message);
    };
    await bad([{ kind: 'REGRESSION', baseline: 'EVALUATION', maxDrop: 0.1 }], /EVALUATION baseline needs a model version or alias target/);
    await bad([{ kind: 'THRESHOLD' }], /needs above, below or both/);
    const threshold = await alice.gql(CREATE, { i: { name: 'floor', target: features, metric: 'accuracy', rules: [{ kind: 'THRESHOLD', below: 0.95 }] } });
    await pass(500);
    const [alert] = await open(threshold.createMonitor.id);
    const r = await alice.raw(`mutation ($id: ID!) { rebaselineAlert(id: $id, reason: "x") { state } }`, { id: alert.id });
    expect(r.errors?.[0]?.message).toMatch(/not about a rule with a baseline/);
  });
});
