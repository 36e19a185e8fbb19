// Monitoring under attack: an outsider writing observations about another team's dataset, reading its series,
// monitors and alerts, or acting on its alerts; a viewer changing anything; a team's viewer acting on its alerts;
// and grouping a series by a dimension named like a column the caller may not preview. Refusals are typed, audited
// and write nothing; what the caller may not read is answered exactly as what does not exist.
import { count } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alerts, monitorEvents, monitors, observations } from '../../server/db/tables/monitoring';
import { evaluateDueMonitors } from '../../server/monitoring/evaluator';
import { startTestApp, type TestApp } from '../harness/app';
import type { ApiClient, GqlResult } from '../harness/client';

let t: TestApp;
let alice: ApiClient & { token: string };
let carol: ApiClient & { token: string };
let vera: ApiClient & { token: string };
let dave: ApiClient & { token: string };
let monitor = '';
let alert = '';
const NOBODY = '00000000-0000-4000-8000-000000000000';
const DIGEST = `sha256:${'f'.repeat(64)}`;
const features = { kind: 'DATASET', ref: 'ml/features' };
const code = (r: GqlResult) => r.errors?.[0]?.extensions?.code;
const message = (r: GqlResult) =>
  r.errors?.[0]?.message
    ?.replace(/[0-9a-f-]{36}/g, 'ID')
    .replace('ml/features', 'X')
    .replace('ml/nope', 'X');
const RECORD = `mutation ($o: [ObservationInput!]!) { recordObservations(observations: $o) { recorded } }`;
const SERIES = `query ($t: MonitorTargetInput!, $g: [String!]) { metricSeries(target: $t, metric: "latency", groupBy: $g) { key buckets { count mean } } }`;

async function written() {
  const db = t.app.services.db;
  const n = async (table: any) => (await db.select({ n: count() }).from(table))[0]!.n;
  const states = (await db.select({ state: alerts.state }).from(alerts)).map((a) => a.state);
  return [await n(observations), await n(monitors), await n(monitorEvents), states];
}

async function denials(name: string) {
  const { auditEvents } = await t.api.gql(`{ auditEvents(limit: 1000) { action decision identity { name } } }`);
  return auditEvents.filter((e: any) => e.decision === 'deny' && e.identity?.name === name).length;
}

/** Expects `errorCode`, nothing written, and (for FORBIDDEN) one more audited denial of `who`. */
async function refused(who: string, errorCode: string, attempt: () => Promise<GqlResult>) {
  const before = await written();
  const audited = await denials(who);
  const result = await attempt();
  expect(code(result), JSON.stringify(result.errors)).toBe(errorCode);
  expect(await written()).toEqual(before);
  expect(await denials(who)).toBe(audited + (errorCode === 'FORBIDDEN' ? 1 : 0));
  return result;
}

beforeAll(async () => {
  t = await startTestApp({ ATELIER_MONITOR_EVAL_MS: '3600000' });
  alice = await t.user('alice');
  carol = await t.user('carol');
  dave = await t.user('dave');
  vera = await t.user('vera', 'viewer');
  await t.team('ml', ['alice'], ['ml']);
  await t.team('lab', ['carol'], ['lab']);
  await t.api.gql(`mutation { setTeamMember(team: "ml", identity: "dave", role: viewer) { name } }`);
  await t.api.gql(`mutation ($c: [DatasetColumnInput!]!) { createDataset(name: "ml/features", domain: production, columns: $c, digest: "${DIGEST}") { id } }`, {
    c: [
      { name: 'region', type: 'string', label: { level: 'PUBLIC' } },
      { name: 'email', type: 'string', label: { level: 'RESTRICTED', categories: ['PII'] } },
    ],
  });
  await alice.gql(RECORD, {
    o: [
      { target: features, metric: 'latency', value: 500, dimensions: { email: 'a@x', region: 'eu' } },
      { target: features, metric: 'latency', value: 700, dimensions: { email: 'b@x', region: 'eu' } },
    ],
  });
  const { createMonitor } = await alice.gql(`mutation ($i: MonitorInput!) { createMonitor(input: $i) { id } }`, {
    i: { name: 'latency', target: features, metric: 'latency', rules: [{ kind: 'THRESHOLD', above: 100 }] },
  });
  monitor = createMonitor.id;
  await evaluateDueMonitors(t.app.services.db, { now: new Date(Date.now() + 1000) });
  const { alerts: open } = await alice.gql(`{ alerts(states: [OPEN]) { id } }`);
  alert = open[0].id;
}, 60_000);

afterAll(() => t?.stop());

describe('an outsider', () => {
  it('may not write observations about another team’s target (GraphQL and HTTP)', async () => {
    const r = await refused('carol', 'FORBIDDEN', () => carol.raw(RECORD, { o: [{ target: features, metric: 'latency', value: 1 }] }));
    expect(r.errors?.[0]?.message).toMatch(/observations\.0: you may not write observations about DATASET ml\/features/);
    const before = await denials('carol');
    const res = await fetch(`${t.url}/api/observations`, {
      method: 'POST',
      headers: { authorization: `Bearer ${carol.token}` },
      body: JSON.stringify({ observations: [{ target: features, metric: 'latency', value: 1 }] }),
    });
    expect(res.status).toBe(403);
    expect(await denials('carol')).toBe(before + 1);
  });

  it('reads its series, monitors and alerts exactly as if they did not exist', async () => {
    const pairs: [() => Promise<GqlResult>, () => Promise<GqlResult>][] = [
      [() => carol.raw(SERIES, { t: features }), () => carol.raw(SERIES, { t: { kind: 'DATASET', ref: 'ml/nope' } })],
      [
        () => carol.raw(`query ($t: MonitorTargetInput!) { monitors(target: $t) { id } }`, { t: features }),
        () => carol.raw(`query ($t: MonitorTargetInput!) { monitors(target: $t) { id } }`, { t: { kind: 'DATASET', ref: 'ml/nope' } }),
      ],
      [
        () => carol.raw(`query ($id: ID!) { monitor(id: $id) { id } }`, { id: monitor }),
        () => carol.raw(`query ($id: ID!) { monitor(id: $id) { id } }`, { id: NOBODY }),
      ],
      [
        () => carol.raw(`query ($id: ID!) { alert(id: $id) { id } }`, { id: alert }),
        () => carol.raw(`query ($id: ID!) { alert(id: $id) { id } }`, { id: NOBODY }),
      ],
    ];
    for (const [real, missing] of pairs) {
      const [a, b] = [await real(), await missing()];
      expect(code(a)).toBe('NOT_FOUND');
      expect([code(a), message(a)]).toEqual([code(b), message(b)]);
    }
    expect((await carol.gql(`{ alerts { id } }`)).alerts).toEqual([]);
  });

  it('acts on its alerts and monitors only as on ones that do not exist', async () => {
    for (const m of [
      `mutation ($id: ID!) { acknowledgeAlert(id: $id) { id } }`,
      `mutation ($id: ID!) { resolveAlert(id: $id, reason: "x") { id } }`,
      `mutation ($id: ID!) { rebaselineAlert(id: $id, reason: "x") { id } }`,
    ]) {
      const real = await refused('carol', 'NOT_FOUND', () => carol.raw(m, { id: alert }));
      expect(message(real)).toBe(message(await carol.raw(m, { id: NOBODY })));
    }
    for (const m of [`mutation ($id: ID!) { pauseMonitor(id: $id, paused: true) { id } }`, `mutation ($id: ID!) { deleteMonitor(id: $id) { id } }`]) {
      const real = await refused('carol', 'NOT_FOUND', () => carol.raw(m, { id: monitor }));
      expect(message(real)).toBe(message(await carol.raw(m, { id: NOBODY })));
    }
  });
});

describe('a viewer', () => {
  it('is refused every monitoring change before anything is looked up, audited', async () => {
    const attempts = [
      () => vera.raw(RECORD, { o: [{ target: features, metric: 'latency', value: 1 }] }),
      () =>
        vera.raw(`mutation ($i: MonitorInput!) { createMonitor(input: $i) { id } }`, {
          i: { name: 'x', target: features, metric: 'm', rules: [{ kind: 'THRESHOLD', above: 1 }] },
        }),
      () => vera.raw(`mutation ($id: ID!) { updateMonitor(id: $id, input: { name: "y" }) { id } }`, { id: NOBODY }),
      () => vera.raw(`mutation ($id: ID!) { pauseMonitor(id: $id, paused: true) { id } }`, { id: 'not-an-id' }),
      () => vera.raw(`mutation ($id: ID!) { deleteMonitor(id: $id) { id } }`, { id: monitor }),
      () => vera.raw(`mutation ($id: ID!) { acknowledgeAlert(id: $id) { id } }`, { id: alert }),
      () => vera.raw(`mutation ($id: ID!) { markAlertFalsePositive(id: $id, reason: "x") { id } }`, { id: NOBODY }),
      () => vera.raw(`mutation ($id: ID!) { annotateAlert(id: $id, reason: "x") { id } }`, { id: alert }),
    ];
    for (const attempt of attempts) await refused('vera', 'FORBIDDEN', attempt);
  });

  it('of the owning team reads its alerts but may not act on them', async () => {
    expect((await dave.gql(`query ($id: ID!) { alert(id: $id) { state } }`, { id: alert })).alert.state).toBe('OPEN');
    const r = await refused('dave', 'FORBIDDEN', () => dave.raw(`mutation ($id: ID!) { resolveAlert(id: $id, reason: "mine now") { id } }`, { id: alert }));
    expect(r.errors?.[0]?.message).toMatch(/belongs to team "ml"/);
  });
});

describe('grouping', () => {
  it('is no oracle on a column the caller may not preview', async () => {
    const withheld = await alice.gql(SERIES, { t: features, g: ['email'] });
    const unknown = await alice.gql(SERIES, { t: features, g: ['nobody-sends-this'] });
    expect(withheld.metricSeries.map((g: any) => [Object.values(g.key), g.buckets])).toEqual(
      unknown.metricSeries.map((g: any) => [Object.values(g.key), g.buckets]),
    );
    const readable = await alice.gql(SERIES, { t: features, g: ['region'] });
    expect(readable.metricSeries.map((g: any) => g.key)).toEqual([{ region: 'eu' }]);
  });
});
