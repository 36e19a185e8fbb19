// GET /metrics on the real app over HTTP: who may read it, counters and histograms moving by exactly what a run did,
// the database gauges matching a known state, labels that stay bounded whatever users name, and GET /health/ready.
import { createClient } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import { startTestApp, type TestApp } from '../harness/app';
import { RUN_EVENTS } from '../harness/client';
import { type Exposition, parseExposition } from './exposition';

const START = `mutation ($w: String!, $p: JSON) { startRun(workflow: $w, parameters: $p) { id status } }`;
const CANCEL = `mutation ($id: ID!) { cancelRun(id: $id) { id status } }`;
const SERVICE = `mutation ($n: String!, $s: [String!]) { createServiceAccount(name: $n, scopes: $s) { token } }`;
const ended = (e: any) => e.runEvents.__typename === 'RunStatusEvent' && ['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(e.runEvents.runStatus);
const UNTIL = { timeout: 15_000, interval: 50 };

describe('GET /metrics', () => {
  let t: TestApp;
  let scraper: string;
  beforeAll(async () => {
    // The database gauges are read again every 100 ms rather than every 5 s: the tests watch them change.
    t = await startTestApp({}, { waits: { databaseGaugesTtlMs: 100 } });
    await t.publishFixture('echo');
    scraper = (await t.api.gql(SERVICE, { n: 'prometheus', s: ['read:Metrics'] })).createServiceAccount.token;
  });
  afterAll(() => t?.stop());

  const get = (path: string, token?: string | null) => fetch(`${t.url}${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  const scrape = async (): Promise<Exposition> => {
    const res = await get('/metrics', scraper);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    return parseExposition(await res.text());
  };
  const runToEnd = async (workflow: string, parameters?: object) => {
    const { startRun } = await t.api.gql(START, { w: workflow, p: parameters ?? null });
    await t.api.subscribe(RUN_EVENTS, { runId: startRun.id }, ended);
    return startRun.id as string;
  };

  it('answers the admin token and service tokens scoped read:Metrics, and refuses anything else saying what to send', async () => {
    expect((await get('/metrics', t.app.adminToken)).status).toBe(200);
    expect((await get('/metrics', scraper)).status).toBe(200);
    const none = await get('/metrics');
    expect(none.status).toBe(401);
    expect((await none.json()).error).toMatchObject({ code: 'UNAUTHENTICATED', message: expect.stringContaining('read:Metrics') });
    const user = await t.user('olga');
    const unscopedService = (await t.api.gql(SERVICE, { n: 'ci-everything', s: null })).createServiceAccount.token;
    const otherScope = (await t.api.gql(SERVICE, { n: 'ci-runs', s: ['read:Run', 'start:Run'] })).createServiceAccount.token;
    for (const token of [user.token, unscopedService, otherScope]) {
      const res = await get('/metrics', token);
      expect(res.status).toBe(403);
      const body = await res.json();
      expect(body.error.code).toBe('FORBIDDEN');
      expect(body.error.message).toContain('read:Metrics');
    }
  });

  it('exposes every metric with the atelier_ prefix and a help text, and the default process metrics', async () => {
    const m = await scrape();
    for (const name of [
      'atelier_http_requests_total',
      'atelier_http_request_duration_seconds',
      'atelier_graphql_operations_total',
      'atelier_graphql_errors_total',
      'atelier_subscriptions_open',
      'atelier_tasks_dispatched_total',
      'atelier_task_dispatch_delay_seconds',
      'atelier_task_edge_delay_seconds',
      'atelier_task_attempts_ended_total',
      'atelier_cache_hits_total',
      'atelier_cache_saved_seconds_total',
      'atelier_bus_redeliveries_total',
      'atelier_runs',
      'atelier_tasks_queued',
      'atelier_tasks_running',
      'atelier_oldest_queued_task_age_seconds',
      'atelier_executor_hosts_alive',
      'atelier_alerts_open',
      'atelier_nodejs_eventloop_lag_seconds',
      'atelier_process_cpu_seconds_total',
    ])
      expect(m.help.get(name), name).toBeTruthy();
    for (const name of m.help.keys()) expect(name).toMatch(/^atelier_/);
    expect(m.help.get('atelier_runs')).toContain('same on every replica');
  });

  it('counts a run: its tasks dispatched and ended, the delays observed, its operations; a second run from the cache', async () => {
    await t.createWorkflow({
      name: 'chain',
      tasks: [
        { name: 'a', module: 'test/echo' },
        { name: 'b', module: 'test/echo', dependsOn: ['a'] },
        { name: 'c', module: 'test/echo', dependsOn: ['b'] },
      ],
    });
    const before = await scrape();
    const delta = (m: Exposition, name: string, labels?: Record<string, string>) => m.value(name, labels) - before.value(name, labels);
    await runToEnd('chain');
    let after = before;
    // The last task's end is counted once its transaction commits, which the run's end event follows at once.
    await vi.waitFor(async () => {
      after = await scrape();
      expect(delta(after, 'atelier_task_attempts_ended_total', { status: 'SUCCEEDED' })).toBe(3);
      expect(delta(after, 'atelier_http_requests_total', { route: 'graphql', status: '2xx' })).toBe(1);
    }, UNTIL);
    expect(delta(after, 'atelier_tasks_dispatched_total', { pool: 'local' })).toBe(3);
    expect(delta(after, 'atelier_task_dispatch_delay_seconds_count')).toBe(3);
    expect(delta(after, 'atelier_task_dispatch_delay_seconds_bucket', { le: '+Inf' })).toBe(3);
    // b after a, c after b: two edges.
    expect(delta(after, 'atelier_task_edge_delay_seconds_count')).toBe(2);
    expect(delta(after, 'atelier_graphql_operations_total', { type: 'mutation' })).toBe(1);
    expect(delta(after, 'atelier_graphql_operations_total', { type: 'subscription' })).toBe(1);
    expect(delta(after, 'atelier_graphql_operations_total', { type: 'query' })).toBe(0);
    expect(delta(after, 'atelier_cache_hits_total')).toBe(0);
    // The metrics route counts itself (the scrapes before this one).
    expect(delta(after, 'atelier_http_requests_total', { route: 'metrics', status: '2xx' })).toBeGreaterThan(0);

    // The same run again: every task from the cache, nothing dispatched, no attempt.
    await runToEnd('chain');
    const cached = await scrape();
    const more = (name: string, labels?: Record<string, string>) => cached.value(name, labels) - after.value(name, labels);
    expect(more('atelier_cache_hits_total')).toBe(3);
    expect(more('atelier_cache_saved_seconds_total')).toBeGreaterThan(0);
    expect(more('atelier_tasks_dispatched_total', { pool: 'local' })).toBe(0);
    expect(more('atelier_task_attempts_ended_total', { status: 'SUCCEEDED' })).toBe(0);
  });

  it('counts GraphQL errors by code, validation failures included', async () => {
    const before = await scrape();
    await t.api.raw(`query { noSuchField }`);
    await t.api.raw(CANCEL, { id: '00000000-0000-4000-8000-000000000000' });
    await vi.waitFor(async () => {
      const m = await scrape();
      expect(
        m.value('atelier_graphql_errors_total', { code: 'GRAPHQL_VALIDATION_FAILED' }) -
          before.value('atelier_graphql_errors_total', { code: 'GRAPHQL_VALIDATION_FAILED' }),
      ).toBe(1);
      expect(m.value('atelier_graphql_errors_total', { code: 'NOT_FOUND' }) - before.value('atelier_graphql_errors_total', { code: 'NOT_FOUND' })).toBe(1);
    }, UNTIL);
  });

  it('reads the queue from the database: a task on a pool no host serves waits, and ages', async () => {
    await t.createWorkflow({
      name: 'stranded',
      tasks: [{ name: 'x', module: 'test/echo', pool: 'nowhere', parameters: { message: 'never run from the cache' } }],
    });
    const { startRun } = await t.api.gql(START, { w: 'stranded' });
    // A subscriber watching it holds a slot, gauged while it is open.
    const ws = createClient({
      url: `${t.url.replace(/^http/, 'ws')}/graphql`,
      webSocketImpl: WebSocket,
      connectionParams: { authorization: `Bearer ${t.app.adminToken}` },
      retryAttempts: 0,
    });
    const watching = ws.subscribe({ query: RUN_EVENTS, variables: { runId: startRun.id } }, { next: () => {}, error: () => {}, complete: () => {} });
    try {
      await vi.waitFor(async () => expect((await scrape()).value('atelier_subscriptions_open')).toBe(1), UNTIL);
      await vi.waitFor(async () => {
        const m = await scrape();
        expect(m.value('atelier_tasks_queued', { pool: 'nowhere', status: 'QUEUED' })).toBe(1);
        expect(m.value('atelier_oldest_queued_task_age_seconds', { pool: 'nowhere' })).toBeGreaterThan(0);
        expect(m.value('atelier_runs', { status: 'QUEUED' }) + m.value('atelier_runs', { status: 'RUNNING' })).toBe(1);
        expect(m.series('atelier_tasks_running').filter((l) => l.pool === 'nowhere')).toEqual([]);
        expect(m.value('atelier_executor_hosts_alive', { executor: 'local' })).toBe(1);
        expect(m.value('atelier_alerts_open', { state: 'OPEN' })).toBe(0);
      }, UNTIL);
    } finally {
      watching();
      await ws.dispose();
      await t.api.gql(CANCEL, { id: startRun.id });
    }
    await vi.waitFor(async () => {
      const m = await scrape();
      expect(m.value('atelier_subscriptions_open')).toBe(0);
      expect(m.value('atelier_tasks_queued', { pool: 'nowhere', status: 'QUEUED' })).toBe(0);
      expect(m.value('atelier_runs', { status: 'QUEUED' }) + m.value('atelier_runs', { status: 'RUNNING' })).toBe(0);
    }, UNTIL);
  });

  it('keeps labels bounded: workflows of many names and their runs add no series', async () => {
    const seriesOf = (m: Exposition) => [...m.samples.keys()].filter((k) => k.startsWith('atelier_') && !/^atelier_(nodejs|process)_/.test(k)).sort();
    const runIds: string[] = [];
    const probe = async (i: number) => {
      const name = `metrics-label-probe-${i}`;
      await t.createWorkflow({ name, tasks: [{ name: `node-${i}`, module: 'test/echo', parameters: { message: name } }] });
      runIds.push(await runToEnd(name));
    };
    // The first probes may still add series of their own kind (a status class, a histogram's first observation):
    // compared after them, three more differently named workflows must add none.
    for (let i = 0; i < 3; i++) await probe(i);
    const before = seriesOf(await scrape());
    for (let i = 3; i < 6; i++) await probe(i);
    const text = await (await get('/metrics', scraper)).text();
    for (const needle of ['metrics-label-probe', 'node-', ...runIds, 'prometheus', 'olga']) expect(text).not.toContain(needle);
    expect(seriesOf(parseExposition(text))).toEqual(before);
  });
});

describe('GET /health/ready and ATELIER_METRICS_PUBLIC', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ ATELIER_METRICS_PUBLIC: '1' });
  });
  afterAll(() => t?.stop());

  it('answers ready once started, beside /health as it was', async () => {
    const ready = await fetch(`${t.url}/health/ready`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready' });
    const health = await fetch(`${t.url}/health`);
    expect(await health.json()).toEqual({ status: 'ok', database: t.databaseUrl ? 'postgres' : 'pglite', bus: 'memory' });
  });

  it('answers /metrics without a token when the operator opened it', async () => {
    const res = await fetch(`${t.url}/metrics`);
    expect(res.status).toBe(200);
    expect(parseExposition(await res.text()).help.has('atelier_runs')).toBe(true);
  });

  it('answers not ready, with the reason, once the app is stopping', async () => {
    // Unready from the moment it is told to stop; once its drain has begun, refused like every request (503 too).
    const stopping = t.app.stop();
    const res = await fetch(`${t.url}/health/ready`).catch(() => undefined);
    if (res) {
      expect(res.status).toBe(503);
      expect(await res.text()).toMatch(/shutting down/);
    }
    await stopping;
  });
});
