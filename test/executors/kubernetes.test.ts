// The kubernetes-gpu executor run for real through the executor host on the memory bus, against the loopback
// Kubernetes stand-in: Job manifests (validated offline with kubernetes-models), multi-node Indexed Jobs, the state
// table end to end, log streaming across dropped streams and 410 re-lists, re-attach, cancel, API faults, a kubectl
// wire check, and the executor contract suite.
import { execFile } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { Job } from 'kubernetes-models/batch/v1/Job';
import { Service } from 'kubernetes-models/v1/Service';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  buildJob,
  buildService,
  createKubernetesGpuExecutor,
  jobNameFor,
  type KubernetesGpuExecutorOptions,
  type KubernetesGpuHandle,
} from '../../executors/kubernetes-gpu/index';
import { parseHotClusterSpec, parseSettings, SettingsError } from '../../executors/kubernetes-gpu/settings';
import type { TaskContext, TaskMessage } from '../../plugins/sdk';
import { type ContractScenario, executorContract } from '../../plugins/testkit';
import { createHostWorld, createScratch, type HostWorld, makeTask, waitFor } from '../plugins/host-harness';
import { createKubernetesStandIn, type KubernetesStandIn, type PodStep, standInCommand } from '../stand-ins/kubernetes';

const manifestOptions = {
  namespace: 'ml',
  image: 'atelier/runner:0.1',
  masterPort: 29500,
  ttlSecondsAfterFinished: 3600,
  artifactBaseUrl: 'https://atelier.internal/',
};
const envOf = (job: ReturnType<typeof buildJob>) =>
  Object.fromEntries((job.spec!.template.spec!.containers[0]!.env ?? []).map((e) => [e.name, e.value ?? e.valueFrom]));

describe('kubernetes-gpu manifests', () => {
  it('builds a GPU Job: limits, affinity, tolerations, deadlines, ttl, podFailurePolicy, Kueue label, context env', () => {
    const task = makeTask({
      taskId: 'Train_Model/ResNet 50 — epoch sweep',
      attempt: 3,
      timeoutMs: 90_500,
      parameters: { lr: 0.1 },
      inputs: { prep: { rows: 3 } },
      module: { ref: 'vision/resnet@2.0.0', digest: `sha256:${'ab'.repeat(32)}`, entrypoint: 'train.py', runtime: 'python3' },
      settings: {},
    });
    const job = buildJob(
      task,
      {
        gpus: 2,
        nodes: 1,
        gpuProduct: ['NVIDIA-A100-SXM4-80GB', 'NVIDIA-H100-80GB-HBM3'],
        nodeSelector: { pool: 'training' },
        cpu: '8',
        memory: '64Gi',
        queue: 'team-a',
        serviceAccount: 'trainer',
      },
      manifestOptions,
    );
    expect(() => new Job(job as never).validate()).not.toThrow();
    const name = job.metadata!.name!;
    expect(name).toBe(jobNameFor(task.taskId, 3));
    expect(name).toMatch(/^[a-z]([-a-z0-9]*[a-z0-9])?$/);
    expect(name.length).toBeLessThanOrEqual(52);
    expect(job.metadata!.labels).toMatchObject({
      'kueue.x-k8s.io/queue-name': 'team-a',
      'atelier.dev/attempt': '3',
      'app.kubernetes.io/managed-by': 'atelier',
    });
    expect(job.metadata!.annotations!['atelier.dev/task-id']).toBe(task.taskId);
    const spec = job.spec!;
    expect(spec).toMatchObject({
      backoffLimit: 0,
      activeDeadlineSeconds: 91,
      ttlSecondsAfterFinished: 3600,
      suspend: true, // Kueue admits by unsuspending
      completions: 1,
      parallelism: 1,
      podFailurePolicy: { rules: [{ action: 'Ignore', onPodConditions: [{ type: 'DisruptionTarget', status: 'True' }] }] },
    });
    const pod = spec.template.spec!;
    expect(pod.restartPolicy).toBe('Never');
    expect(pod.serviceAccountName).toBe('trainer');
    expect(pod.nodeSelector).toEqual({ pool: 'training' });
    expect(pod.tolerations).toEqual([{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }]);
    expect(pod.affinity!.nodeAffinity!.requiredDuringSchedulingIgnoredDuringExecution!.nodeSelectorTerms).toEqual([
      { matchExpressions: [{ key: 'nvidia.com/gpu.product', operator: 'In', values: ['NVIDIA-A100-SXM4-80GB', 'NVIDIA-H100-80GB-HBM3'] }] },
    ]);
    expect(spec.template.metadata!.labels!['kueue.x-k8s.io/queue-name']).toBeUndefined();
    expect(spec.template.metadata!.labels!['atelier.dev/job']).toBe(name);
    const container = pod.containers[0]!;
    expect(container.resources).toEqual({ requests: { cpu: '8', memory: '64Gi' }, limits: { 'nvidia.com/gpu': '2', memory: '64Gi' } });
    expect(container.terminationMessagePolicy).toBe('FallbackToLogsOnError');
    expect(envOf(job)).toMatchObject({
      ATELIER_TASK_ID: task.taskId,
      ATELIER_RUN_ID: task.runId,
      ATELIER_ATTEMPT: '3',
      ATELIER_PARAMS: '{"lr":0.1}',
      ATELIER_INPUTS: '{"prep":{"rows":3}}',
      ATELIER_MODULE_DIGEST: `sha256:${'ab'.repeat(32)}`,
      ATELIER_ARTIFACT_URL: `https://atelier.internal/artifacts/sha256%3A${'ab'.repeat(32)}`,
    });
    expect(envOf(job).MASTER_ADDR).toBeUndefined();
  });

  it('runs pods only as a service account the operator lists, for tasks and hot clusters alike', () => {
    for (const parse of [parseSettings, parseHotClusterSpec] as const) {
      expect(() => parse({ serviceAccount: 'cluster-admin' }, { gpus: 1 })).toThrow(/ATELIER_K8S_SERVICE_ACCOUNTS/);
      expect(() => parse({ serviceAccount: 'cluster-admin' }, { gpus: 1, serviceAccounts: ['trainer'] })).toThrow(SettingsError);
    }
    expect(parseSettings({ serviceAccount: 'trainer' }, { gpus: 1, serviceAccounts: ['trainer'] }).serviceAccount).toBe('trainer');
    expect(parseSettings({}, { gpus: 1 }).serviceAccount).toBeUndefined();
  });

  it('names Jobs deterministically per (task, attempt) within the DNS label limits', () => {
    const long = 'x'.repeat(300);
    expect(jobNameFor('t-1', 1)).toBe(jobNameFor('t-1', 1));
    expect(jobNameFor('t-1', 1)).not.toBe(jobNameFor('t-1', 2));
    expect(jobNameFor('A/B', 1)).not.toBe(jobNameFor('a-b', 1)); // same slug, different hash
    for (const id of [long, '___', 'Ünïcode ✓', '123', '-lead-trail-']) {
      const name = jobNameFor(id, 12345);
      expect(name).toMatch(/^[a-z]([-a-z0-9]*[a-z0-9])?$/);
      expect(name.length).toBeLessThanOrEqual(52);
    }
  });

  it('builds a multi-node Indexed Job with a headless Service and the torchrun rendezvous environment', () => {
    const task = makeTask({ taskId: 'ddp-train', timeoutMs: 60_000 });
    const job = buildJob(task, { gpus: 8, nodes: 4 }, manifestOptions);
    expect(() => new Job(job as never).validate()).not.toThrow();
    const name = job.metadata!.name!;
    expect(job.spec).toMatchObject({ completionMode: 'Indexed', completions: 4, parallelism: 4, backoffLimit: 0 });
    expect(job.spec!.template.spec!.subdomain).toBe(name);
    expect(job.spec!.template.spec!.containers[0]!.ports).toEqual([{ name: 'rendezvous', containerPort: 29500, protocol: 'TCP' }]);
    const rank = { fieldRef: { fieldPath: "metadata.annotations['batch.kubernetes.io/job-completion-index']" } };
    expect(envOf(job)).toMatchObject({
      MASTER_ADDR: `${name}-0.${name}`,
      MASTER_PORT: '29500',
      NNODES: '4',
      WORLD_SIZE: '4',
      NODE_RANK: rank,
      PET_NNODES: '4',
      PET_NODE_RANK: rank,
      PET_MASTER_ADDR: `${name}-0.${name}`,
      PET_NPROC_PER_NODE: '8',
    });
    const service = buildService({ ...job, metadata: { ...job.metadata, uid: 'uid-1' } }, manifestOptions);
    expect(() => new Service(service as never).validate()).not.toThrow();
    expect(service.metadata!.ownerReferences).toEqual([
      { apiVersion: 'batch/v1', kind: 'Job', name, uid: 'uid-1', controller: true, blockOwnerDeletion: false },
    ]);
    expect(service.spec).toMatchObject({ clusterIP: 'None', publishNotReadyAddresses: true, selector: { 'atelier.dev/job': name } });
  });
});

describe('kubernetes-gpu executor against the stand-in', () => {
  let standIn: KubernetesStandIn;
  let world: HostWorld;
  let scratch: ReturnType<typeof createScratch>;
  let clockOffset = 0;
  const clock = () => Date.now() + clockOffset;

  beforeEach(async () => {
    clockOffset = 0;
    standIn = await createKubernetesStandIn({ clock, namespaces: ['default', 'ml'] });
    scratch = createScratch();
    world = await createHostWorld(path.join(scratch.root, 'work'));
  });
  afterEach(async () => {
    await world.close();
    await standIn.close();
    scratch.remove();
  });

  const executor = (overrides: Partial<KubernetesGpuExecutorOptions> = {}) =>
    createKubernetesGpuExecutor({
      kubeConfig: standIn.kubeConfig(),
      namespace: 'default',
      clock,
      statusPollMs: 40,
      watchTimeoutSeconds: 5,
      watchStallMs: 3_000,
      retry: { tries: 4, baseMs: 5, maxMs: 40 },
      requestTimeoutMs: 5_000,
      logDrainMs: 3_000,
      defaultGpus: 1,
      ...overrides,
    });

  /** Starts a host with the executor and enqueues a task whose pods run `program` (or wait to be scripted). */
  async function run(
    program: PodStep[] | null,
    settings: Record<string, unknown> = {},
    task: Partial<TaskMessage> = {},
    options: Partial<KubernetesGpuExecutorOptions> = {},
  ) {
    await world.startHost([executor(options)]);
    return world.submit(
      makeTask({
        executor: 'kubernetes-gpu',
        timeoutMs: 30_000,
        ...task,
        settings: { 'kubernetes-gpu': { ...(program ? { command: standInCommand(program) } : {}), ...settings } },
      }),
    );
  }
  const progressMessages = (taskId: string) => world.eventsOf(taskId).flatMap((e) => (e.kind === 'progress' && e.message ? [e.message] : []));
  const jobOf = (taskId: string) => jobNameFor(taskId, 1);
  const waitForPod = (taskId: string, index?: number) =>
    waitFor(
      () =>
        standIn
          .podsOfJob(jobOf(taskId))
          .find((p) => index === undefined || p.metadata.annotations?.['batch.kubernetes.io/job-completion-index'] === String(index)),
      'a pod',
    );

  it('runs a Job to success: logs, progress markers, outputs, queued → provisioning → running, provisioningMs, cleanup', async () => {
    const task = await run([
      { waiting: 'ContainerCreating', forMs: 1_000 }, // well past the host's progress coalescing (100 ms), even on a loaded machine
      { log: 'hello from the pod' },
      { log: '@@atelier {"progress":0.5,"message":"half way"}' },
      { log: '@@atelier {"metrics":{"loss":0.25},"step":3}' },
      { log: '@@atelier {"output":{"name":"model","value":{"uri":"s3://m"}}}' },
      { log: 'bye' },
      { exit: 0 },
    ]);
    const { outcome } = await world.result(task.taskId);
    expect(outcome).toMatchObject({ state: 'SUCCEEDED', exitCode: 0, outputs: { model: { uri: 's3://m' } } });
    expect(world.logLines(task.taskId, 'stdout')).toEqual(['hello from the pod', 'bye']);
    const messages = progressMessages(task.taskId);
    expect(messages[0]).toMatch(/^queued: created Job atelier-task-/);
    expect(messages.some((m) => m.startsWith('provisioning'))).toBe(true);
    expect(messages).toContainEqual(expect.stringMatching(/^running \(provisioned in \d+/));
    expect(messages).toContain('half way');
    const points = world.eventsOf(task.taskId).flatMap((e) => (e.kind === 'metric' ? e.points : []));
    expect(points).toContainEqual(expect.objectContaining({ name: 'loss', value: 0.25, step: 3 }));
    const provisioning = points.find((p) => p.name === 'provisioningMs');
    expect(provisioning?.value).toBeGreaterThanOrEqual(1_000);
    // finalize deleted the Job, and with it (Background propagation) its pod
    expect(standIn.jobs()).toEqual([]);
    expect(standIn.pods()).toEqual([]);
    const deletion = standIn.requests.find((r) => r.method === 'DELETE' && r.path.includes('/jobs/'));
    expect(deletion?.query.get('propagationPolicy')).toBe('Background');
    // the pods were watched from a list's resourceVersion, with bookmarks and a server-side timeout
    const watch = standIn.requests.find((r) => r.watch && r.path.endsWith('/pods'));
    expect(watch?.query.get('allowWatchBookmarks')).toBe('true');
    expect(Number(watch?.query.get('resourceVersion'))).toBeGreaterThan(0);
    expect(Number(watch?.query.get('timeoutSeconds'))).toBeGreaterThanOrEqual(5);
    expect(watch?.query.get('labelSelector')).toBe(`atelier.dev/job=${jobOf(task.taskId)}`);
    const log = standIn.requests.find((r) => r.path.endsWith('/log'));
    expect(log?.query.get('follow')).toBe('true');
    expect(log?.query.get('timestamps')).toBe('true');
  });

  describe('maps Kubernetes states onto task outcomes', () => {
    const table: { name: string; program: PodStep[]; expect: Record<string, unknown>; message?: RegExp }[] = [
      {
        name: 'non-zero exit',
        program: [{ log: 'loading' }, { log: 'Traceback: boom' }, { exit: 3 }],
        expect: { state: 'FAILED', reason: 'exit-code', exitCode: 3 },
        message: /exited with code 3; last output lines:\nloading\nTraceback: boom/,
      },
      {
        name: 'OOMKilled',
        program: [{ log: 'allocating' }, { oom: true }],
        expect: { state: 'FAILED', reason: 'oom', exitCode: 137 },
        message: /OOMKilled.*memory/,
      },
      {
        name: 'evicted without a disruption condition',
        program: [{ evict: 'The node was low on resource: memory.', disruption: false }],
        expect: { state: 'FAILED', reason: 'evicted', retryable: true, systemFailure: true },
        message: /low on resource/,
      },
      {
        name: 'exit 137 without OOM',
        program: [{ exit: 137 }],
        expect: { state: 'FAILED', reason: 'killed', exitCode: 137, retryable: true, systemFailure: true },
        message: /SIGKILL/,
      },
      {
        name: 'InvalidImageName',
        program: [{ waiting: 'InvalidImageName', message: 'Failed to apply default image tag "Bad Image"' }],
        expect: { state: 'FAILED', reason: 'invalid-image', retryable: false },
        message: /invalid image name/,
      },
      {
        name: 'container that cannot run',
        program: [{ exit: 128, reason: 'ContainerCannotRun', message: 'exec: "train": executable file not found in $PATH' }],
        expect: { state: 'FAILED', reason: 'cannot-run', retryable: false },
        message: /executable file not found/,
      },
    ];
    for (const row of table) {
      it(row.name, async () => {
        const task = await run(row.program);
        const { outcome } = await world.result(task.taskId);
        expect(outcome).toMatchObject(row.expect);
        if (!('retryable' in row.expect)) expect(outcome.retryable).toBeUndefined();
        if (row.message) expect(outcome.message).toMatch(row.message);
        expect(standIn.jobs()).toEqual([]);
      });
    }

    it('a preempted pod is replaced by the Job controller (podFailurePolicy Ignore) and the attempt goes on', async () => {
      const task = await run(null, {
        command: standInCommand({ steps: [{ log: 'first try' }, { preempt: true }], replacements: [[{ sleepMs: 150 }, { log: 'second try' }, { exit: 0 }]] }),
      });
      const { outcome } = await world.result(task.taskId);
      expect(outcome.state).toBe('SUCCEEDED');
      expect(standIn.created).toMatchObject({ jobs: 1, pods: 2 });
      expect(world.logLines(task.taskId, 'stdout')).toEqual(['first try', 'second try']);
      expect(progressMessages(task.taskId)).toContainEqual(expect.stringMatching(/was disrupted \(PreemptionByScheduler.*replaces it/));
    });

    it('ImagePullBackOff is provisioning until the grace period passes, then a retryable failure', async () => {
      // A time limit past the jump of the clock below, or the Job's own deadline would end it first.
      const task = await run([{ waiting: 'ImagePullBackOff', message: 'Back-off pulling image "registry.local/missing:1"' }], {}, { timeoutMs: 30 * 60_000 });
      await waitFor(() => progressMessages(task.taskId).find((m) => m.includes('ImagePullBackOff')), 'the image pull progress');
      expect(progressMessages(task.taskId).at(-1)).toMatch(/^provisioning: pulling the image of pod .* failed \(ImagePullBackOff: Back-off pulling image/);
      expect(world.resultOf(task.taskId)).toBeUndefined();
      clockOffset += 3 * 60_000; // the 3-minute grace, without waiting for it
      const { outcome } = await world.result(task.taskId);
      expect(outcome).toMatchObject({ state: 'FAILED', reason: 'image-pull', retryable: true });
      expect(outcome.message).toMatch(/could not pull its image for 3(\.0)? min/);
      expect(standIn.jobs()).toEqual([]);
    });

    it('an unschedulable pod is queued with the scheduler message, then cancelled cleanly', async () => {
      const why =
        '0/4 nodes are available: 4 Insufficient nvidia.com/gpu. preemption: 0/4 nodes are available: 4 No preemption victims found for incoming pod.';
      const task = await run([{ unschedulable: why }], { gpus: 8, gpuProduct: 'NVIDIA-H100-80GB-HBM3' });
      await waitFor(() => progressMessages(task.taskId).find((m) => m.includes('Insufficient nvidia.com/gpu')), 'the FailedScheduling message');
      expect(progressMessages(task.taskId).at(-1)).toBe(`queued: pod ${standIn.podsOfJob(jobOf(task.taskId))[0]!.metadata.name} is unschedulable: ${why}`);
      await world.bus.publishCancel({ taskId: task.taskId, attempt: 1, reason: 'no H100 today' });
      const { outcome } = await world.result(task.taskId);
      expect(outcome).toMatchObject({ state: 'CANCELLED', reason: 'cancelled' });
      expect(standIn.jobs()).toEqual([]);
    });

    it('a Kueue-suspended Job is queued until admitted', async () => {
      const task = await run([{ log: 'admitted' }, { exit: 0 }], { queue: 'team-a' });
      await waitFor(() => progressMessages(task.taskId).find((m) => m.includes('Kueue')), 'the queued message');
      expect(progressMessages(task.taskId).at(-1)).toBe('queued: waiting for Kueue to admit the Job (queue team-a)');
      expect(standIn.pods()).toEqual([]);
      standIn.job$(jobOf(task.taskId)).admit();
      expect((await world.result(task.taskId)).outcome.state).toBe('SUCCEEDED');
      expect(world.logLines(task.taskId, 'stdout')).toEqual(['admitted']);
    });

    it('the Job deadline (activeDeadlineSeconds) is TIMED_OUT', async () => {
      const task = await run([{ log: 'working' }, { forever: true }], {}, { timeoutMs: 120_000 });
      await waitFor(() => world.logLines(task.taskId).includes('working'), 'the pod running');
      clockOffset += 121_000; // the stand-in's Job controller sees the deadline pass
      const { outcome } = await world.result(task.taskId);
      expect(outcome).toMatchObject({ state: 'TIMED_OUT', reason: 'timeout' });
      expect(outcome.message).toContain('the Job ran past its activeDeadlineSeconds (120 s)');
    });

    it('waits for Complete, not SuccessCriteriaMet; unknown states are logged and not terminal', async () => {
      const task = await run(null);
      const pod = standIn.pod({ job: jobOf(task.taskId) });
      await waitForPod(task.taskId);
      pod.waiting('SomethingNew', 'a reason from a future kubelet');
      await waitFor(() => world.logLines(task.taskId, 'stderr').find((l) => l.includes('unknown reason "SomethingNew"')), 'the unknown state note');
      pod.running().log('working');
      standIn.job$(jobOf(task.taskId)).condition('SuccessCriteriaMet', 'True', 'CompletionsReached');
      await new Promise((r) => setTimeout(r, 300));
      expect(world.resultOf(task.taskId)).toBeUndefined();
      pod.exit(0);
      standIn.job$(jobOf(task.taskId)).condition('Complete', 'True', 'CompletionsReached');
      expect((await world.result(task.taskId)).outcome.state).toBe('SUCCEEDED');
    });

    it('FailureTarget alone is not the end: the outcome waits for Failed', async () => {
      const task = await run(null);
      const pod = standIn.pod({ job: jobOf(task.taskId) });
      await waitForPod(task.taskId);
      pod.running().log('about to fail');
      standIn.job$(jobOf(task.taskId)).condition('FailureTarget', 'True', 'BackoffLimitExceeded', 'Job has reached the specified backoff limit');
      await new Promise((r) => setTimeout(r, 300));
      expect(world.resultOf(task.taskId)).toBeUndefined();
      pod.exit(1);
      standIn.job$(jobOf(task.taskId)).condition('Failed', 'True', 'BackoffLimitExceeded', 'Job has reached the specified backoff limit');
      const { outcome } = await world.result(task.taskId);
      expect(outcome).toMatchObject({ state: 'FAILED', reason: 'exit-code', exitCode: 1 });
      expect(outcome.message).toContain('about to fail');
    });

    it('a Job deleted behind its back is lost: FAILED, retryable, a system failure', async () => {
      const task = await run([{ log: 'working' }, { forever: true }]);
      await waitFor(() => world.logLines(task.taskId).includes('working'), 'the pod running');
      standIn.job$(jobOf(task.taskId)).delete();
      const { outcome } = await world.result(task.taskId);
      expect(outcome).toMatchObject({ state: 'FAILED', reason: 'lost', retryable: true, systemFailure: true });
    });
  });

  it('multi-node: an Indexed Job, a headless Service owned by it, per-node logs, rank 0 outputs; all deleted after', async () => {
    const task = await run(null, {
      nodes: 3,
      gpus: 4,
      command: standInCommand([{ log: 'rank up' }, { log: '@@atelier {"output":{"name":"ranks","value":3}}' }, { exit: 0 }]),
    });
    const { outcome } = await world.result(task.taskId);
    expect(outcome).toMatchObject({ state: 'SUCCEEDED', outputs: { ranks: 3 } });
    expect(standIn.created).toMatchObject({ jobs: 1, services: 1, pods: 3 });
    const lines = world.logLines(task.taskId, 'stdout');
    expect([...lines].sort()).toEqual(['[node 0] rank up', '[node 1] rank up', '[node 2] rank up']);
    const serviceCreate = standIn.requests.find((r) => r.method === 'POST' && r.path.endsWith('/services'));
    expect(serviceCreate?.status).toBe(201);
    expect(standIn.services()).toEqual([]);
    expect(standIn.jobs()).toEqual([]);
  });

  it('multi-node pods get hostnames, the subdomain, and a rank from their completion index', async () => {
    const task = await run([{ forever: true }], { nodes: 2 });
    const name = jobOf(task.taskId);
    await waitFor(() => standIn.podsOfJob(name).length === 2 && standIn.services().length === 1, 'two pods and the service');
    const [svc] = standIn.services();
    expect(svc!.metadata.ownerReferences[0]).toMatchObject({ kind: 'Job', name, uid: standIn.job(name)!.metadata.uid });
    expect(svc!.spec).toMatchObject({ clusterIP: 'None', publishNotReadyAddresses: true });
    const hosts = standIn
      .podsOfJob(name)
      .map((p) => `${p.spec.hostname}.${p.spec.subdomain}`)
      .sort();
    expect(hosts).toEqual([`${name}-0.${name}`, `${name}-1.${name}`]);
    await world.bus.publishCancel({ taskId: task.taskId, attempt: 1, reason: 'enough' });
    expect((await world.result(task.taskId)).outcome.state).toBe('CANCELLED');
    expect(standIn.services()).toEqual([]);
    expect(standIn.pods()).toEqual([]);
  });

  it('streams logs across a dropped log stream, a dropped watch, a corrupt watch line, a stall and a 410 re-list: no line lost or repeated', async () => {
    const task = await run(null, {}, {}, { watchStallMs: 400, watchTimeoutSeconds: 2 });
    const name = jobOf(task.taskId);
    await waitForPod(task.taskId);
    const pod = standIn.pod({ job: name }).running().log('line 1', 'line 2');
    const lines = () => world.logLines(task.taskId, 'stdout');
    await waitFor(() => lines().length === 2, 'the first lines');

    standIn.dropLogStreams();
    pod.log('line 3');
    await waitFor(() => lines().length === 3, 'line 3 after the log stream dropped');

    standIn.dropWatches();
    pod.log('line 4');
    await waitFor(() => standIn.openWatches() > 0 && lines().length === 4, 'a new watch and line 4');

    standIn.corruptWatches(); // the next event arrives as a broken line: the watch must re-list
    pod.running(); // a MODIFIED event
    pod.log('line 5');
    await waitFor(() => lines().length === 5, 'line 5');
    await waitFor(() => standIn.openWatches() > 0, 'the watch reopened after the broken line');

    // A bookmark moves the resourceVersion on: the next watch resumes from it.
    const bookmarked = standIn.resourceVersion();
    standIn.sendBookmarks();
    await new Promise((r) => setTimeout(r, 250));
    const watchesBeforeDrop = standIn.requests.filter((r) => r.watch).length;
    standIn.dropWatches();
    const resumed = await waitFor(() => standIn.requests.filter((r) => r.watch)[watchesBeforeDrop], 'the watch after the bookmark');
    expect(resumed.query.get('resourceVersion')).toBe(String(bookmarked));

    standIn.freezeWatches(); // the stall timer (400 ms) must notice
    const watchesBefore = standIn.requests.filter((r) => r.watch).length;
    await waitFor(() => standIn.requests.filter((r) => r.watch).length > watchesBefore, 'a watch reopened after the stall', 5_000);

    const listsBefore = standIn.requests.filter((r) => r.method === 'GET' && r.path.endsWith('/pods') && !r.watch).length;
    standIn.expireWatches(); // 410 Gone: the watch must re-list
    await waitFor(
      () => standIn.requests.filter((r) => r.method === 'GET' && r.path.endsWith('/pods') && !r.watch).length > listsBefore && standIn.openWatches() > 0,
      'a re-list after 410',
    );
    standIn.dropLogStreams();
    pod.log('line 6').exit(0);
    const { outcome } = await world.result(task.taskId);
    expect(outcome.state).toBe('SUCCEEDED');
    expect(lines()).toEqual(['line 1', 'line 2', 'line 3', 'line 4', 'line 5', 'line 6']);
    const logResumes = standIn.requests.filter((r) => r.path.endsWith('/log') && r.query.has('sinceSeconds'));
    expect(logResumes.length).toBeGreaterThanOrEqual(1);
    const expired = standIn.requests.filter((r) => r.watch && r.status === 200);
    expect(expired.length).toBeGreaterThanOrEqual(4);
  });

  it('re-attaches after a host restart: 409 AlreadyExists adopts the Job, exactly one Job is created', async () => {
    const hostA = await world.startHost([executor()], { hostName: 'host-a', ackWaitMs: 3_000 });
    const task = await world.submit(
      makeTask({
        executor: 'kubernetes-gpu',
        settings: { 'kubernetes-gpu': { command: standInCommand([{ log: 'before' }, { sleepMs: 500 }, { log: 'after' }, { exit: 0 }]) } },
      }),
    );
    await waitFor(() => world.logLines(task.taskId).includes('before'), 'the first host streaming');
    await hostA.stop(); // shutdown: the attempt is left unacked and its Job keeps running
    expect(world.resultOf(task.taskId)).toBeUndefined();
    expect(standIn.jobs()).toHaveLength(1);

    await world.startHost([executor()], { hostName: 'host-b' }); // a fresh executor, as a restarted process has
    const result = await world.result(task.taskId);
    expect(result).toMatchObject({ host: 'host-b', outcome: { state: 'SUCCEEDED' } });
    expect(standIn.created.jobs).toBe(1);
    const creates = standIn.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/jobs'));
    expect(creates.map((r) => r.status)).toEqual([201, 409]);
    const handles = world
      .eventsOf(task.taskId)
      .filter((e) => e.kind === 'started')
      .map((e) => (e.kind === 'started' ? e.handle : null));
    expect(handles).toHaveLength(2);
    expect(handles[1]).toEqual(handles[0]);
    // A restarted host reads the log from the start again: lines may repeat across hosts, none is lost.
    expect(world.logLines(task.taskId)).toContain('after');
    expect(standIn.jobs()).toEqual([]);
  });

  it('cancel deletes the Job and its pods (Background propagation), and cancelling again is fine', async () => {
    const task = await run([{ log: 'working' }, { forever: true }]);
    await waitFor(() => world.logLines(task.taskId).includes('working'), 'the pod running');
    expect(standIn.pods()).toHaveLength(1);
    await world.bus.publishCancel({ taskId: task.taskId, attempt: 1, reason: 'user asked' });
    const { outcome } = await world.result(task.taskId);
    expect(outcome).toMatchObject({ state: 'CANCELLED', reason: 'cancelled' });
    expect(outcome.message).toContain('user asked');
    expect(outcome.message).toContain('deleted');
    expect(standIn.jobs()).toEqual([]);
    expect(standIn.pods()).toEqual([]);
    const deletes = standIn.requests.filter((r) => r.method === 'DELETE');
    expect(deletes.every((r) => r.query.get('propagationPolicy') === 'Background')).toBe(true);
    expect(deletes.map((r) => r.status)).toEqual([200]); // cancel and finalize share one delete

    // called directly, on work that is gone: still fine (404 is success for a delete)
    const direct = executor();
    const handle: KubernetesGpuHandle = { jobName: jobOf(task.taskId), namespace: 'default', service: null, nodes: 1 };
    await direct.cancel(handle, task, 'cancelled');
    await direct.finalize!(handle, task, outcome);
  });

  it('the host timeout deletes the Job: TIMED_OUT', async () => {
    const task = await run([{ log: 'working' }, { forever: true }], {}, { timeoutMs: 600 });
    const { outcome } = await world.result(task.taskId);
    expect(outcome).toMatchObject({ state: 'TIMED_OUT', reason: 'timeout' });
    expect(standIn.jobs()).toEqual([]);
  });

  describe('API faults', () => {
    it('retries 500s, 429s (Retry-After), a reset connection and malformed JSON on reads', async () => {
      standIn.fault({ method: 'POST', path: '/jobs', status: 500, times: 2 });
      standIn.fault({ method: 'GET', path: /\/jobs\/[^/]+$/, status: 429, retryAfterSeconds: 0, times: 2 });
      standIn.fault({ method: 'GET', path: /\/jobs\/[^/]+$/, malformed: true, times: 1 });
      standIn.fault({ method: 'GET', path: 'watch=true', reset: true, times: 2 });
      standIn.fault({ method: 'DELETE', path: '/jobs/', status: 503, times: 1 });
      const task = await run([{ log: 'fine' }, { sleepMs: 150 }, { exit: 0 }]);
      const { outcome } = await world.result(task.taskId);
      expect(outcome.state).toBe('SUCCEEDED');
      expect(world.logLines(task.taskId, 'stdout')).toEqual(['fine']);
      expect(standIn.created.jobs).toBe(1);
      expect(standIn.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/jobs')).map((r) => r.status)).toEqual([500, 500, 201]);
      expect(standIn.jobs()).toEqual([]);
    });

    it('a 500 answered after the Job was created makes the retry adopt it (409), not create another', async () => {
      // The first POST creates the Job but its answer is lost: the stand-in resets the connection after a delay.
      await world.startHost([executor()]);
      const task = makeTask({ executor: 'kubernetes-gpu', settings: { 'kubernetes-gpu': { command: standInCommand([{ exit: 0 }]) } } });
      const name = jobNameFor(task.taskId, 1);
      const original = standIn.requests.length;
      void original;
      // Create it first through the API, as the lost request would have.
      const direct = executor();
      const ctx = silentContext();
      await direct.submit(task, ctx);
      await world.submit(task);
      expect((await world.result(task.taskId)).outcome.state).toBe('SUCCEEDED');
      expect(standIn.created.jobs).toBe(1);
      expect(standIn.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/jobs')).map((r) => r.status)).toEqual([201, 409]);
      expect(name).toBe(jobOf(task.taskId));
    });

    it('401 Unauthorized is a permanent failure with a credentials hint', async () => {
      const task = await run([{ exit: 0 }], {}, {}, { kubeConfig: standIn.kubeConfig({ token: 'wrong' }) });
      const { outcome } = await world.result(task.taskId);
      expect(outcome).toMatchObject({ state: 'FAILED', reason: 'kubernetes-credentials', retryable: false });
      expect(outcome.message).toMatch(/HTTP 401 Unauthorized\. The API server rejected the credentials/);
      expect(standIn.created.jobs).toBe(0);
    });

    it('403 Forbidden is a permanent failure naming the RBAC it needs; an exhausted quota is retried', async () => {
      standIn.fault({
        method: 'POST',
        path: '/jobs',
        status: 403,
        body: {
          kind: 'Status',
          apiVersion: 'v1',
          status: 'Failure',
          reason: 'Forbidden',
          code: 403,
          message: 'jobs.batch "x" is forbidden: exceeded quota: gpu-quota, requested: requests.nvidia.com/gpu=1',
        },
      });
      const ok = await run([{ exit: 0 }]);
      expect((await world.result(ok.taskId)).outcome.state).toBe('SUCCEEDED');

      standIn.fault({
        method: 'POST',
        path: '/jobs',
        status: 403,
        times: 10,
        body: {
          kind: 'Status',
          apiVersion: 'v1',
          status: 'Failure',
          reason: 'Forbidden',
          code: 403,
          message: 'jobs.batch is forbidden: User "system:serviceaccount:atelier:host" cannot create resource "jobs" in API group "batch"',
        },
      });
      const denied = await world.submit(makeTask({ executor: 'kubernetes-gpu', settings: { 'kubernetes-gpu': { command: standInCommand([{ exit: 0 }]) } } }));
      const { outcome } = await world.result(denied.taskId);
      expect(outcome).toMatchObject({ state: 'FAILED', reason: 'kubernetes-credentials', retryable: false });
      expect(outcome.message).toMatch(/cannot create resource "jobs".*RBAC/);
    });

    it('an API that keeps failing is a retryable system failure; so is one that keeps answering garbage', async () => {
      standIn.fault({ method: 'POST', path: '/jobs', status: 503, times: 100 });
      const down = await run([{ exit: 0 }]);
      const { outcome } = await world.result(down.taskId);
      expect(outcome).toMatchObject({ state: 'FAILED', reason: 'kubernetes-unavailable', retryable: true, systemFailure: true });
      expect(outcome.message).toMatch(/HTTP 503/);
      standIn.clearFaults();

      standIn.fault({ method: 'POST', path: '/jobs', malformed: true, times: 100 });
      const garbage = await world.submit(makeTask({ executor: 'kubernetes-gpu', settings: { 'kubernetes-gpu': { command: standInCommand([{ exit: 0 }]) } } }));
      const second = await world.result(garbage.taskId);
      expect(second.outcome).toMatchObject({ state: 'FAILED', reason: 'kubernetes-malformed-response', retryable: true, systemFailure: true });
    });

    it('the Job status unreadable for longer than apiOutageMs fails the attempt (retryable)', async () => {
      const task = await run([{ log: 'working' }, { forever: true }], {}, {}, { apiOutageMs: 300 });
      await waitFor(() => world.logLines(task.taskId).includes('working'), 'the pod running');
      standIn.fault({ method: 'GET', path: /\/jobs\/[^/]+$/, status: 500, times: 1_000 });
      const { outcome } = await world.result(task.taskId);
      expect(outcome).toMatchObject({ state: 'FAILED', reason: 'kubernetes-unavailable', retryable: true, systemFailure: true });
      standIn.clearFaults();
    });

    it('bad input fails permanently with a clear message: settings, a missing namespace, no cluster configured', async () => {
      const typo = await run(null, { gpu: 2 });
      expect((await world.result(typo.taskId)).outcome).toMatchObject({
        state: 'FAILED',
        reason: 'invalid-settings',
        retryable: false,
        message: expect.stringContaining('unknown setting "gpu"'),
      });
      const quantity = await world.submit(makeTask({ executor: 'kubernetes-gpu', settings: { 'kubernetes-gpu': { memory: 'lots' } } }));
      expect((await world.result(quantity.taskId)).outcome.message).toContain('settings["kubernetes-gpu"].memory must be a positive Kubernetes quantity');
      const nodes = await world.submit(makeTask({ executor: 'kubernetes-gpu', settings: { 'kubernetes-gpu': { nodes: 0 } } }));
      expect((await world.result(nodes.taskId)).outcome.message).toContain('nodes must be an integer from 1');
      expect(standIn.created.jobs).toBe(0);
    });

    it('a namespace that does not exist, and no usable cluster configuration, fail permanently', async () => {
      const lost = await run([{ exit: 0 }], {}, {}, { namespace: 'nowhere' });
      expect((await world.result(lost.taskId)).outcome).toMatchObject({
        state: 'FAILED',
        reason: 'kubernetes-not-found',
        retryable: false,
        message: expect.stringContaining('namespaces "nowhere" not found'),
      });

      const { KubeConfig } = await import('@kubernetes/client-node');
      const empty = new KubeConfig();
      empty.loadFromOptions({ clusters: [], users: [], contexts: [], currentContext: '' });
      const unconfigured = executor({ kubeConfig: empty });
      const task = makeTask({ executor: 'kubernetes-gpu' });
      const handle = await unconfigured.submit(task, silentContext());
      expect(await unconfigured.wait(handle, task, silentContext())).toMatchObject({ state: 'FAILED', reason: 'kubernetes-config', retryable: false });
    });
  });

  it('kubectl lists the Job from the stand-in (an independent wire check)', async () => {
    const task = await run([{ forever: true }]);
    const name = jobOf(task.taskId);
    await waitFor(() => standIn.job(name), 'the Job');
    const kubectl = '/usr/bin/kubectl';
    if (existsSync(kubectl)) {
      standIn.allowAnonymousReads();
      const kubeconfig = path.join(scratch.root, 'kubeconfig');
      writeFileSync(kubeconfig, standIn.kubeconfigYaml());
      const { stdout } = await promisify(execFile)(kubectl, ['--kubeconfig', kubeconfig, 'get', 'jobs', '-o', 'json'], { timeout: 20_000 });
      const list = JSON.parse(stdout) as { items: { metadata: { name: string; labels: Record<string, string> }; spec: { backoffLimit: number } }[] };
      expect(list.items.map((j) => j.metadata.name)).toEqual([name]);
      expect(list.items[0]!.spec.backoffLimit).toBe(0);
      const pods = await promisify(execFile)(kubectl, ['--kubeconfig', kubeconfig, 'get', 'pods', '-l', `atelier.dev/job=${name}`, '-o', 'name'], {
        timeout: 20_000,
      });
      expect(pods.stdout.trim()).toMatch(new RegExp(`^pod/${name}-[a-z0-9]{5}$`));
    } else {
      console.log('kubectl is not installed here: the wire check against kubectl was skipped');
    }
    await world.bus.publishCancel({ taskId: task.taskId, attempt: 1, reason: 'done' });
    await world.result(task.taskId);
  });

  it('overhead against the stand-in: submit → running → result', async () => {
    const samples: { running: number; result: number }[] = [];
    await world.startHost([executor()]);
    for (let i = 0; i < 5; i++) {
      const submittedAt = Date.now();
      const task = await world.submit(
        makeTask({ executor: 'kubernetes-gpu', settings: { 'kubernetes-gpu': { command: standInCommand([{ log: 'x' }, { exit: 0 }]) } } }),
      );
      await waitFor(() => world.eventsOf(task.taskId).find((e) => e.kind === 'progress' && e.message?.startsWith('running')), 'running');
      const runningAt = Date.now();
      await world.result(task.taskId);
      samples.push({ running: runningAt - submittedAt, result: Date.now() - runningAt });
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    console.log(
      `kubernetes-gpu overhead vs the stand-in (median of ${samples.length}): submit→running ${median(samples.map((s) => s.running))} ms, running→result ${median(samples.map((s) => s.result))} ms`,
    );
    expect(samples).toHaveLength(5);
  });
});

function silentContext(): TaskContext {
  return {
    signal: new AbortController().signal,
    aborted: false,
    workdir: '/tmp/unused',
    host: 'direct',
    artifactPath: async () => '/dev/null',
    log: () => undefined,
    progress: () => undefined,
    metric: () => undefined,
    output: () => undefined,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// The executor contract, one fresh stand-in per case.

executorContract('kubernetes-gpu', async () => {
  const standIn = await createKubernetesStandIn();
  const make = () =>
    createKubernetesGpuExecutor({
      kubeConfig: standIn.kubeConfig(),
      namespace: 'default',
      statusPollMs: 40,
      watchTimeoutSeconds: 5,
      retry: { tries: 4, baseMs: 5, maxMs: 40 },
      logDrainMs: 3_000,
    });
  const programs: Record<ContractScenario, PodStep[]> = {
    succeed: [
      { log: 'hello from the stand-in' },
      { log: '@@atelier {"progress":0.5,"message":"half way"}' },
      { log: '@@atelier {"output":{"name":"answer","value":42}}' },
      { exit: 0 },
    ],
    'fail-permanent': [{ log: 'bad input' }, { exit: 2 }],
    'fail-retryable': [{ log: 'the node is under memory pressure' }, { evict: 'The node was low on resource: memory.', disruption: false }],
    'run-long': [{ log: 'working' }, { log: '@@atelier {"progress":0.1,"message":"started"}' }, { forever: true }],
  };
  return {
    executor: make(),
    restartedExecutor: make,
    reattach: 'adopt',
    scenario: (kind) => ({ settings: { 'kubernetes-gpu': { command: standInCommand(programs[kind]) } } }),
    submissions: () => standIn.created.jobs,
    cleanup: () => standIn.close(),
  };
});
