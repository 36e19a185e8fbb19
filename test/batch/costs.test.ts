// Cost figures end to end: real tasks on a CPU pool and on a GPU host, aggregated by team and workflow (execution
// time × GPUs; CPU-only tasks count execution time and no GPU time; cache hits count nothing), governed (a team
// sees its own, an admin all, someone in no team nothing), and `atelier costs` prints them as a table.
import path from 'node:path';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLocalExecutor } from '../../executors/local';
import { createExecutorHost, type ExecutorHost } from '../../plugins/host';
import { createExecutorRegistry } from '../../plugins/registry';
import { tasks } from '../../server/db/tables/runs';
import { startTestApp, type TestApp } from '../harness/app';
import { runCli } from '../harness/cli';
import type { ApiClient } from '../harness/client';
import { until } from './until';

const START = `mutation ($w: String!) { startRun(workflow: $w) { id } }`;
const COSTS = `query ($since: DateTime!, $by: CostGrouping) { costs(since: $since, groupBy: $by) { group tasks executionHours gpuHours } }`;
const since = new Date(Date.now() - 3_600_000).toISOString();

describe('cost figures', () => {
  let t: TestApp;
  let gpuHost: ExecutorHost;
  let alice: ApiClient & { token: string };
  let bob: ApiClient & { token: string };
  let vera: ApiClient & { token: string };

  const runToEnd = async (client: ApiClient, workflow: string) => {
    const { startRun } = await client.gql(START, { w: workflow });
    return until(`run of ${workflow} to end`, async () => {
      const { run } = await t.api.gql(`query ($id: ID!) { run(id: $id) { id status } }`, { id: startRun.id });
      return run.status === 'SUCCEEDED' && run;
    });
  };

  beforeAll(async () => {
    t = await startTestApp();
    await t.publishFixture('echo');
    await t.publishFixture('gpu-echo');
    gpuHost = createExecutorHost({
      bus: t.app.bus,
      registry: createExecutorRegistry([createLocalExecutor()]),
      pools: ['gpu'],
      hostName: 'gpu-node-1',
      gpus: 2,
      artifacts: { fetch: (digest) => t.app.services.store.path(digest) },
      workRoot: path.join(t.dataDir, 'gpu-work'),
      warn: () => undefined,
    });
    await gpuHost.start();
    [alice, bob, vera] = await Promise.all([t.user('alice'), t.user('bob'), t.user('vera')]);
    await t.team('vision', ['alice']);
    await t.team('nlp', ['bob']);
    const create = (c: ApiClient, spec: object) => c.gql(`mutation ($s: String!) { createWorkflow(spec: $s) { created } }`, { s: JSON.stringify(spec) });
    await create(alice, { name: 'gpu-batch', tasks: ['a', 'b'].map((name) => ({ name, module: 'test/gpu-echo', parameters: { message: name } })) });
    await create(bob, { name: 'cpu-batch', tasks: [{ name: 'only', module: 'test/echo', parameters: { message: 'x' } }] });
    await runToEnd(alice, 'gpu-batch');
    await runToEnd(bob, 'cpu-batch');
    await runToEnd(bob, 'cpu-batch'); // served from the cache: executes nothing, costs nothing
  }, 120_000);
  afterAll(async () => {
    await gpuHost?.stop();
    await t?.stop();
  });

  const gpuTasks = async () => t.app.database.db.select().from(tasks).where(eq(tasks.gpus, 2));

  it('counts execution time × GPUs by team and workflow; CPU-only tasks count no GPU time; cache hits nothing', async () => {
    const { costs } = await t.api.gql(COSTS, { since, by: 'team' });
    expect(costs.map((r: any) => r.group)).toEqual(['nlp', 'vision']);
    const [nlp, vision] = costs;
    expect(nlp.tasks).toBe(1);
    expect(nlp.executionHours).toBeGreaterThan(0);
    expect(nlp.gpuHours).toBe(0);
    expect(vision.tasks).toBe(2);
    expect(vision.gpuHours).toBeCloseTo(vision.executionHours * 2, 9);
    // the figures are the tasks' own: their last attempts' execution time
    const ran = await gpuTasks();
    expect(ran).toHaveLength(2);
    expect(vision.executionHours * 3_600_000).toBeCloseTo(
      ran.reduce((a, r) => a + r.executionMs!, 0),
      3,
    );
    const byWorkflow = (await t.api.gql(COSTS, { since, by: 'workflow' })).costs;
    expect(byWorkflow.map((r: any) => [r.group, r.tasks])).toEqual([
      ['cpu-batch', 1],
      ['gpu-batch', 2],
    ]);
  });

  it('shows a team its own figures only, an admin every team, someone in no team nothing', async () => {
    expect((await alice.gql(COSTS, { since, by: 'workflow' })).costs.map((r: any) => r.group)).toEqual(['gpu-batch']);
    expect((await bob.gql(COSTS, { since, by: 'team' })).costs.map((r: any) => r.group)).toEqual(['nlp']);
    expect((await vera.gql(COSTS, { since })).costs).toEqual([]);
    // a later period holds nothing
    expect((await t.api.gql(COSTS, { since: new Date(Date.now() + 60_000).toISOString() })).costs).toEqual([]);
  });

  it('prints `atelier costs` as a readable table, with a total', async () => {
    const { code, stdout, stderr } = await runCli({ url: t.url, token: alice.token }, ['costs', '--by', 'workflow', '--since', '1h']);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const lines = stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^workflow\s+tasks\s+execution\s+GPU time$/);
    expect(lines[1]).toMatch(/^gpu-batch\s+2\s+/);
    expect(lines[2]).toMatch(/^total\s+2\s+/);
  });
});
