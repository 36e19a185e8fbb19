// Subscriptions against the real server, as a client that goes away would use them (issue 14, stall 1): every
// subscription a closed socket, a completed operation or an aborted SSE request leaves behind is released at once
// (its feed listener, its access re-check timer, its slot), so churn leaves nothing running; and each token and
// the server as a whole may hold only so many at once, refused with a typed error that names the limit.
import { performance } from 'node:perf_hooks';
import { type Client, createClient } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startTestApp, type TestApp } from '../harness/app';
import type { ApiClient } from '../harness/client';

const ALL = 'subscription { allRunEvents { __typename } }';
const ONE = 'subscription ($id: ID!) { runEvents(runId: $id) { __typename } }';

let current: TestApp | undefined; // whose counters a timeout reports
// A deadline for things that must happen, not a speed claim: generous, since 300 subscriptions open and close on a
// 2-core machine that is running another test file beside this one.
async function waitUntil(ok: () => boolean, what: string, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (now ${current ? JSON.stringify(live(current)) : '?'})`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A real graphql-ws client whose sockets the test can also drop abruptly (no Complete, no close frame). */
function wsClient(url: string, token: string) {
  const sockets: WebSocket[] = [];
  class Tracked extends WebSocket {
    constructor(...args: ConstructorParameters<typeof WebSocket>) {
      super(...args);
      sockets.push(this);
    }
  }
  const client: Client = createClient({
    url: `${url.replace(/^http/, 'ws')}/graphql`,
    webSocketImpl: Tracked,
    connectionParams: { authorization: `Bearer ${token}` },
    retryAttempts: 0,
    lazy: true,
  });
  const errors: any[] = [];
  const events: any[] = [];
  /** Subscribes; returns its unsubscribe (which sends Complete). */
  const open = (query: string, variables: Record<string, unknown> = {}) =>
    client.subscribe(
      { query, variables },
      { next: (v) => (v.errors ? errors.push(...v.errors) : events.push(v.data)), error: (e) => errors.push(e), complete: () => {} },
    );
  return {
    client,
    open,
    errors,
    events,
    terminate: () => {
      for (const s of sockets) s.terminate();
    },
  };
}

/** A subscription over SSE (POST with a JSON body, or GET with the query in the URL), open until `abort()`. */
async function sse(url: string, token: string, query: string, variables: Record<string, unknown> = {}, method: 'POST' | 'GET' = 'POST') {
  const abort = new AbortController();
  const headers = { authorization: `Bearer ${token}`, accept: 'text/event-stream', 'content-type': 'application/json' };
  const res =
    method === 'POST'
      ? await fetch(`${url}/graphql`, { method, headers, body: JSON.stringify({ query, variables }), signal: abort.signal })
      : await fetch(`${url}/graphql?${new URLSearchParams({ query, variables: JSON.stringify(variables) })}`, { headers, signal: abort.signal });
  expect(res.headers.get('content-type')).toContain('text/event-stream');
  return { res, abort: () => abort.abort() };
}

/** What the server holds for live subscriptions right now (test-only counters, not in GraphQL). */
const live = (t: TestApp) => ({
  listeners: t.app.services.feed.listenerCount(),
  subscriptions: t.app.services.subscriptions.count(),
  timers: t.app.services.subscriptions.timerCount(),
});

async function healthMs(url: string) {
  const started = performance.now();
  const res = await fetch(`${url}/health`);
  expect(res.status).toBe(200);
  return performance.now() - started;
}

describe('subscriptions released when the client goes away (default limits)', () => {
  let t: TestApp;
  const users: (ApiClient & { token: string })[] = [];
  let quietRun = '';

  beforeAll(async () => {
    t = await startTestApp();
    current = t;
    await t.publishFixture('echo');
    // A run no host will take: it stays queued and sends no events, so only the client's leaving can end its watchers.
    await t.createWorkflow({ name: 'stuck', tasks: [{ name: 'a', module: 'test/echo', pool: 'nowhere' }] });
    quietRun = (await t.api.gql(`mutation { startRun(workflow: "stuck") { id } }`)).startRun.id;
    for (const name of ['ann', 'bob', 'cy', 'dee']) users.push(await t.user(name));
    // Warm up each path (graphql-ws and SSE, a member's token), so the rounds measure churn and not the first use's
    // compilation (the first burst ran 2–3× slower without this).
    const w = wsClient(t.url, users[0]!.token);
    for (let i = 0; i < 20; i++) w.open(ONE, { id: quietRun });
    for (let i = 0; i < 20; i++) w.open(ALL);
    const s = await sse(t.url, users[0]!.token, ALL);
    await waitUntil(() => t.app.services.feed.listenerCount() === 41, 'the warm-up subscriptions');
    w.terminate();
    s.abort();
    await waitUntil(() => t.app.services.feed.listenerCount() === 0, 'the warm-up released');
  });
  afterAll(async () => {
    await t?.stop();
  });

  it('releases every listener, timer and slot after 3 rounds of 300 over graphql-ws and SSE, /health answering throughout', async () => {
    const PER_USER = 75; // 4 users × 75 = 300 a round, under the default 100 per token
    const rss: number[] = [];
    const health: number[] = [];
    for (let round = 0; round < 3; round++) {
      const closers: (() => void)[] = [];
      const held: Response[] = [];
      const opening = users.map(async (u) => {
        // 25 of runEvents on the quiet run over one socket, later dropped without a word.
        const a = wsClient(t.url, u.token);
        for (let i = 0; i < 25; i++) a.open(ONE, { id: quietRun });
        closers.push(a.terminate);
        // 25 of allRunEvents over another: 5 completed one by one (Complete messages), the rest closed by dispose.
        const b = wsClient(t.url, u.token);
        const offs = Array.from({ length: 25 }, () => b.open(ALL));
        closers.push(() => {
          for (const off of offs.slice(0, 5)) off();
        });
        closers.push(() => void b.client.dispose());
        // 25 over SSE, POST and GET, each request aborted.
        for (let i = 0; i < PER_USER - 50; i++) {
          const s = await sse(t.url, u.token, i % 2 ? ALL : ONE, i % 2 ? {} : { id: quietRun }, i % 3 ? 'POST' : 'GET');
          closers.push(s.abort);
          held.push(s.res); // undici cancels a response nobody holds when it is collected: hold it until aborted
        }
        return [a, b];
      });
      health.push(await healthMs(t.url));
      const clients = (await Promise.all(opening)).flat();
      await waitUntil(() => t.app.services.feed.listenerCount() === users.length * PER_USER, `${users.length * PER_USER} live subscriptions`);
      health.push(await healthMs(t.url));
      expect(clients.flatMap((c) => c.errors)).toEqual([]);
      // One access re-check timer per token, shared by its subscriptions (issue 21), so 4 here.
      expect(live(t)).toEqual({ listeners: 300, subscriptions: 300, timers: users.length });

      for (const close of closers) close();
      held.length = 0;
      health.push(await healthMs(t.url));
      // Promptly: the server lets go as soon as it learns the client left (a generous poll, not a timing claim).
      await waitUntil(() => t.app.services.feed.listenerCount() === 0, 'every feed listener released', 5_000);
      await waitUntil(() => live(t).subscriptions === 0 && live(t).timers === 0, 'every slot and timer released', 5_000);
      rss.push(process.memoryUsage().rss);
    }
    console.log(
      `subscription churn: rss after each round ${rss.map((b) => `${Math.round(b / 2 ** 20)} MiB`).join(', ')}; /health ${health.map((ms) => ms.toFixed(0)).join(', ')} ms (issue's target: 200 ms)`,
    );
    // /health must keep answering during the churn (the probe once saw it stop answering at all). The bound is
    // generous on purpose: these machines have 2 cores shared with other test processes (load 12–16 when measured),
    // and the embedded PGlite runs every query on the event loop, so the first burst of 300 subscription set-ups
    // delayed it by up to ~4 s there and later bursts by 0.1–2 s. The issue's 200 ms target is the printed number.
    expect(Math.max(...health)).toBeLessThan(10_000);
    // Loose: the test process holds the clients too, and the GC runs when it likes; a leak of 300 subscriptions a
    // round (their generators, listeners, timers and sockets) would grow well past this.
    expect(rss[2]! - rss[0]!).toBeLessThan(150 * 2 ** 20);
  }, 180_000);

  it('refuses the 101st subscription of one token with TOO_MANY_SUBSCRIPTIONS, over graphql-ws and SSE, while another token still subscribes', async () => {
    const [ann, bob] = users as [ApiClient & { token: string }, ApiClient & { token: string }];
    const a = wsClient(t.url, ann.token);
    const offs = Array.from({ length: 100 }, () => a.open(ALL));
    await waitUntil(() => live(t).subscriptions === 100, '100 live subscriptions');
    expect(a.errors).toEqual([]);

    a.open(ALL);
    await waitUntil(() => a.errors.length > 0, 'the refusal');
    expect(a.errors[0].extensions.code).toBe('TOO_MANY_SUBSCRIPTIONS');
    expect(a.errors[0].message).toMatch(/100 subscriptions.*ATELIER_MAX_SUBSCRIPTIONS_PER_TOKEN/);
    const overSse = await sse(t.url, ann.token, ALL);
    const text = await overSse.res.text(); // refused: the stream ends at once with the error
    expect(text).toContain('TOO_MANY_SUBSCRIPTIONS');
    expect(text).toContain('ATELIER_MAX_SUBSCRIPTIONS_PER_TOKEN');
    expect(live(t).subscriptions).toBe(100); // a refusal takes no slot

    // Another token is not held back by the first one's.
    const b = wsClient(t.url, bob.token);
    b.open(ONE, { id: quietRun });
    await waitUntil(() => b.events.length > 0, 'bob’s snapshot');
    expect(b.errors).toEqual([]);
    expect(live(t).subscriptions).toBe(101);

    // A freed slot can be taken again.
    offs[0]!();
    await waitUntil(() => live(t).subscriptions === 100, 'one slot freed');
    a.open(ALL);
    await waitUntil(() => live(t).subscriptions === 101, 'the slot taken again');
    expect(a.errors).toHaveLength(1);

    a.terminate();
    b.terminate();
    await waitUntil(() => live(t).subscriptions === 0 && live(t).listeners === 0 && live(t).timers === 0, 'everything released', 5_000);
  });
});

describe('subscriptions the server ends, and the server-wide cap', () => {
  let t: TestApp;
  let eve: ApiClient & { token: string };
  let fay: ApiClient & { token: string };

  beforeAll(async () => {
    t = await startTestApp({ ATELIER_MAX_SUBSCRIPTIONS: '4', ATELIER_MAX_SUBSCRIPTIONS_PER_TOKEN: '3', ATELIER_TOKEN_RECHECK_MS: '100' });
    current = t;
    eve = await t.user('eve');
    fay = await t.user('fay');
  });
  afterAll(async () => {
    await t?.stop();
  });

  it('refuses past the server-wide limit, naming ATELIER_MAX_SUBSCRIPTIONS', async () => {
    const e = wsClient(t.url, eve.token);
    const f = wsClient(t.url, fay.token);
    for (let i = 0; i < 3; i++) e.open(ALL);
    await waitUntil(() => live(t).subscriptions === 3, 'eve’s 3');
    f.open(ALL);
    await waitUntil(() => live(t).subscriptions === 4, 'fay’s first');
    f.open(ALL);
    await waitUntil(() => f.errors.length > 0, 'the refusal');
    expect(f.errors[0].extensions.code).toBe('TOO_MANY_SUBSCRIPTIONS');
    expect(f.errors[0].message).toMatch(/4 subscriptions.*ATELIER_MAX_SUBSCRIPTIONS\b/);
    const text = await (await sse(t.url, fay.token, ALL, {}, 'GET')).res.text();
    expect(text).toContain('TOO_MANY_SUBSCRIPTIONS');
    expect(live(t).subscriptions).toBe(4);
    e.terminate();
    f.terminate();
    await waitUntil(() => live(t).subscriptions === 0 && live(t).listeners === 0 && live(t).timers === 0, 'everything released', 5_000);
  });

  it('releases the subscriptions it ends itself (a revoked token), over graphql-ws and SSE', async () => {
    const { createServiceAccount } = await t.api.gql(`mutation { createServiceAccount(name: "leaver") { token } }`);
    const token = createServiceAccount.token as string;
    const w = wsClient(t.url, token);
    w.open(ALL);
    w.open(ALL);
    const s = await sse(t.url, token, ALL);
    await waitUntil(() => live(t).subscriptions === 3, 'three live');
    await t.api.gql(`mutation { revokeServiceTokens(name: "leaver") }`);
    expect(await s.res.text()).toContain('UNAUTHENTICATED');
    await waitUntil(() => w.errors.length === 2, 'both ended');
    await waitUntil(() => live(t).subscriptions === 0 && live(t).listeners === 0 && live(t).timers === 0, 'everything released', 5_000);
    w.terminate();
  });
});
