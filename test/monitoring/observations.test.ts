// Metric streams: observations written in batches through GraphQL and `POST /api/observations` (one write path),
// bad batches refused whole and naming the index, and series per dimension group and time bucket.
import { count } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { observations } from '../../server/db/tables/monitoring';
import { startTestApp, type TestApp } from '../harness/app';
import { type ApiClient, apiClient } from '../harness/client';

let t: TestApp;
let alice: ApiClient & { token: string };
let botToken = '';
const DIGEST = `sha256:${'d'.repeat(64)}`;
const RECORD = `mutation ($o: [ObservationInput!]!) { recordObservations(observations: $o) { recorded } }`;
const SERIES = `query ($t: MonitorTargetInput!, $m: String!, $g: [String!], $s: DateTime, $b: Int) {
  metricSeries(target: $t, metric: $m, groupBy: $g, since: $s, bucketSeconds: $b) { key buckets { at count mean min max last } } }`;
const features = { kind: 'DATASET', ref: 'ml/features' };
const stored = async () => (await t.app.services.db.select({ n: count() }).from(observations))[0]!.n;
const base = Date.parse('2026-01-01T00:00:00Z');
const hourAgo = () => new Date(Math.floor((Date.now() - 3_600_000) / 3_600_000) * 3_600_000);

async function post(token: string, body: string) {
  const res = await fetch(`${t.url}/api/observations`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body,
  });
  return { status: res.status, body: (await res.json()) as any };
}

beforeAll(async () => {
  t = await startTestApp();
  alice = await t.user('alice');
  await t.team('ml', ['alice'], ['ml']);
  await t.api.gql(`mutation ($c: [DatasetColumnInput!]!) { createDataset(name: "ml/features", domain: production, columns: $c, digest: "${DIGEST}") { id } }`, {
    c: [
      { name: 'region', type: 'string', label: { level: 'PUBLIC' } },
      { name: 'email', type: 'string', label: { level: 'RESTRICTED', categories: ['PII'] } },
    ],
  });
  const bot = await t.api.gql(`mutation { createServiceAccount(name: "ml-bot", owner: "alice") { token } }`);
  botToken = bot.createServiceAccount.token;
  await t.api.gql(`mutation { setTeamMember(team: "ml", identity: "ml-bot", role: member) { name } }`);
  void base;
}, 60_000);

afterAll(() => t?.stop());

describe('recording', () => {
  it('records a batch through GraphQL and through HTTP, and series aggregate it per group and bucket', async () => {
    const start = hourAgo();
    const at = (minutes: number) => new Date(start.getTime() + minutes * 60_000).toISOString();
    const { recordObservations } = await alice.gql(RECORD, {
      o: [
        { target: features, metric: 'latency', value: 10, at: at(1), dimensions: { region: 'eu', email: 'a@x' } },
        { target: features, metric: 'latency', value: 30, at: at(2), dimensions: { region: 'eu', email: 'b@x' } },
        { target: features, metric: 'latency', value: 5, at: at(3), dimensions: { region: 'us', email: 'a@x' } },
      ],
    });
    expect(recordObservations.recorded).toBe(3);
    const http = await post(
      botToken,
      JSON.stringify({ observations: [{ target: features, metric: 'latency', value: 20, at: at(4), dimensions: { region: 'eu', tier: 1 } }] }),
    );
    expect(http).toEqual({ status: 200, body: { recorded: 1 } });

    const { metricSeries } = await alice.gql(SERIES, { t: features, m: 'latency', g: ['region'], s: start.toISOString(), b: 3600 });
    expect(metricSeries).toEqual([
      { key: { region: 'eu' }, buckets: [{ at: start.toISOString(), count: 3, mean: 20, min: 10, max: 30, last: 20 }] },
      { key: { region: 'us' }, buckets: [{ at: start.toISOString(), count: 1, mean: 5, min: 5, max: 5, last: 5 }] },
    ]);
    const all = await alice.gql(SERIES, { t: features, m: 'latency', s: start.toISOString(), b: 3600 });
    expect(all.metricSeries).toEqual([{ key: {}, buckets: [{ at: start.toISOString(), count: 4, mean: 16.25, min: 5, max: 30, last: 20 }] }]);
  });

  it('answers a dimension named like a column the caller may not preview as one nobody sent', async () => {
    const since = hourAgo().toISOString();
    const withheld = await alice.gql(SERIES, { t: features, m: 'latency', g: ['email'], s: since });
    const unknown = await alice.gql(SERIES, { t: features, m: 'latency', g: ['nosuch'], s: since });
    expect(withheld.metricSeries.map((g: any) => g.buckets)).toEqual(unknown.metricSeries.map((g: any) => g.buckets));
    expect(withheld.metricSeries).toHaveLength(1);
    expect(withheld.metricSeries[0].key).toEqual({ email: null });
    // The admin's clearance reads the column: the same request shows its values.
    const admin = await t.api.gql(SERIES, { t: features, m: 'latency', g: ['email'], s: since });
    expect(admin.metricSeries.map((g: any) => g.key.email).sort()).toEqual(['a@x', 'b@x', null]);
  });
});

describe('bad input', () => {
  const one = (extra: object) => ({ target: features, metric: 'latency', value: 1, ...extra });
  const cases: [string, unknown[], RegExp][] = [
    ['an unknown target', [one({}), one({ target: { kind: 'DATASET', ref: 'ml/nope' } })], /observations\.1\.target: no DATASET "ml\/nope"/],
    ['a version ref without a number', [one({ target: { kind: 'MODEL_VERSION', ref: 'ml/churn@champion' } })], /observations\.0\.target: no MODEL_VERSION/],
    ['a time far in the future', [one({ at: new Date(Date.now() + 3_600_000).toISOString() })], /observations\.0\.at .* more than 5 minutes in the future/],
    ['an absurdly old time', [one({ at: '1999-01-01T00:00:00Z' })], /observations\.0\.at .* more than a year old/],
    [
      'too many dimensions',
      [one({ dimensions: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`d${i}`, 'x'])) })],
      /observations\.0\.dimensions has 17 entries; at most 16/,
    ],
    ['a long dimension value', [one({ dimensions: { region: 'x'.repeat(300) } })], /observations\.0\.dimensions\.region is longer than 256/],
    ['a bad dimension name', [one({ dimensions: { 'bad key': 'x' } })], /"bad key" is not a dimension name/],
    ['a bad metric name', [one({ metric: 'no spaces' })], /observations\.0\.metric must be/],
  ];
  for (const [what, batch, message] of cases) {
    it(`refuses ${what}, writing nothing`, async () => {
      const before = await stored();
      const r = await alice.raw(RECORD, { o: batch });
      expect(r.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
      expect(r.errors?.[0]?.message).toMatch(message);
      expect(await stored()).toBe(before);
    });
  }

  it('refuses ±Infinity and NaN over HTTP, and a batch over 10,000', async () => {
    const before = await stored();
    const inf = await post(
      alice.token,
      `{"observations":[{"target":{"kind":"DATASET","ref":"ml/features"},"metric":"m","value":1},{"target":{"kind":"DATASET","ref":"ml/features"},"metric":"m","value":-1e999}]}`,
    );
    expect(inf.status).toBe(400);
    expect(inf.body.error.message).toMatch(/observations\.1\.value must be a finite number \(got -Infinity\)/);
    const nan = await post(alice.token, JSON.stringify({ observations: [one({ value: 'NaN' })] }));
    expect(nan.body.error.message).toMatch(/observations\.0\.value must be a finite number/);
    const big = await post(alice.token, JSON.stringify({ observations: Array.from({ length: 10_001 }, () => one({})) }));
    expect(big).toMatchObject({ status: 400, body: { error: { code: 'BAD_USER_INPUT' } } });
    expect(big.body.error.message).toMatch(/at most 10000 observations \(got 10001\)/);
    expect((await post(alice.token, 'not json')).status).toBe(400);
    expect((await post('nope', '{}')).status).toBe(401);
    // The limits every edge keeps: a NUL (which Postgres cannot store) or JSON nested past 64 levels, named where.
    const nul = await post(alice.token, JSON.stringify({ observations: [one({ dimensions: { region: 'eu\u0000west' } })] }));
    expect(nul).toMatchObject({ status: 400, body: { error: { code: 'BAD_USER_INPUT' } } });
    expect(nul.body.error.message).toMatch(/holds a NUL character .* at The request body\.observations\.0\.dimensions\.region/);
    let deep: unknown = 1;
    for (let i = 0; i < 100; i++) deep = { d: deep };
    const nested = await post(alice.token, JSON.stringify({ observations: [one({ dimensions: deep })] }));
    expect(nested).toMatchObject({ status: 400, body: { error: { code: 'BAD_USER_INPUT' } } });
    expect(nested.body.error.message).toMatch(/nests deeper than 64 levels/);
    expect(await stored()).toBe(before);
  });

  it('takes a full batch of 10,000 in one request', async () => {
    const before = await stored();
    const batch = Array.from({ length: 10_000 }, (_, i) => one({ metric: 'bulk', value: i, dimensions: { shard: String(i % 3), region: 'eu', tier: 'a' } }));
    expect(await post(botToken, JSON.stringify({ observations: batch }))).toEqual({ status: 200, body: { recorded: 10_000 } });
    expect(await stored()).toBe(before + 10_000);
    void apiClient;
  });
});
