// GET /metrics across two replicas on real Postgres and NATS JetStream: each replica counts only what it did itself
// (the mutation it answered, the tasks it dispatched), the counts of both add up to what the run did, and the gauges
// read from the database are the same whichever replica is asked.
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startTestApp, type TestApp } from '../harness/app';
import { RUN_EVENTS } from '../harness/client';
import { type NatsServer, startNats } from '../harness/nats';
import { type PostgresServer, startPostgres } from '../harness/postgres';
import { type Exposition, parseExposition } from './exposition';

const TOKEN = 'metrics-replicas-admin-token-0123456789';
const ended = (e: any) => e.runEvents.__typename === 'RunStatusEvent' && ['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(e.runEvents.runStatus);
const UNTIL = { timeout: 20_000, interval: 100 };

describe('GET /metrics on two replicas (Postgres + NATS)', () => {
  let pg: PostgresServer;
  let nats: NatsServer;
  let a: TestApp; // runs the embedded executor host
  let b: TestApp;
  beforeAll(async () => {
    [pg, nats] = await Promise.all([startPostgres(), startNats()]);
    // One data directory: the replicas share its object store, as replicas on one machine do.
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'atelier-metrics-replicas-'));
    const env = { DATABASE_URL: pg.url, NATS_URL: nats.url, ATELIER_DATA_DIR: dataDir, ATELIER_ADMIN_TOKEN: TOKEN };
    // Started together, as replicas are (migrations take a lock).
    [a, b] = await Promise.all([startTestApp({ ...env, ATELIER_EMBEDDED_EXECUTOR: 'true', ATELIER_POOLS: 'local' }), startTestApp(env)]);
    await a.publishFixture('echo');
  }, 120_000);
  afterAll(async () => {
    await b?.stop();
    await a?.stop();
    await nats?.stop();
    await pg?.stop();
  });

  const scrape = async (t: TestApp): Promise<Exposition> => {
    const res = await fetch(`${t.url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(res.status).toBe(200);
    return parseExposition(await res.text());
  };

  it("counts on each replica only its own work, and both replicas' counts add up to the run", async () => {
    await a.createWorkflow({
      name: 'pair',
      tasks: [
        { name: 'first', module: 'test/echo', parameters: { message: 'replicas' } },
        { name: 'second', module: 'test/echo', parameters: { message: 'replicas' }, dependsOn: ['first'] },
      ],
    });
    const [beforeA, beforeB] = await Promise.all([scrape(a), scrape(b)]);
    const { startRun } = await b.api.gql(`mutation { startRun(workflow: "pair") { id } }`);
    await b.api.subscribe(RUN_EVENTS, { runId: startRun.id }, ended);
    const sum = (ma: Exposition, mb: Exposition, name: string, labels?: Record<string, string>) =>
      ma.value(name, labels) - beforeA.value(name, labels) + mb.value(name, labels) - beforeB.value(name, labels);
    let [afterA, afterB] = [beforeA, beforeB];
    await vi.waitFor(async () => {
      [afterA, afterB] = await Promise.all([scrape(a), scrape(b)]);
      expect(sum(afterA, afterB, 'atelier_task_attempts_ended_total', { status: 'SUCCEEDED' })).toBe(2);
    }, UNTIL);
    expect(sum(afterA, afterB, 'atelier_tasks_dispatched_total', { pool: 'local' })).toBe(2);
    // A relay pass on the other replica may publish a message again before its row is deleted (the bus drops it).
    expect(sum(afterA, afterB, 'atelier_task_dispatch_delay_seconds_count')).toBeGreaterThanOrEqual(2);
    // The start's transaction dispatched the first task, on the replica that answered the mutation.
    expect(
      afterB.value('atelier_tasks_dispatched_total', { pool: 'local' }) - beforeB.value('atelier_tasks_dispatched_total', { pool: 'local' }),
    ).toBeGreaterThanOrEqual(1);
    const mutations = (m: Exposition) => m.value('atelier_graphql_operations_total', { type: 'mutation' });
    expect(mutations(afterB) - mutations(beforeB)).toBe(1);
    expect(mutations(afterA) - mutations(beforeA)).toBe(0);
  });

  it('reads the same database gauges on either replica', async () => {
    await a.createWorkflow({ name: 'stranded', tasks: [{ name: 'x', module: 'test/echo', pool: 'nowhere', parameters: { message: 'stranded' } }] });
    const { startRun } = await a.api.gql(`mutation { startRun(workflow: "stranded") { id } }`);
    try {
      await vi.waitFor(async () => {
        for (const m of await Promise.all([scrape(a), scrape(b)])) {
          expect(m.value('atelier_tasks_queued', { pool: 'nowhere', status: 'QUEUED' })).toBe(1);
          expect(m.value('atelier_oldest_queued_task_age_seconds', { pool: 'nowhere' })).toBeGreaterThan(0);
          expect(m.value('atelier_runs', { status: 'QUEUED' }) + m.value('atelier_runs', { status: 'RUNNING' })).toBe(1);
          expect(m.value('atelier_executor_hosts_alive', { executor: 'local' })).toBe(1);
        }
      }, UNTIL);
    } finally {
      await a.api.gql(`mutation ($id: ID!) { cancelRun(id: $id) { id } }`, { id: startRun.id });
    }
  });
});
