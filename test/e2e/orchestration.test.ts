// Orchestration end to end on the embedded stack: trigger rules, concurrency limits, idempotent starts, clone
// and rerun with pinned versions, and fail-over of a task whose host went silent.
import { setTimeout as sleep } from 'node:timers/promises';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tasks } from '../../server/db/tables/runs';
import { startTestApp, type TestApp } from '../harness/app';
import { RUN_EVENTS } from '../harness/client';

const START = `mutation ($w: String!, $p: JSON, $k: String) { startRun(workflow: $w, parameters: $p, idempotencyKey: $k) { id status message } }`;
const RUN = `query ($id: ID!) { run(id: $id) { id status message trigger sourceRunId parameters tasks { id node status attempt reason message outputs reusedFromTaskId moduleVersion { version } } } }`;
const terminal = (e: any) => e.runEvents.__typename === 'RunStatusEvent' && ['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(e.runEvents.runStatus);

describe('orchestration', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ ATELIER_POOL_LIMITS: 'limited=1', ATELIER_POOLS: 'local,noop,limited' });
    for (const m of ['echo', 'fail', 'sleep']) await t.publishFixture(m);
  });
  afterAll(() => t?.stop());

  const watch = (runId: string) => t.api.subscribe<any>(RUN_EVENTS, { runId }, terminal).then((events) => events.map((e) => e.runEvents));
  const getRun = async (id: string) => (await t.api.gql(RUN, { id })).run;
  const byNode = (run: any) => Object.fromEntries(run.tasks.map((x: any) => [x.node, x]));
  async function runToEnd(workflow: string, parameters?: object) {
    const { startRun } = await t.api.gql(START, { w: workflow, p: parameters ?? null });
    const events = await watch(startRun.id);
    return { run: await getRun(startRun.id), events };
  }

  it('honours trigger rules: all_done and any_failed run after a failure, all_succeeded is skipped', async () => {
    await t.createWorkflow({
      name: 'rules',
      tasks: [
        { name: 'ok', module: 'test/echo' },
        { name: 'bad', module: 'test/fail' },
        { name: 'join', module: 'test/echo', dependsOn: ['ok', 'bad'] },
        { name: 'cleanup', module: 'test/echo', dependsOn: ['ok', 'bad'], trigger: 'all_done' },
        { name: 'alert', module: 'test/echo', dependsOn: ['ok', 'bad'], trigger: 'any_failed' },
        { name: 'after-join', module: 'test/echo', dependsOn: ['join'] },
        { name: 'never-alerted', module: 'test/echo', dependsOn: ['ok'], trigger: 'any_failed' },
      ],
    });
    const { run } = await runToEnd('rules');
    const n = byNode(run);
    expect(run.status).toBe('FAILED');
    expect(n.join.status).toBe('SKIPPED');
    expect(n['after-join'].status).toBe('SKIPPED');
    expect(n.cleanup.status).toBe('SUCCEEDED');
    expect(n.alert.status).toBe('SUCCEEDED');
    expect(n['never-alerted'].status).toBe('SKIPPED');
    expect(n.join.message).toContain('all_succeeded');
  });

  it('keeps at most maxParallelTasks of a run queued or running, and at most the pool limit', async () => {
    await t.createWorkflow({
      name: 'wide',
      concurrency: { maxParallelTasks: 2 },
      tasks: Array.from({ length: 6 }, (_, i) => ({ name: `s${i}`, module: 'test/sleep', parameters: { ms: 150 } })),
    });
    await t.createWorkflow({
      name: 'pooled',
      tasks: Array.from({ length: 3 }, (_, i) => ({ name: `p${i}`, module: 'test/sleep', parameters: { ms: 150 }, pool: 'limited' })),
    });
    for (const [workflow, limit] of [
      ['wide', 2],
      ['pooled', 1],
    ] as const) {
      const { startRun } = await t.api.gql(START, { w: workflow });
      const events = await watch(startRun.id);
      // Each task's status as the events tell it, the subscription's snapshot first: on a loaded machine the run may
      // be under way when it starts, its first tasks past QUEUED (counting QUEUED events alone then saw a peak of 1).
      const status = new Map<string, string>();
      let peak = 0;
      for (const e of events.filter((x) => x.__typename === 'TaskStatusEvent')) {
        status.set(e.node, e.status);
        peak = Math.max(peak, [...status.values()].filter((s) => s === 'QUEUED' || s === 'RUNNING').length);
      }
      expect(peak, workflow).toBe(limit);
      expect((await getRun(startRun.id)).status).toBe('SUCCEEDED');
    }
  });

  it('holds runs beyond maxActiveRuns queued, with a reason, and admits them in order', async () => {
    await t.createWorkflow({
      name: 'one-at-a-time',
      concurrency: { maxActiveRuns: 1 },
      tasks: [{ name: 'nap', module: 'test/sleep', parameters: { ms: 300 } }],
    });
    const first = (await t.api.gql(START, { w: 'one-at-a-time' })).startRun;
    const second = (await t.api.gql(START, { w: 'one-at-a-time' })).startRun;
    expect(second.message).toContain('allows 1 active run');
    const [a, b] = await Promise.all([watch(first.id), watch(second.id)]);
    const endOfFirst = Date.parse(a.at(-1).at);
    const secondQueued = b.find((e: any) => e.__typename === 'TaskStatusEvent' && e.status === 'QUEUED');
    expect(Date.parse(secondQueued.at ?? b.at(-1).at)).toBeGreaterThanOrEqual(endOfFirst - 5);
    expect((await getRun(second.id)).status).toBe('SUCCEEDED');
  });

  it('returns the same run for a repeated idempotency key, even when the requests race', async () => {
    await t.createWorkflow({ name: 'idem', tasks: [{ name: 'x', module: 'test/echo' }] });
    const results = await Promise.all(Array.from({ length: 5 }, () => t.api.gql(START, { w: 'idem', k: 'deploy-42' })));
    expect(new Set(results.map((r) => r.startRun.id)).size).toBe(1);
    const again = await t.api.raw(START, { w: 'rules', k: 'deploy-42' });
    expect(again.errors?.[0]?.extensions?.code).toBe('CONFLICT');
  });

  it('answers startRun with the run as stored, though it dispatches before the insert has answered', async () => {
    // A parameter whose keys jsonb orders otherwise (shorter keys first): the answer shows it as every later read does.
    await t.createWorkflow({
      name: 'as-stored',
      parameters: { settings: { default: {} } },
      tasks: [{ name: 'x', module: 'test/echo' }],
    });
    const FIELDS = 'id trigger parameters createdAt message';
    const { startRun } = await t.api.gql(`mutation { startRun(workflow: "as-stored", parameters: { settings: { bb: 2, c: "y" } }) { ${FIELDS} } }`);
    const { run } = await t.api.gql(`query ($id: ID!) { run(id: $id) { ${FIELDS} } }`, { id: startRun.id });
    expect(JSON.stringify(startRun)).toBe(JSON.stringify(run));
    await watch(startRun.id);
  });

  it('clones with changed parameters on the pinned module versions, even after a tag moved', async () => {
    await t.createWorkflow({
      name: 'greet',
      parameters: { greeting: { default: 'hi' } },
      tasks: [{ name: 'say', module: 'test/echo@latest', parameters: { message: '${params.greeting}' } }],
    });
    const { run: source } = await runToEnd('greet', { greeting: 'hello' });
    expect(source.tasks[0].moduleVersion.version).toBe('1');
    // Publish a new echo version: `latest` now points at 2, but the clone must keep the source's 1.
    const { packDirectory } = await import('../../server/artifacts/archive');
    const { cp, mkdtemp, appendFile } = await import('node:fs/promises');
    const { fixturesDir } = await import('../harness/app');
    const dir = await mkdtemp(`${t.dataDir}/echo-v2-`);
    await cp(`${fixturesDir}/modules/echo`, dir, { recursive: true });
    await appendFile(`${dir}/main.mjs`, '\n// v2\n');
    const published = await t.api.upload(
      `mutation ($artifact: File!) { publishModuleVersion(artifact: $artifact) { version { version } } }`,
      {},
      'artifact',
      await packDirectory(dir),
    );
    expect(published.data.publishModuleVersion.version.version).toBe('2');

    const { cloneRun } = await t.api.gql(`mutation ($id: ID!, $p: JSON) { cloneRun(id: $id, parameters: $p) { id trigger } }`, {
      id: source.id,
      p: { greeting: 'salut' },
    });
    expect(cloneRun.trigger).toBe('CLONE');
    await watch(cloneRun.id);
    const clone = await getRun(cloneRun.id);
    expect(clone).toMatchObject({ status: 'SUCCEEDED', sourceRunId: source.id, parameters: { greeting: 'salut' } });
    expect(clone.tasks[0].moduleVersion.version).toBe('1');
    expect(clone.tasks[0].outputs.message).toBe('salut');
    const bad = await t.api.raw(`mutation ($id: ID!, $p: JSON) { cloneRun(id: $id, parameters: $p) { id } }`, { id: source.id, p: { nope: 1 } });
    expect(bad.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });

  it('reruns from failure reusing succeeded results, and can swap a node’s module version', async () => {
    await t.createWorkflow({
      name: 'pipeline',
      tasks: [
        { name: 'a', module: 'test/echo' },
        { name: 'b', module: 'test/echo', dependsOn: ['a'] },
        { name: 'flaky', module: 'test/fail', dependsOn: ['a'] },
        { name: 'end', module: 'test/echo', dependsOn: ['b', 'flaky'] },
      ],
    });
    const { run: source } = await runToEnd('pipeline');
    expect(source.status).toBe('FAILED');
    const src = byNode(source);

    // Swap the failing node to the echo module: only it and its downstream execute again.
    const { rerunRun } = await t.api.gql(
      `mutation ($id: ID!) { rerunRun(id: $id, from: FAILED, modules: [{ node: "flaky", module: "test/echo@1" }]) { id trigger } }`,
      { id: source.id },
    );
    await watch(rerunRun.id);
    const rerun = byNode(await getRun(rerunRun.id));
    expect(rerun.a).toMatchObject({ status: 'SUCCEEDED', reusedFromTaskId: src.a.id, reason: 'reused' });
    expect(rerun.b).toMatchObject({ status: 'SUCCEEDED', reusedFromTaskId: src.b.id });
    expect(rerun.flaky).toMatchObject({ status: 'SUCCEEDED', reusedFromTaskId: null, moduleVersion: { version: '1' } });
    expect(rerun.end).toMatchObject({ status: 'SUCCEEDED', reusedFromTaskId: null });
    expect(rerun.b.outputs).toEqual(src.b.outputs);

    const unknown = await t.api.raw(`mutation ($id: ID!) { rerunRun(id: $id, from: NODES, nodes: ["ghost"]) { id } }`, { id: source.id });
    expect(unknown.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(unknown.errors?.[0]?.message).toContain('"ghost"');

    const all = (await t.api.gql(`mutation ($id: ID!) { rerunRun(id: $id, from: ALL) { id } }`, { id: rerunRun.id })).rerunRun;
    await watch(all.id);
    expect(Object.values(byNode(await getRun(all.id))).every((x: any) => x.reusedFromTaskId === null)).toBe(true);
  });

  it('fails over a task whose host went silent: a new attempt runs and the old one is told to stop', async () => {
    await t.createWorkflow({ name: 'silent', tasks: [{ name: 'nap', module: 'test/sleep', parameters: { ms: 1500 } }] });
    const { startRun } = await t.api.gql(START, { w: 'silent' });
    const events = watch(startRun.id);
    let task: any;
    for (let i = 0; i < 100; i++) {
      [task] = await t.app.database.db.select().from(tasks).where(eq(tasks.runId, startRun.id));
      if (task.status === 'RUNNING') break;
      await sleep(50);
    }
    // The host is alive, but as far as the control plane can tell it has been silent for ten minutes.
    await t.app.database.db
      .update(tasks)
      .set({ heartbeatAt: new Date(Date.now() - 600_000) })
      .where(eq(tasks.id, task.id));
    await t.app.services.orchestrator.tick();
    const seen = await events;
    const retrying = seen.find((e: any) => e.status === 'RETRYING');
    expect(retrying.message).toContain('presumed lost');
    expect(retrying.message).toContain('not counted against');
    const run = await getRun(startRun.id);
    expect(run.status).toBe('SUCCEEDED');
    expect(run.tasks[0].attempt).toBe(2);
  });

  it('runs a nested workflow as a linked child run and passes its outputs on', async () => {
    await t.createWorkflow({
      name: 'inner',
      parameters: { word: {} },
      tasks: [
        { name: 'first', module: 'test/echo', parameters: { message: '${params.word}' } },
        { name: 'second', module: 'test/echo', dependsOn: ['first'] },
      ],
    });
    await t.createWorkflow({
      name: 'outer',
      tasks: [
        { name: 'sub', workflow: 'inner', parameters: { word: 'nested' } },
        { name: 'after', module: 'test/echo', dependsOn: ['sub'] },
      ],
    });
    const { run } = await runToEnd('outer');
    expect(run.status).toBe('SUCCEEDED');
    const n = byNode(run);
    expect(n.sub.outputs.first.message).toBe('nested');
    const { run: detail } = await t.api.gql(
      `query ($id: ID!) { run(id: $id) { childRuns { id status trigger parentRunId workflow { name } } tasks { node kind childRun { id } } } }`,
      { id: run.id },
    );
    expect(detail.childRuns).toHaveLength(1);
    expect(detail.childRuns[0]).toMatchObject({ status: 'SUCCEEDED', trigger: 'PARENT', parentRunId: run.id, workflow: { name: 'inner' } });
    expect(detail.tasks.find((x: any) => x.node === 'sub')).toMatchObject({ kind: 'workflow', childRun: { id: detail.childRuns[0].id } });

    const bad = await t.api.raw(`mutation ($spec: String!) { createWorkflow(spec: $spec) { created } }`, {
      spec: JSON.stringify({ name: 'outer2', tasks: [{ name: 'sub', workflow: 'inner', parameters: { wrod: 'x' } }] }),
    });
    expect(bad.errors?.[0]?.extensions?.code).toBe('INVALID_WORKFLOW');
    expect(bad.errors?.[0]?.message).toContain('wrod');
  });

  it('ends a workflow node whose nested run is served wholly from cache, and runs what follows it', async () => {
    // Run again with the same inputs, the nested run's every task is a cache hit: it ends inside its own creation,
    // before the node could name it (the parent stayed QUEUED for ever, its node RUNNING, the next node PENDING).
    await t.createWorkflow({ name: 'cached-inner', tasks: [{ name: 'a', module: 'test/echo', parameters: { message: 'once' } }] });
    await t.createWorkflow({
      name: 'cached-outer',
      tasks: [
        { name: 'sub', workflow: 'cached-inner' },
        { name: 'after', module: 'test/echo', dependsOn: ['sub'] },
      ],
    });
    const first = await runToEnd('cached-outer');
    expect(first.run.status).toBe('SUCCEEDED');
    const again = await runToEnd('cached-outer');
    expect(again.run.status).toBe('SUCCEEDED');
    const n = byNode(again.run);
    expect(n.sub).toMatchObject({ status: 'SUCCEEDED' });
    expect(n.sub.outputs.a.message).toBe('once');
    expect(n.after.status).toBe('SUCCEEDED');
    const { run: detail } = await t.api.gql(`query ($id: ID!) { run(id: $id) { childRuns { id status tasks { node cacheHit { savedMs } } } } }`, {
      id: again.run.id,
    });
    expect(detail.childRuns).toHaveLength(1);
    expect(detail.childRuns[0].status).toBe('SUCCEEDED');
    expect(detail.childRuns[0].tasks[0].cacheHit).not.toBeNull();
  });

  it('refuses cycles across nested workflows, naming the path', async () => {
    await t.createWorkflow({ name: 'ping', tasks: [{ name: 'x', module: 'test/echo' }] });
    await t.createWorkflow({ name: 'pong', tasks: [{ name: 'call', workflow: 'ping' }] });
    const result = await t.api.raw(`mutation ($spec: String!) { createWorkflow(spec: $spec) { created } }`, {
      spec: JSON.stringify({ name: 'ping', tasks: [{ name: 'call', workflow: 'pong' }] }),
    });
    expect(result.errors?.[0]?.extensions?.code).toBe('INVALID_WORKFLOW');
    expect(result.errors?.[0]?.message).toMatch(/cycle across nested workflows: ping@new → pong@1 → ping@new/);
  });

  it('cancels nested runs with their parent', async () => {
    await t.createWorkflow({ name: 'inner-slow', tasks: [{ name: 'nap', module: 'test/sleep', parameters: { ms: 20000 } }] });
    await t.createWorkflow({ name: 'outer-slow', tasks: [{ name: 'sub', workflow: 'inner-slow' }] });
    const { startRun } = await t.api.gql(START, { w: 'outer-slow' });
    let child: any;
    for (let i = 0; i < 100 && !child; i++) {
      child = (await t.api.gql(`query ($id: ID!) { run(id: $id) { childRuns { id status } } }`, { id: startRun.id })).run.childRuns[0];
      if (!child) await sleep(50);
    }
    await t.api.gql(`mutation ($id: ID!) { cancelRun(id: $id) { status } }`, { id: startRun.id });
    expect((await getRun(child.id)).status).toBe('CANCELLED');
  });

  it('maps a module over a list, from run parameters or an upstream output, collecting results in order', async () => {
    await t.createWorkflow({
      name: 'fan',
      parameters: { sizes: { default: [3, 1, 2] } },
      tasks: [
        { name: 'each', module: 'test/echo', map: { over: '${params.sizes}', as: 'steps' }, parameters: { message: 'item' } },
        { name: 'source', module: 'test/echo' },
        { name: 'names', module: 'test/echo', dependsOn: ['source'] },
        { name: 'each-name', module: 'test/echo', dependsOn: ['names'], map: { over: '${outputs.names.upstream}', as: 'message' } },
        { name: 'after', module: 'test/echo', dependsOn: ['each', 'each-name'] },
      ],
    });
    const { run } = await runToEnd('fan');
    expect(run.status).toBe('SUCCEEDED');
    const n = byNode(run);
    expect(n.each.outputs.results).toHaveLength(3);
    expect(['each[0]', 'each[1]', 'each[2]'].every((k) => n[k]?.status === 'SUCCEEDED')).toBe(true);
    expect(n['each-name'].outputs.results.map((r: any) => r.message)).toEqual(['source']);
    expect(n.after.status).toBe('SUCCEEDED');
    // Again, every item served from cache: the map nodes still collect and end, and what follows runs.
    const { run: again } = await runToEnd('fan');
    expect(again.status).toBe('SUCCEEDED');
    expect(byNode(again).each.outputs.results).toHaveLength(3);
  });

  it('rejects a map over a non-list: at creation when it is known, at run time when it comes from an output', async () => {
    const early = await t.api.raw(`mutation ($spec: String!) { createWorkflow(spec: $spec) { created } }`, {
      spec: JSON.stringify({ name: 'bad-map', parameters: { n: { default: 5 } }, tasks: [{ name: 'm', module: 'test/echo', map: { over: '${params.n}' } }] }),
    });
    expect(early.errors?.[0]?.extensions?.code).toBe('INVALID_WORKFLOW');
    expect(early.errors?.[0]?.message).toContain('tasks.m.map.over');
    await t.createWorkflow({
      name: 'late-bad-map',
      tasks: [
        { name: 's', module: 'test/echo' },
        { name: 'm', module: 'test/echo', dependsOn: ['s'], map: { over: '${outputs.s.message}', as: 'message' } },
      ],
    });
    const { run } = await runToEnd('late-bad-map');
    expect(run.status).toBe('FAILED');
    expect(byNode(run).m).toMatchObject({ status: 'FAILED', reason: 'map-over-non-list' });
    expect(byNode(run).m.message).toContain('not a list');
  });

  it('wires an upstream output into a parameter, checking it against the module when it exists', async () => {
    await t.createWorkflow({
      name: 'wired',
      tasks: [
        { name: 'a', module: 'test/echo', parameters: { message: 'from a' } },
        { name: 'b', module: 'test/echo', dependsOn: ['a'], parameters: { message: '${outputs.a.message}' } },
        { name: 'wrong-type', module: 'test/echo', dependsOn: ['a'], parameters: { steps: '${outputs.a.message}' } },
        { name: 'no-such-output', module: 'test/echo', dependsOn: ['a'], parameters: { message: '${outputs.a.nope}' } },
      ],
    });
    const { run } = await runToEnd('wired');
    const n = byNode(run);
    expect(n.b).toMatchObject({ status: 'SUCCEEDED', outputs: { message: 'from a' } });
    expect(n['wrong-type']).toMatchObject({ status: 'FAILED', reason: 'inputs-invalid' });
    expect(n['wrong-type'].message).toContain('steps');
    expect(n['no-such-output'].message).toContain('a.nope');
    const bad = await t.api.raw(`mutation ($spec: String!) { createWorkflow(spec: $spec) { created } }`, {
      spec: JSON.stringify({
        name: 'unwired',
        tasks: [
          { name: 'a', module: 'test/echo' },
          { name: 'b', module: 'test/echo', parameters: { message: '${outputs.a.message}' } },
        ],
      }),
    });
    expect(bad.errors?.[0]?.message).toContain('must be listed in dependsOn');
  });

  it('lets a service account start runs with its token; a viewer account may not; revoked tokens stop working', async () => {
    const CREATE = `mutation ($n: String!, $r: Role) { createServiceAccount(name: $n, role: $r) { token identity { name kind role } } }`;
    const ci = (await t.api.gql(CREATE, { n: 'ci-bot', r: 'member' })).createServiceAccount;
    expect(ci.identity).toEqual({ name: 'ci-bot', kind: 'service', role: 'member' });
    const { apiClient } = await import('../harness/client');
    const bot = apiClient(t.url, ci.token);
    const first = await bot.gql(`mutation { startRun(workflow: "idem", idempotencyKey: "ci-build-7") { id createdBy { name } } }`);
    const retry = await bot.gql(`mutation { startRun(workflow: "idem", idempotencyKey: "ci-build-7") { id } }`);
    expect(first.startRun.createdBy.name).toBe('ci-bot');
    expect(retry.startRun.id).toBe(first.startRun.id);

    const viewer = apiClient(t.url, (await t.api.gql(CREATE, { n: 'dash-bot', r: 'viewer' })).createServiceAccount.token);
    const refused = await viewer.raw(`mutation { startRun(workflow: "idem") { id } }`);
    expect(refused.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const notAdmin = await bot.raw(`mutation { createServiceAccount(name: "sneaky") { token } }`);
    expect(notAdmin.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');

    expect((await t.api.gql(`mutation { revokeServiceTokens(name: "ci-bot") }`)).revokeServiceTokens).toBe(1);
    expect((await bot.raw('{ viewer { name } }')).status).toBe(401);
    const dup = await t.api.raw(CREATE, { n: 'dash-bot' });
    expect(dup.errors?.[0]?.extensions?.code).toBe('CONFLICT');
  });
});
