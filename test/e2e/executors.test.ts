// Executor hosts, routing and hot clusters end to end, on the embedded defaults and with a standalone host over
// NATS: hosts announce themselves and are listed live; a GPU task waits (with a reason) until a host with GPUs
// serves its pool; a task on a local hot cluster runs in a warm worker with zero provisioning time.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLocalExecutor } from '../../executors/local';
import { createExecutorHost, type ExecutorHost } from '../../plugins/host';
import { createExecutorRegistry } from '../../plugins/registry';
import { hotClusterLeases } from '../../server/db/tables/executors';
import { startTestApp, type TestApp } from '../harness/app';
import { type ExecutorProcess, startExecutorProcess } from '../harness/executor-process';
import { type NatsServer, startNats } from '../harness/nats';

// refreshCache: these tests are about where and how tasks execute, so none may be served from the cache.
const START = `mutation ($w: String!) { startRun(workflow: $w, refreshCache: true) { id } }`;
const RUN = `query ($id: ID!) { run(id: $id) { status tasks { node status pool gpus hotCluster waitingReason provisioningMs executionMs outputs message } } }`;

describe('executor hosts, routing and hot clusters (embedded)', () => {
  let t: TestApp;
  let gpuHost: ExecutorHost | undefined;

  beforeAll(async () => {
    t = await startTestApp();
    await t.publishFixture('echo');
    await t.publishFixture('gpu-echo');
  });
  afterAll(async () => {
    await gpuHost?.stop();
    await t?.stop();
  });

  const run = async (id: string) => (await t.api.gql(RUN, { id })).run;
  const runToEnd = async (workflow: string) => {
    const { startRun } = await t.api.gql(START, { w: workflow });
    return until(async () => {
      const r = await run(startRun.id);
      return ['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(r.status) && r;
    }, `run of ${workflow} to end`);
  };

  it('lists the embedded host and its pools live, from its heartbeats', async () => {
    const { executorHosts } = await until(
      () => t.api.gql(`{ executorHosts { name executors pools capacity running gpus version live } }`).then((d) => d.executorHosts.length > 0 && d),
      'a heartbeat',
    );
    expect(executorHosts[0]).toMatchObject({ executors: ['local', 'noop'], pools: ['local', 'noop'], gpus: 0, live: true });
    expect(executorHosts[0].capacity).toBeGreaterThan(0);
    const { executorPools } = await t.api.gql(`{ executorPools { name health capacity hosts { name } } }`);
    expect(executorPools.find((p: any) => p.name === 'local')).toMatchObject({ health: 'HEALTHY', hosts: [{ name: executorHosts[0].name }] });
  });

  it('holds a GPU task with a visible reason until a host with GPUs serves its pool, then runs it', async () => {
    await t.createWorkflow({ name: 'needs-gpus', tasks: [{ name: 'train', module: 'test/gpu-echo' }] });
    const { startRun } = await t.api.gql(START, { w: 'needs-gpus' });
    const waiting = await until(async () => {
      const task = (await run(startRun.id)).tasks[0];
      return task.status === 'QUEUED' && task;
    }, 'the GPU task to be queued');
    expect(waiting).toMatchObject({ pool: 'gpu', gpus: 2 });
    expect(waiting.waitingReason).toBe('no executor host serves pool gpu (it needs 2 GPUs); start one with `npx atelier executor --pools gpu --gpus 2`');
    const { executorPools } = await t.api.gql(`{ executorPools { name health queued } }`);
    expect(executorPools.find((p: any) => p.name === 'gpu')).toEqual({ name: 'gpu', health: 'NO_HOSTS', queued: 1 });

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
    const done = await until(async () => {
      const r = await run(startRun.id);
      return r.status === 'SUCCEEDED' && r;
    }, 'the GPU task to run once a GPU host is up');
    expect(done.tasks[0]).toMatchObject({ status: 'SUCCEEDED', waitingReason: null, outputs: { message: 'hello', upstream: [] } });
  });

  it('runs a task on a local hot cluster without provisioning, and a cold one with it', async () => {
    const { createHotCluster } = await t.api.gql(`mutation { createHotCluster(name: "warm", executor: "local", spec: { workers: 2 }) { name pool state } }`);
    expect(createHotCluster).toEqual({ name: 'warm', pool: 'local', state: 'STARTING' });
    await until(() => t.api.gql(`{ hotClusters { name state message } }`).then((d) => d.hotClusters[0]?.state === 'READY'), 'the hot cluster to be warm');

    await t.createWorkflow({ name: 'hot', tasks: [{ name: 'a', module: 'test/echo', hotCluster: 'warm', parameters: { message: 'warm hello' } }] });
    await t.createWorkflow({ name: 'cold', tasks: [{ name: 'a', module: 'test/echo' }] });
    const hot = await runToEnd('hot');
    const cold = await runToEnd('cold');
    expect(hot.tasks[0]).toMatchObject({ status: 'SUCCEEDED', hotCluster: 'warm', provisioningMs: 0, outputs: { message: 'warm hello', upstream: [] } });
    expect(hot.tasks[0].executionMs).toBeGreaterThan(0);
    expect(cold.tasks[0].provisioningMs).toBeGreaterThan(0);
    // the second task on the cluster reuses the unpacked module and the worker spawned behind the first
    const again = await runToEnd('hot');
    expect(again.tasks[0]).toMatchObject({ status: 'SUCCEEDED', provisioningMs: 0 });
    // startRun's hotCluster puts the nodes that name none on the cluster
    const { startRun } = await t.api.gql(`mutation { startRun(workflow: "cold", hotCluster: "warm", refreshCache: true) { id } }`);
    const onCluster = await until(() => run(startRun.id).then((r) => r.status === 'SUCCEEDED' && r), 'the cold workflow on the hot cluster');
    expect(onCluster.tasks[0]).toMatchObject({ hotCluster: 'warm', provisioningMs: 0 });
    const leases = await t.app.database.db.select().from(hotClusterLeases);
    expect(leases).toHaveLength(3);
    expect(leases.every((l) => l.releasedAt !== null)).toBe(true);

    const { endHotCluster } = await t.api.gql(`mutation { endHotCluster(name: "warm") { state message } }`);
    expect(endHotCluster).toEqual({ state: 'ENDED', message: 'ended: ended by admin' });
    const refused = await t.api.raw(START, { w: 'hot' });
    expect(refused.errors?.[0]?.extensions?.code).toBe('INVALID_WORKFLOW');
    expect(refused.errors?.[0]?.message).toContain('no live hot cluster named warm');
  });

  it("says when a hot cluster's executor cannot keep one", async () => {
    await t.api.gql(`mutation { createHotCluster(name: "no-keeper", executor: "noop", pool: "noop") { name } }`);
    const { hotClusters } = await until(
      () => t.api.gql(`{ hotClusters { name state message } }`).then((d) => d.hotClusters.some((c: any) => c.message?.includes('cannot keep')) && d),
      'the reason the cluster is not warm',
    );
    expect(hotClusters.find((c: any) => c.name === 'no-keeper')).toMatchObject({
      state: 'STARTING',
      message: expect.stringMatching(/^executor noop cannot keep hot clusters \(on \S+-embedded\); its tasks run cold$/),
    });
    await t.api.gql(`mutation { endHotCluster(name: "no-keeper") { state } }`);
  });

  it('gives a remote (Kubernetes) hot cluster a pool of its own, and says its pods are coming up', async () => {
    // A host with the kubernetes-gpu executor, as its heartbeat describes it (no Kubernetes API is needed here).
    const heartbeat = {
      hostId: 'k8s-submitter-1',
      host: 'k8s-submitter',
      executors: ['kubernetes-gpu'],
      pools: ['gpu'],
      capacity: 4,
      running: 0,
      gpus: 0,
      hotClusters: [],
      hotClusterExecutors: ['kubernetes-gpu'],
      remoteHotClusterExecutors: ['kubernetes-gpu'],
      version: 'test',
      startedAt: new Date().toISOString(),
      at: new Date().toISOString(),
    };
    await t.app.bus.publishControl('host-heartbeat', heartbeat);
    // Known first: a create tried before the heartbeat is read succeeds on pool gpu, and the next one is refused as a
    // duplicate (a fresh-clone CI saw it).
    await until(
      () => t.api.gql(`{ executorHosts { name } }`).then((d) => d.executorHosts.some((h: any) => h.name === 'k8s-submitter')),
      'the submitter host to be known',
    );
    const shared = await t.api.raw(`mutation { createHotCluster(name: "pods", executor: "kubernetes-gpu", pool: "gpu") { name } }`);
    expect(shared.errors?.[0]?.message).toMatch(/pool gpu is served by k8s-submitter: give the cluster a pool of its own \(--pool pods\)/);
    await t.api.gql(`mutation { createHotCluster(name: "pods", executor: "kubernetes-gpu", pool: "gpu-warm") { name } }`);
    const { hotClusters } = await t.api.gql(`{ hotClusters { name state message } }`);
    expect(hotClusters.find((c: any) => c.name === 'pods')).toMatchObject({
      state: 'STARTING',
      message: 'starting: kubernetes-gpu on k8s-submitter is bringing up its pods, which will serve pool gpu-warm',
    });
    await t.api.gql(`mutation { endHotCluster(name: "pods") { state } }`);
  });

  it('ends a hot cluster left idle past its timeout', async () => {
    await t.api.gql(`mutation { createHotCluster(name: "brief", executor: "local", spec: { workers: 1 }, idleTimeoutSeconds: 1) { name } }`);
    const ended = await until(
      () =>
        t.api
          .gql(`{ hotClusters(includeEnded: true) { name state message } }`)
          .then((d) => d.hotClusters.find((c: any) => c.name === 'brief' && c.state === 'ENDED')),
      'the idle cluster to end',
    );
    expect(ended.message).toBe('ended: idle for 1 s');
  });

  it('refuses bad hot cluster input with a typed error', async () => {
    const bad = await t.api.raw(`mutation { createHotCluster(name: "Not OK", executor: "local") { name } }`);
    expect(bad.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    const missing = await t.api.raw(`mutation { endHotCluster(name: "nope") { name } }`);
    expect(missing.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
  });
});

describe('declared GPU pools (ATELIER_GPU_POOLS)', () => {
  it('refuses a GPU request no declared pool can serve when the workflow is created, saying which pools there are', async () => {
    const t = await startTestApp({ ATELIER_GPU_POOLS: 'gpu-t4=1' });
    try {
      await t.publishFixture('gpu-echo');
      const spec = JSON.stringify({ name: 'too-big', tasks: [{ name: 'train', module: 'test/gpu-echo' }] });
      const refused = await t.api.raw(`mutation ($spec: String!) { createWorkflow(spec: $spec) { created } }`, { spec });
      expect(refused.errors?.[0]?.extensions?.code).toBe('INVALID_WORKFLOW');
      expect(refused.errors?.[0]?.message).toBe(
        'The workflow cannot run: tasks.train: module test/gpu-echo@latest asks for 2 GPUs but no pool has that many per host (ATELIER_GPU_POOLS: gpu-t4=1); ask for fewer, or declare and start a larger pool',
      );
    } finally {
      await t.stop();
    }
  });
});

describe('a standalone executor host over NATS JetStream', () => {
  let nats: NatsServer | undefined;
  let t: TestApp | undefined;
  let host: ExecutorProcess | undefined;
  afterAll(async () => {
    await host?.stop();
    await t?.stop();
    await nats?.stop();
  });

  it("is listed live from its heartbeats with its GPUs, and once stopped its pool's tasks say when it was last seen", async () => {
    nats = await startNats();
    // Hosts announce every 5 s: stale after 3 s, the host is live for part of each beat and stale soon after it stops.
    t = await startTestApp({ NATS_URL: nats.url, ATELIER_HOST_STALE_SECONDS: '3' });
    await t.publishFixture('gpu-echo');
    host = await startExecutorProcess(
      { NATS_URL: nats.url, ATELIER_URL: t.url, ATELIER_TOKEN: t.app.adminToken, ATELIER_DATA_DIR: path.join(t.dataDir, 'executor') },
      [],
      ['--pools', 'gpu-a100', '--gpus', '2', '--concurrency', '1'],
    );
    const api = t.api;
    const { executorPools } = await until(
      () => api.gql(`{ executorPools { name health gpus capacity hosts { name executors } } }`).then((d) => d.executorPools[0]?.health === 'HEALTHY' && d),
      "the host's heartbeat over NATS",
    );
    expect(executorPools).toEqual([
      { name: 'gpu-a100', health: 'HEALTHY', gpus: 2, capacity: 1, hosts: [{ name: expect.any(String), executors: ['local', 'noop'] }] },
    ]);

    // A GPU task with no pool of its own is routed to the pool whose host advertised the GPUs, and runs there.
    await t.createWorkflow({ name: 'on-gpus', tasks: [{ name: 'train', module: 'test/gpu-echo' }] });
    const first = await api.gql(START, { w: 'on-gpus' });
    const ran = await until(
      () => api.gql(RUN, { id: first.startRun.id }).then((d) => d.run.status === 'SUCCEEDED' && d.run),
      'the GPU task on the standalone host',
    );
    expect(ran.tasks[0]).toMatchObject({ pool: 'gpu-a100', gpus: 2 });

    await host.stop();
    host = undefined;
    const second = await api.gql(START, { w: 'on-gpus' });
    const waiting = await until(
      () =>
        api
          .gql(RUN, { id: second.startRun.id })
          .then((d) => d.run.tasks[0].waitingReason?.startsWith('no live executor host serves pool gpu-a100') && d.run.tasks[0]),
      'the reason the task waits',
    );
    expect(waiting.status).toBe('QUEUED');
    expect(waiting.waitingReason).toMatch(
      /^no live executor host serves pool gpu-a100; last host seen \d+ s ago \(\S+\) — start one with `npx atelier executor --pools gpu-a100 --gpus 2`$/,
    );
  });
});

async function until<T>(probe: () => Promise<T | undefined | null | false>, what: string, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
