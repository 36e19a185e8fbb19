// The live feed on two replicas (Postgres + nats-server): a replica delivers the events it records to its own
// subscribers at once, without the trip through nats-server, and drops their echo when it comes back; the other
// replica gets them over the bus. Every subscriber sees each event once, in number order.
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runs } from '../../server/db/tables/runs';
import type { FeedEvent } from '../../server/events/feed';
import { startTestApp, type TestApp } from '../harness/app';
import { type LiveEvent, RUN_EVENTS_SEQ, type Watcher, watchWs, within } from '../harness/live';
import { type NatsServer, startNats } from '../harness/nats';
import { type PostgresServer, startPostgres } from '../harness/postgres';

const TOKEN = 'atl_feed-replicas-admin-token';
const ALL_RUN_EVENTS = /* GraphQL */ `
  subscription {
    allRunEvents(announce: true) {
      __typename
      ... on RunStatusEvent { runId seq runStatus }
      ... on TaskStatusEvent { runId seq }
      ... on TaskProgressEvent { runId seq }
      ... on TaskLogEvent { runId seq }
      ... on TaskMetricEvent { runId seq }
    }
  }
`;

async function waitUntil(ok: () => boolean, what: string, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('the live feed on two replicas', () => {
  let pg: PostgresServer;
  let nats: NatsServer;
  let a: TestApp;
  let b: TestApp;
  /** Every event each replica's feed handed its subscribers, by run: what a subscriber of all runs is given. */
  const fed = new Map<TestApp, FeedEvent[]>();

  beforeAll(async () => {
    [pg, nats] = await Promise.all([startPostgres(), startNats()]);
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'atelier-feed-replicas-'));
    // The feed's check (which reads the store for what the bus lost) waits its longest: only delivery can explain what arrives.
    const env = { DATABASE_URL: pg.url, NATS_URL: nats.url, ATELIER_DATA_DIR: dataDir, ATELIER_ADMIN_TOKEN: TOKEN, ATELIER_FEED_CHECK_MS: '60000' };
    [a, b] = await Promise.all([startTestApp(env), startTestApp(env)]);
    for (const t of [a, b]) {
      const events: FeedEvent[] = [];
      fed.set(t, events);
      t.app.services.feed.subscribe('*', (e) => events.push(e));
    }
  }, 120_000);
  afterAll(async () => {
    await b?.stop();
    await a?.stop();
    await nats?.stop();
    await pg?.stop();
  });

  const eventSeq = async (runId: string) => (await a.app.database.db.select().from(runs).where(eq(runs.id, runId)))[0]!.eventSeq;
  const seqsOf = (events: { seq?: number }[]) => events.map((e) => e.seq!);
  const consecutive = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
  /** The run's live events after the snapshot (whose events carry one number): consecutive to the stored head, each once. */
  const expectInOrderOnce = (w: Watcher, head: number) => {
    const snapshot = w.events.filter((e) => e.seq === w.events[0]!.seq).length;
    expect(seqsOf(w.events.slice(snapshot))).toEqual(consecutive(w.events[0]!.seq! + 1, head));
  };
  /** Resolves once everything `t`'s bus published before it has come back to `t` (one connection delivers in order). */
  const echoesIn = async (t: TestApp) => {
    const at = new Date().toISOString();
    let heard = false;
    const marker = await t.app.bus.subscribeControl('registry-changed', (m) => (heard ||= m.at === at));
    await t.app.bus.publishControl('registry-changed', { at });
    await waitUntil(() => heard, 'the marker back');
    await marker.stop();
  };
  const logMetric = (t: TestApp, runId: string, step: number) =>
    t.api.gql('mutation ($id: ID!, $s: Int!) { logRunMetrics(runId: $id, points: [{ name: "loss", value: 1, step: $s }]) { id } }', { id: runId, s: step });

  it('hands this replica’s subscribers its own events with nats-server’s feed delivery held back, and drops their echo', async () => {
    const runId = (await a.api.gql('mutation { startExternalRun(name: "held") { id } }')).startExternalRun.id as string;
    const here = watchWs(a.url, TOKEN, RUN_EVENTS_SEQ, { runId });
    const there = watchWs(b.url, TOKEN, RUN_EVENTS_SEQ, { runId });
    await waitUntil(() => here.events.length > 0 && there.events.length > 0, 'both snapshots');
    // The bus carries nothing of A's until the end: A's subscriber has only what A delivers itself.
    const publish = a.app.bus.publishFeed.bind(a.app.bus);
    const held: Parameters<typeof publish>[] = [];
    a.app.bus.publishFeed = (...args) => void held.push(args);
    try {
      for (let step = 0; step < 5; step++) await logMetric(a, runId, step);
      await a.api.gql('mutation ($id: ID!) { endExternalRun(runId: $id) { id } }', { id: runId });
      expect(await within(here.done, 20_000)).toBe(true);
      expect(held.length).toBeGreaterThan(5);
      expect(there.completed()).toBe(false);
    } finally {
      a.app.bus.publishFeed = publish;
    }
    for (const args of held) publish(...args);
    expect(await within(there.done, 20_000)).toBe(true);
    const head = await eventSeq(runId);
    expectInOrderOnce(here, head);
    expectInOrderOnce(there, head);
    // Each replica's feed handed on each of the run's events once: A's own when it recorded them, not again as echo.
    await echoesIn(a);
    for (const t of [a, b]) expect(seqsOf(fed.get(t)!.filter((e) => e.runId === runId))).toEqual(consecutive(1, head));
  }, 90_000);

  it('shows each replica the events the other records and its own, each once and in number order', async () => {
    const watchAll = (t: TestApp, runId: () => string) => {
      let listening!: () => void;
      const live = new Promise<void>((resolve) => (listening = resolve));
      const done = t.api.subscribe<{ allRunEvents: LiveEvent & { runId?: string } }>(
        ALL_RUN_EVENTS,
        {},
        (e) => e.allRunEvents.runId === runId() && e.allRunEvents.runStatus === 'SUCCEEDED',
        (e) => e.allRunEvents.__typename === 'RunFeedListening' && listening(),
      );
      return { live, done };
    };
    let runId = '';
    const all = [watchAll(a, () => runId), watchAll(b, () => runId)];
    await Promise.all(all.map((w) => w.live));
    runId = (await b.api.gql('mutation { startExternalRun(name: "both") { id } }')).startExternalRun.id as string;
    const watchers = [watchWs(a.url, TOKEN, RUN_EVENTS_SEQ, { runId }), watchWs(b.url, TOKEN, RUN_EVENTS_SEQ, { runId })];
    await waitUntil(() => watchers.every((w) => w.events.length > 0), 'both snapshots');
    // Recorded by one replica, then the other: each event is one replica's own and the other's over the bus.
    for (let step = 0; step < 12; step++) await logMetric(step % 2 ? b : a, runId, step);
    await a.api.gql('mutation ($id: ID!) { endExternalRun(runId: $id) { id } }', { id: runId });
    const head = await eventSeq(runId);
    for (const w of watchers) {
      expect(await within(w.done, 20_000)).toBe(true);
      expectInOrderOnce(w, head);
    }
    for (const w of all) {
      const seen = (await w.done).map((e) => e.allRunEvents).filter((e) => e.runId === runId);
      expect(seqsOf(seen)).toEqual(consecutive(1, head));
    }
    await Promise.all([echoesIn(a), echoesIn(b)]);
    for (const t of [a, b])
      expect(
        seqsOf(fed.get(t)!.filter((e) => e.runId === runId)).sort((x, y) => x - y),
        'each event once in each replica’s feed',
      ).toEqual(consecutive(1, head));
  }, 90_000);
});
