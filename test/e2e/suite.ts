// The end-to-end suite: the real server on a free port, real HTTP and graphql-ws clients, real executor
// processes. Run once on the embedded defaults and once on real Postgres + nats-server.
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packDirectory } from '../../server/artifacts/archive';
import type { TestApp } from '../harness/app';
import { apiClient, PUBLISH, RUN_EVENTS } from '../harness/client';

const START = `mutation ($w: String!, $p: JSON) { startRun(workflow: $w, parameters: $p) { id status } }`;
const RUN = `query ($id: ID!) { run(id: $id) { id status message trigger parameters tasks { node status attempt reason message exitCode outputs progress moduleRef moduleVersion { version digest } durationMs logs { stream line } } } }`;

const terminal = (e: any) => e.runEvents.__typename === 'RunStatusEvent' && ['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(e.runEvents.runStatus);

export function endToEndSuite(name: string, start: () => Promise<TestApp>, stopExtra: () => Promise<void> = async () => {}) {
  describe(`end to end (${name})`, () => {
    let t: TestApp;

    beforeAll(async () => {
      t = await start();
      await t.publishFixture('echo');
      await t.publishFixture('fail');
      await t.publishFixture('sleep');
    });
    afterAll(async () => {
      await t?.stop();
      await stopExtra();
    });

    async function runToEnd(workflow: string, parameters?: Record<string, unknown>) {
      const { startRun } = await t.api.gql(START, { w: workflow, p: parameters ?? null });
      const events = await t.api.subscribe<any>(RUN_EVENTS, { runId: startRun.id }, terminal);
      const { run } = await t.api.gql(RUN, { id: startRun.id });
      return { run, events: events.map((e) => e.runEvents) };
    }

    it('answers /health', async () => {
      const res = await fetch(`${t.url}/health`);
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ status: 'ok' });
    });

    it('reads a caller’s team grants with their token, and applies a new grant on the next request', async () => {
      await t.createWorkflow({ name: 'prod-e2e', domain: 'production', tasks: [{ name: 'a', module: 'test/echo' }] });
      const erin = await t.user('e2e-erin');
      await t.team('e2e-ops', ['e2e-erin']);
      const startProd = () => erin.raw(`mutation { startRun(workflow: "prod-e2e") { id } }`);
      expect((await startProd()).errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
      await t.api.gql(`mutation { grantDomain(team: "e2e-ops", domain: production) { id } }`);
      await t.api.gql(`mutation { grantDomain(team: "e2e-ops", domain: adhoc) { id } }`);
      const started = await startProd();
      expect(started.errors).toBeUndefined();
      // the run's data is readable now too
      expect((await erin.raw(`query ($id: ID!) { run(id: $id) { parameters } }`, { id: started.data.startRun.id })).errors).toBeUndefined();
    });

    it('refuses calls without a valid token with 401 and a typed error', async () => {
      for (const token of [null, 'atl_not-a-real-token']) {
        const result = await apiClient(t.url, token).raw('{ viewer { name } }');
        expect(result.status).toBe(401);
        expect(result.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
      }
      await expect(apiClient(t.url, 'atl_wrong').subscribe(RUN_EVENTS, { runId: '00000000-0000-0000-0000-000000000000' })).rejects.toBeTruthy();
      expect((await t.api.gql('{ viewer { name role } }')).viewer).toEqual({ name: 'admin', role: 'admin' });
    });

    it('runs a DAG with a join to success and streams status, progress, logs and metrics live', async () => {
      await t.createWorkflow({
        name: 'diamond',
        parameters: { greeting: { default: 'hi' } },
        tasks: [
          { name: 'a', module: 'test/echo', parameters: { message: '${params.greeting}', steps: 3 } },
          { name: 'b', module: 'test/echo@latest', dependsOn: ['a'] },
          { name: 'c', module: 'test/echo@1', dependsOn: ['a'] },
          { name: 'd', module: 'test/echo', dependsOn: ['b', 'c'] },
        ],
      });
      const { run, events } = await runToEnd('diamond', { greeting: 'bonjour' });
      expect(run.status).toBe('SUCCEEDED');
      expect(run.parameters).toEqual({ greeting: 'bonjour' });
      const byNode = Object.fromEntries(run.tasks.map((task: any) => [task.node, task]));
      for (const node of ['a', 'b', 'c', 'd']) {
        expect(byNode[node].status).toBe('SUCCEEDED');
        expect(byNode[node].moduleVersion.version).toBe('1');
      }
      expect(byNode.a.outputs).toEqual({ message: 'bonjour', upstream: [] });
      expect(byNode.d.outputs.upstream).toEqual(['b', 'c']);
      expect(byNode.a.logs.map((l: any) => l.line)).toContain('echo: bonjour; inputs from none');
      expect(byNode.a.progress).toBe(1);

      const kinds = new Set(events.map((e) => e.__typename));
      expect(kinds).toEqual(new Set(['RunStatusEvent', 'TaskStatusEvent', 'TaskProgressEvent', 'TaskLogEvent', 'TaskMetricEvent']));
      // d starts only after both b and c succeeded
      const order = events.filter((e) => e.__typename === 'TaskStatusEvent').map((e) => `${e.node}:${e.status}`);
      const dQueued = order.indexOf('d:QUEUED');
      expect(dQueued).toBeGreaterThan(order.indexOf('b:SUCCEEDED'));
      expect(dQueued).toBeGreaterThan(order.indexOf('c:SUCCEEDED'));
      expect(events.at(-1)).toMatchObject({ __typename: 'RunStatusEvent', runStatus: 'SUCCEEDED' });
    });

    it('fails a run whose task exits non-zero, with its stderr, and skips what depends on it', async () => {
      await t.createWorkflow({
        name: 'breaks',
        tasks: [
          { name: 'boom', module: 'test/fail' },
          { name: 'after', module: 'test/echo', dependsOn: ['boom'] },
        ],
      });
      const { run } = await runToEnd('breaks');
      expect(run.status).toBe('FAILED');
      const [after, boom] = run.tasks;
      expect(boom).toMatchObject({ node: 'boom', status: 'FAILED', exitCode: 3 });
      expect(boom.message).toContain('something went badly wrong');
      expect(after).toMatchObject({ node: 'after', status: 'SKIPPED', reason: 'upstream-failed' });
      expect(run.message).toContain('boom');
    });

    it('retries a failed task up to its limit and records the attempts', async () => {
      await t.createWorkflow({ name: 'retries', tasks: [{ name: 'boom', module: 'test/fail', retries: 2, retryDelaySeconds: 0.2 }] });
      const { run, events } = await runToEnd('retries');
      expect(run.status).toBe('FAILED');
      expect(run.tasks[0]).toMatchObject({ status: 'FAILED', attempt: 3 });
      const retrying = events.filter((e) => e.__typename === 'TaskStatusEvent' && e.status === 'RETRYING');
      expect(retrying.map((e) => e.message.match(/retrying in ([\d.]+) s/)?.[1])).toEqual(['0.2', '0.4']); // exponential backoff
      const { run: detail } = await t.api.gql(`query ($id: ID!) { run(id: $id) { tasks { attempts { attempt state reason host durationMs } } } }`, {
        id: run.id,
      });
      expect(detail.tasks[0].attempts.map((a: any) => [a.attempt, a.state])).toEqual([
        [1, 'FAILED'],
        [2, 'FAILED'],
        [3, 'FAILED'],
      ]);
    });

    it('times out a task that runs past its limit, with a clear reason', async () => {
      await t.createWorkflow({ name: 'slow', tasks: [{ name: 'nap', module: 'test/sleep', parameters: { ms: 20000 }, timeoutSeconds: 1 }] });
      const started = Date.now();
      const { run } = await runToEnd('slow');
      expect(Date.now() - started).toBeLessThan(15000);
      expect(run.status).toBe('FAILED');
      expect(run.tasks[0]).toMatchObject({ status: 'TIMED_OUT', reason: 'timeout' });
      expect(run.tasks[0].message).toMatch(/1(\.0)? ?s|1000 ?ms|time limit/i);
    });

    it('cancels a running run: the task process is stopped and the run ends CANCELLED', async () => {
      await t.createWorkflow({
        name: 'long',
        tasks: [
          { name: 'nap', module: 'test/sleep', parameters: { ms: 30000 } },
          { name: 'later', module: 'test/echo', dependsOn: ['nap'] },
        ],
      });
      const { startRun } = await t.api.gql(START, { w: 'long' });
      const seen = t.api.subscribe<any>(RUN_EVENTS, { runId: startRun.id }, terminal);
      // wait until the task reports progress, i.e. its process is running
      for (let i = 0; i < 100; i++) {
        const { run } = await t.api.gql(RUN, { id: startRun.id });
        if (run.tasks.find((x: any) => x.node === 'nap').progress > 0) break;
        await sleep(100);
      }
      const { cancelRun } = await t.api.gql(`mutation ($id: ID!) { cancelRun(id: $id) { status message } }`, { id: startRun.id });
      expect(cancelRun.status).toBe('CANCELLED');
      const events = (await seen).map((e) => e.runEvents);
      expect(events.at(-1)).toMatchObject({ runStatus: 'CANCELLED' });
      const { run } = await t.api.gql(RUN, { id: startRun.id });
      expect(run.tasks.map((x: any) => x.status)).toEqual(['CANCELLED', 'CANCELLED']);
      // the executor reports that it stopped the process
      expect(await stoppedOutcome(t, startRun.id)).toBe('CANCELLED');
      const again = await t.api.raw(`mutation ($id: ID!) { cancelRun(id: $id) { status } }`, { id: startRun.id });
      expect(again.errors?.[0]?.extensions?.code).toBe('CONFLICT');
    });

    it('ends a run past its time limit FAILED: the running process is stopped as a cancel stops it', async () => {
      await t.createWorkflow({ name: 'long-limited', timeoutSeconds: 3600, tasks: [{ name: 'nap', module: 'test/sleep', parameters: { ms: 30000 } }] });
      const { startRun } = await t.api.gql(START, { w: 'long-limited' });
      const seen = t.api.subscribe<any>(RUN_EVENTS, { runId: startRun.id }, terminal);
      for (let i = 0; i < 100; i++) {
        const { run } = await t.api.gql(RUN, { id: startRun.id });
        if (run.tasks[0].progress > 0) break;
        await sleep(100);
      }
      // An hour passes: its deadline is moved to now (the process is known to run first).
      const { sql } = await import('drizzle-orm');
      await t.app.database.db.execute(sql`update runs set deadline_at = now() where id = ${startRun.id}`);
      const events = (await seen).map((e) => e.runEvents);
      expect(events.at(-1)).toMatchObject({ runStatus: 'FAILED', message: 'ran past its time limit of 3600 s' });
      const { run } = await t.api.gql(RUN, { id: startRun.id });
      expect(run.tasks[0]).toMatchObject({ status: 'CANCELLED', reason: 'run-timed-out' });
      // the executor reports that it stopped the process
      expect(await stoppedOutcome(t, startRun.id)).toBe('CANCELLED');
    });

    it('rejects invalid workflow specs naming the offending node, and creates nothing', async () => {
      const before = (await t.api.gql('{ workflows { name } }')).workflows.length;
      const cases: [unknown, RegExp][] = [
        [
          {
            name: 'cyc',
            tasks: [
              { name: 'x', module: 'test/echo', dependsOn: ['y'] },
              { name: 'y', module: 'test/echo', dependsOn: ['x'] },
            ],
          },
          /cycle.*x → y → x|cycle.*y → x → y/,
        ],
        [{ name: 'unknown-module', tasks: [{ name: 'x', module: 'test/nope' }] }, /tasks\.x\.module.*unknown module test\/nope/],
        [{ name: 'unknown-tag', tasks: [{ name: 'x', module: 'test/echo@stable' }] }, /tasks\.x\.module.*no tag or version "stable"/],
        [{ name: 'missing-dep', tasks: [{ name: 'x', module: 'test/echo', dependsOn: ['ghost'] }] }, /tasks\.x\.dependsOn.*"ghost"/],
        [{ name: 'bad-params', tasks: [{ name: 'x', module: 'test/echo', parameters: { steps: 'many' } }] }, /tasks\.x\.parameters\.steps.*integer/],
        [
          {
            name: 'dup',
            tasks: [
              { name: 'x', module: 'test/echo' },
              { name: 'x', module: 'test/echo' },
            ],
          },
          /tasks\.x is defined twice/,
        ],
        ['name: [unclosed', /not valid YAML/],
        [{ name: 'no-tasks', tasks: [] }, /tasks/],
      ];
      for (const [spec, pattern] of cases) {
        const result = await t.api.raw(`mutation ($spec: String!) { createWorkflow(spec: $spec) { created } }`, {
          spec: typeof spec === 'string' ? spec : JSON.stringify(spec),
        });
        expect(result.errors?.[0]?.extensions?.code, JSON.stringify(spec)).toBe('INVALID_WORKFLOW');
        expect(result.errors?.[0]?.message).toMatch(pattern);
      }
      expect((await t.api.gql('{ workflows { name } }')).workflows.length).toBe(before);
    });

    it('rejects bad run requests without creating a run', async () => {
      const count = async () => (await t.api.gql('{ runs(first: 100) { edges { node { id } } } }')).runs.edges.length;
      const before = await count();
      const unknown = await t.api.raw(START, { w: 'no-such-workflow' });
      expect(unknown.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
      const badParam = await t.api.raw(START, { w: 'diamond', p: { colour: 'red' } });
      expect(badParam.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
      expect(badParam.errors?.[0]?.message).toContain('colour');
      await t.createWorkflow({
        name: 'typed',
        parameters: { steps: { default: 2 } },
        tasks: [{ name: 'x', module: 'test/echo', parameters: { steps: '${params.steps}' } }],
      });
      const badType = await t.api.raw(START, { w: 'typed', p: { steps: 'lots' } });
      expect(badType.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT'); // the caller's value, as an undeclared one is
      expect(badType.errors?.[0]?.message).toContain('parameters.steps: must be integer (run parameter "steps", given to task "x"'); // named as what the caller passed
      // A default that does not fit is the workflow's own fault, refused when it is created.
      const badDefault = await t.api.raw(`mutation ($spec: String!) { createWorkflow(spec: $spec) { created } }`, {
        spec: JSON.stringify({
          name: 'typed-default',
          parameters: { steps: { default: 'lots' } },
          tasks: [{ name: 'x', module: 'test/echo', parameters: { steps: '${params.steps}' } }],
        }),
      });
      expect(badDefault.errors?.[0]?.extensions?.code).toBe('INVALID_WORKFLOW');
      const badId = await t.api.raw(`{ run(id: "nope") { id } }`);
      expect(badId.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
      expect(await count()).toBe(before);
    });

    it('publishes idempotently and rejects bad archives with typed errors', async () => {
      const again = await t.api.upload(PUBLISH, {}, 'artifact', await packDirectory(`${(await import('../harness/app')).fixturesDir}/modules/echo`));
      expect(again.data.publishModuleVersion).toMatchObject({ created: false, version: { version: '1' } });
      const garbage = await t.api.upload(PUBLISH, {}, 'artifact', new TextEncoder().encode('not a tarball'));
      expect(garbage.errors?.[0]?.extensions?.code).toBe('INVALID_MANIFEST');
      const mismatch = await t.api.upload(
        PUBLISH,
        { digest: `sha256:${'0'.repeat(64)}` },
        'artifact',
        await packDirectory(`${(await import('../harness/app')).fixturesDir}/modules/fail`),
      );
      expect(mismatch.errors?.[0]?.extensions?.code).toBe('DIGEST_MISMATCH');
      const { modules } = await t.api.gql('{ modules { fullName tags { tag version { version } } } }');
      expect(modules.map((m: any) => m.fullName)).toEqual(['test/echo', 'test/fail', 'test/sleep']);
    });

    it('pages through runs newest first with Relay cursors', async () => {
      const page1 = (await t.api.gql('{ runs(first: 2) { edges { cursor node { id createdAt } } pageInfo { hasNextPage endCursor } } }')).runs;
      expect(page1.edges).toHaveLength(2);
      expect(page1.pageInfo.hasNextPage).toBe(true);
      const page2 = (
        await t.api.gql('query ($after: String) { runs(first: 2, after: $after) { edges { node { id createdAt } } } }', { after: page1.pageInfo.endCursor })
      ).runs;
      const ids = [...page1.edges, ...page2.edges].map((e: any) => e.node.id);
      expect(new Set(ids).size).toBe(ids.length);
      const times = [...page1.edges, ...page2.edges].map((e: any) => Date.parse(e.node.createdAt));
      expect([...times].sort((a, b) => b - a)).toEqual(times);
      const filtered = (
        await t.api.gql('{ runs(first: 50, filter: { workflow: "breaks", status: [FAILED] }) { edges { node { status workflow { name } } } } }')
      ).runs.edges;
      expect(filtered.length).toBeGreaterThan(0);
      expect(filtered.every((e: any) => e.node.workflow.name === 'breaks')).toBe(true);
    });

    it('serves subscriptions over SSE too', async () => {
      const { startRun } = await t.api.gql(START, { w: 'diamond' });
      const res = await fetch(`${t.url}/graphql`, {
        method: 'POST',
        headers: { authorization: `Bearer ${t.app.adminToken}`, 'content-type': 'application/json', accept: 'text/event-stream' },
        body: JSON.stringify({ query: RUN_EVENTS, variables: { runId: startRun.id } }),
      });
      expect(res.headers.get('content-type')).toContain('text/event-stream');
      const text = await res.text(); // the stream ends when the run does
      expect(text).toContain('"runStatus":"SUCCEEDED"');
    });
  });
}

/** The state of the first attempt result the executor recorded for a run (waits up to 10 s for it). */
async function stoppedOutcome(t: TestApp, runId: string): Promise<string | undefined> {
  const { taskEvents } = await import('../../server/db/tables/task-events');
  const { and, eq } = await import('drizzle-orm');
  for (let i = 0; i < 100; i++) {
    const [result] = await t.app.database.db
      .select()
      .from(taskEvents)
      .where(and(eq(taskEvents.runId, runId), eq(taskEvents.kind, 'result')));
    if (result) return (result.payload as any).outcome.state;
    await sleep(100);
  }
  return undefined;
}
