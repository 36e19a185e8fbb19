// No message the control plane publishes may exceed the bus's payload limit (issue 21): a 10,000-task `startRun`
// on a default nats-server once answered `max_payload size exceeded` after its transaction had committed, so the
// caller got an error for a run that existed. Here nats-server runs with a 16 KiB max_payload, so batches that
// grow with user input (a run's task statuses, a metric batch) cross it at test sizes: the callers succeed, and
// every subscriber still gets every event (split into several messages, or, for one event too large alone, sent as
// a reference and read back from the store).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../harness/app';
import { type NatsServer, startNats } from '../harness/nats';
import { type PostgresServer, startPostgres } from '../harness/postgres';

const MAX_PAYLOAD = 16 * 1024;
let pg: PostgresServer | undefined;
let nats: NatsServer | undefined;
let t: TestApp;

async function waitUntil(ok: () => boolean, what: string, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

beforeAll(async () => {
  [pg, nats] = await Promise.all([startPostgres({ migrated: true }), startNats({ maxPayloadBytes: MAX_PAYLOAD })]);
  t = await startTestApp({ DATABASE_URL: pg.url, NATS_URL: nats.url });
  await t.publishFixture('echo');
});
afterAll(async () => {
  await t?.stop();
  await nats?.stop();
  await pg?.stop();
});

describe('messages within the bus’s payload limit', () => {
  it('starts a 1,000-task run whose statuses are far over one message, and every subscriber gets each task’s status', async () => {
    const TASKS = 1000; // ~200 bytes of status each: ~12 messages' worth at 16 KiB
    await t.createWorkflow({ name: 'wide', tasks: Array.from({ length: TASKS }, (_, i) => ({ name: `t${i}`, module: 'test/echo' })) });
    const nodes = new Set<string>();
    let runId = '';
    const watching = t.api.subscribe<any>(
      'subscription { allRunEvents { __typename ... on TaskStatusEvent { runId node } ... on RunStatusEvent { runId } } }',
      {},
      undefined,
      (e) => {
        if (e.allRunEvents.__typename === 'TaskStatusEvent' && e.allRunEvents.runId === runId) nodes.add(e.allRunEvents.node);
      },
    );
    watching.catch(() => undefined);
    // The subscription is live once it sees a run's events: a one-task run first.
    await t.createWorkflow({ name: 'one', tasks: [{ name: 'a', module: 'test/echo' }] });
    const probe = new Set<string>();
    const seenProbe = t.api.subscribe<any>('subscription { allRunEvents { __typename ... on RunStatusEvent { runId } } }', {}, undefined, (e) =>
      probe.add(e.allRunEvents.runId),
    );
    seenProbe.catch(() => undefined);
    let probeRun = '';
    for (let i = 0; i < 20 && !probe.has(probeRun); i++) {
      probeRun = (await t.api.gql('mutation { startRun(workflow: "one") { id } }')).startRun.id;
      await waitUntil(() => probe.has(probeRun), 'the subscription live', 2_000).catch(() => undefined);
    }

    const started = await t.api.raw('mutation { startRun(workflow: "wide") { id } }');
    expect(started.errors).toBeUndefined();
    runId = started.data.startRun.id;
    await waitUntil(() => nodes.size === TASKS, `a status of each of the ${TASKS} tasks (have ${nodes.size})`);
    await t.api.gql('mutation ($id: ID!) { cancelRun(id: $id) { id } }', { id: runId });
  });

  it('logs a metric batch whose one event is over the limit on its own, and a subscriber gets it whole, read from the store', async () => {
    const { startExternalRun } = await t.api.gql('mutation { startExternalRun(name: "big-batch") { id } }');
    const runId = startExternalRun.id;
    const metrics: { points: unknown[] }[] = [];
    const watching = t.api.subscribe<any>(
      'subscription ($id: ID!) { runEvents(runId: $id) { __typename ... on TaskMetricEvent { points } } }',
      { id: runId },
      undefined,
      (e) => e.runEvents.__typename === 'TaskMetricEvent' && metrics.push(e.runEvents),
    );
    watching.catch(() => undefined);
    // Live once a small batch arrives.
    for (let step = 0; !metrics.length && step < 50; step++) {
      await t.api.gql('mutation ($id: ID!, $s: Int!) { logRunMetrics(runId: $id, points: [{ name: "warm", value: 1, step: $s }]) { id } }', {
        id: runId,
        s: step,
      });
      await waitUntil(() => metrics.length > 0, 'the subscription live', 1_000).catch(() => undefined);
    }
    const points = Array.from({ length: 1000 }, (_, i) => ({ name: `metric_with_a_long_name_${i % 20}`, value: i / 7, step: i }));
    const logged = await t.api.raw('mutation ($id: ID!, $p: [MetricPointInput!]!) { logRunMetrics(runId: $id, points: $p) { id } }', { id: runId, p: points });
    expect(logged.errors).toBeUndefined();
    expect(Buffer.byteLength(JSON.stringify(points))).toBeGreaterThan(MAX_PAYLOAD);
    await waitUntil(() => metrics.some((m) => m.points.length === 1000), 'the 1,000-point batch');
    // Its points as logged, in order: the stored feed keeps where they are and reads them back from the points.
    const big = metrics.find((m) => m.points.length === 1000)!.points as { name: string; value: number; step: number }[];
    expect(big.map((p) => [p.name, p.value, p.step])).toEqual(points.map((p) => [p.name, p.value, p.step]));
    await t.api.gql('mutation ($id: ID!) { endExternalRun(runId: $id) { id } }', { id: runId });
  });
});
