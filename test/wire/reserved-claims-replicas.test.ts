// A reserved attempt's first claim asked of the replica that reserved it (issue 21): two control planes on one real
// Postgres and nats-server, both serving the claims' queue group, and executor hosts of the test's own on the bus. A
// small dispatch's task messages name the dispatching replica (TaskMessage.claimAt) and the host asks the first claim
// there, so it is answered from the reservation (execution 0: the claim query would number 1) whichever replica the
// queue group would have picked, a chain's later edges too (dispatched by whichever replica recorded the edge). With
// the dispatching replica stopped, nobody serves its subject: the host asks the queue group, and the other replica
// answers from the database (execution 1). A host that reads no such field (older) still runs its attempts.
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createNoopExecutor } from '../../executors/noop';
import type { Bus } from '../../plugins/bus/types';
import { createExecutorHost, type ExecutorHost } from '../../plugins/host';
import type { AttemptClaim, ClaimAnswer } from '../../plugins/protocol';
import { createExecutorRegistry } from '../../plugins/registry';
import { createJetStreamBus } from '../../server/bus/jetstream';
import { queryRows } from '../../server/db/client';
import { until } from '../batch/until';
import { startTestApp, type TestApp } from '../harness/app';
import { type NatsServer, startNats } from '../harness/nats';
import { type PostgresServer, startPostgres } from '../harness/postgres';

let pg: PostgresServer;
let nats: NatsServer;
let a: TestApp;
let b: TestApp;
const buses: Bus[] = [];
const hosts: ExecutorHost[] = [];

/** Each claim request a host sent: where to (a replica's id, or `any`), for which task, and what came back. */
interface Asked {
  at: string;
  taskId: string;
  first: boolean;
  answer: ClaimAnswer | undefined;
}
const asked: Asked[] = [];

beforeAll(async () => {
  [pg, nats] = await Promise.all([startPostgres(), startNats()]);
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'atelier-reserved-replicas-'));
  // No executor host in either: the test's hosts run the attempts, on a bus of their own.
  const env = { DATABASE_URL: pg.url, NATS_URL: nats.url, ATELIER_DATA_DIR: dataDir, ATELIER_EMBEDDED_EXECUTOR: '0' };
  a = await startTestApp(env);
  b = await startTestApp(env);
  await a.publishFixture('sleep');
  const task = (name: string, pool: string, dependsOn: string[] = []) => ({
    name,
    module: 'test/sleep',
    executor: 'noop',
    pool,
    parameters: { ms: 0 },
    dependsOn,
  });
  await a.createWorkflow({ name: 'single', tasks: [task('only', 'replicas')] });
  await a.createWorkflow({ name: 'chain', tasks: [task('one', 'replicas'), task('two', 'replicas', ['one']), task('three', 'replicas', ['two'])] });
  await a.createWorkflow({ name: 'after-stop', tasks: [task('only', 'after-stop')] });
  await a.createWorkflow({ name: 'older-host', tasks: [task('only', 'older-host')] });
}, 180_000);

afterAll(async () => {
  for (const host of hosts) await host.stop();
  for (const bus of buses) await bus.close();
  await b?.stop();
  await a?.stop();
  await nats?.stop();
  await pg?.stop();
});

/** A host on `pool` whose claim requests are noted in `asked`; an older one asks every claim of any replica. */
async function startHost(pool: string, older = false): Promise<void> {
  const real = await createJetStreamBus({ url: nats.url, name: `host-${pool}` });
  buses.push(real);
  const note = (at: string | undefined, claims: AttemptClaim[], answers: (ClaimAnswer | undefined)[]) => {
    for (const [i, c] of claims.entries()) asked.push({ at: at ?? 'any', taskId: c.taskId, first: c.execution === null && !c.redelivered, answer: answers[i] });
  };
  const bus: Bus = {
    ...real,
    async requestClaim(claim, timeoutMs, at) {
      const where = older ? undefined : at;
      const answer = await real.requestClaim(claim, timeoutMs, where);
      note(where, [claim], [answer]);
      return answer;
    },
    async requestClaims(claims, timeoutMs, at) {
      const where = older ? undefined : at;
      const answers = await real.requestClaims!(claims, timeoutMs, where);
      note(where, claims, answers ?? []);
      return answers;
    },
  };
  const host = createExecutorHost({
    bus,
    registry: createExecutorRegistry([createNoopExecutor()]),
    pools: [pool],
    hostName: `host-${pool}`,
    artifacts: { fetch: async () => '/nonexistent' },
    workRoot: path.join(os.tmpdir(), `atelier-reserved-replicas-${pool}`),
    warn: () => undefined,
  });
  hosts.push(host);
  await host.start();
}

async function started(api: TestApp['api'], workflow: string): Promise<string> {
  const { startRun } = await api.gql(`mutation ($w: String!) { startRun(workflow: $w) { id } }`, { w: workflow });
  return startRun.id;
}

const succeeded = (app: TestApp, runId: string) =>
  until(
    `run ${runId} succeeded`,
    async () => {
      const [run] = await queryRows<{ status: string }>(app.app.services.db, sql`select status from runs where id = ${runId}`);
      return run?.status === 'SUCCEEDED';
    },
    60_000,
  );

/** The run's tasks, and how many executions of their attempt were numbered (1: only the dispatch's reservation). */
const numbered = (runId: string) =>
  queryRows<{ id: string; count: number }>(
    b.app.services.db,
    sql`select t.id, e.count from tasks t join task_executions e on e.task_id = t.id and e.attempt = t.attempt where t.run_id = ${runId} order by t.node`,
  );

it('asks the first claim of an attempt dispatched by one replica of that replica, which answers from its reservation (execution 0)', async () => {
  await startHost('replicas');
  // Six runs started at A and two chains: with the queue group alone about half of these claims reach B (execution 1).
  const runs = await Promise.all([...Array.from({ length: 6 }, () => started(a.api, 'single')), started(a.api, 'chain'), started(a.api, 'chain')]);
  for (const run of runs) await succeeded(a, run);
  const tasks = (await Promise.all(runs.map(numbered))).flat();
  expect(tasks).toHaveLength(6 + 2 * 3);
  expect(tasks.map((t) => t.count)).toEqual(tasks.map(() => 1));
  const ids = new Set(tasks.map((t) => t.id));
  const firsts = asked.filter((q) => ids.has(q.taskId) && q.first);
  expect(firsts).toHaveLength(tasks.length);
  for (const q of firsts) {
    expect(q.at).not.toBe('any');
    expect(q.answer).toMatchObject({ verdict: 'run', execution: 0 });
  }
  // The single runs' messages all name A (it dispatched them in startRun).
  const singles = new Set((await Promise.all(runs.slice(0, 6).map(numbered))).flat().map((t) => t.id));
  expect(new Set(firsts.filter((q) => singles.has(q.taskId)).map((q) => q.at)).size).toBe(1);
});

it('asks the queue group when the replica that reserved the claim is gone, and the other answers from the database (execution 1)', async () => {
  const runId = await started(a.api, 'after-stop');
  const [task] = await queryRows<{ id: string; status: string }>(b.app.services.db, sql`select id, status from tasks where run_id = ${runId}`);
  expect(task!.status).toBe('QUEUED');
  await a.stop();
  await startHost('after-stop');
  await succeeded(b, runId);
  const mine = asked.filter((q) => q.taskId === task!.id);
  // Asked of A first: nobody serves its subject, so no answer; then of any replica, which is B now.
  expect(mine[0]).toMatchObject({ first: true, answer: undefined });
  expect(mine[0]!.at).not.toBe('any');
  expect(mine[1]).toMatchObject({ at: 'any', first: true });
  expect(mine.at(-1)!.answer).toMatchObject({ verdict: 'run', execution: 1 });
  expect((await numbered(runId))[0]!.count).toBe(2);
});

it('runs the attempts of a host that reads no replica from the message (older), asking every claim of any replica', async () => {
  await startHost('older-host', true);
  const runId = await started(b.api, 'older-host');
  await succeeded(b, runId);
  const [task] = await numbered(runId);
  expect(asked.filter((q) => q.taskId === task!.id).every((q) => q.at === 'any')).toBe(true);
});
