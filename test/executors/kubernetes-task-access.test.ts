// A kubernetes-gpu pod reaches the control plane as its task: the task's own token (from the claim's answer) in a
// Secret per attempt owned by the Job, given by reference as MLFLOW_TRACKING_TOKEN / ATELIER_TASK_TOKEN beside
// MLFLOW_TRACKING_URI and MLFLOW_RUN_ID, and the pinned models' files named for the pod to fetch. Against the
// Kubernetes stand-in, whose kubelet resolves secretKeyRefs (a pod waits in CreateContainerConfigError until its
// Secret exists) and whose garbage collector removes what a deleted Job owns.
import path from 'node:path';
import { Job } from 'kubernetes-models/batch/v1/Job';
import { Secret } from 'kubernetes-models/v1/Secret';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildJob, createKubernetesGpuExecutor, jobNameFor } from '../../executors/kubernetes-gpu/index';
import { buildTaskSecret, taskSecretNameFor } from '../../executors/kubernetes-gpu/task-access';
import type { TaskMessage } from '../../plugins/sdk';
import { createHostWorld, createScratch, type HostWorld, makeTask, waitFor } from '../plugins/host-harness';
import { createKubernetesStandIn, type KubernetesStandIn, type PodStep, standInCommand } from '../stand-ins/kubernetes';

const BASE = 'https://atelier.internal/';
const TOKEN = 'atl_task_0123456789abcdef';
const models: TaskMessage['models'] = {
  model: {
    model: 'vision/resnet',
    version: 3,
    digest: `sha256:${'cd'.repeat(32)}`,
    files: [{ path: 'weights/model.pt', digest: `sha256:${'ef'.repeat(32)}`, size: 1024 }],
  },
};

const envOf = (job: ReturnType<typeof buildJob>) =>
  Object.fromEntries((job.spec!.template.spec!.containers[0]!.env ?? []).map((e) => [e.name, e.value ?? e.valueFrom]));

describe('the task-access manifest', () => {
  const options = { namespace: 'ml', image: 'atelier/runner:0.1', masterPort: 29500, ttlSecondsAfterFinished: 3600, artifactBaseUrl: BASE };
  const tracked = (extra: Partial<TaskMessage> = {}) =>
    makeTask({ executor: 'kubernetes-gpu', tracking: { uri: 'http://127.0.0.1:4000', runId: 'task-run-id', token: TOKEN }, models, ...extra });

  it('names the token by reference only: the Job never holds it, the Secret does, owned by the Job', () => {
    const task = tracked();
    const job = buildJob(task, { gpus: 1, nodes: 1 }, options);
    expect(() => new Job(job as never).validate()).not.toThrow();
    const name = jobNameFor(task.taskId, 1);
    const ref = { secretKeyRef: { name: taskSecretNameFor(name), key: 'token' } };
    expect(envOf(job)).toMatchObject({
      MLFLOW_TRACKING_URI: 'https://atelier.internal', // where the pods reach the control plane, not the host's view
      MLFLOW_RUN_ID: 'task-run-id',
      MLFLOW_TRACKING_TOKEN: ref,
      ATELIER_TASK_TOKEN: ref,
      ATELIER_MODEL_FILES_URL: 'https://atelier.internal/artifacts',
    });
    expect(JSON.parse(envOf(job).ATELIER_MODELS as string)).toEqual(models);
    expect(JSON.stringify(job)).not.toContain(TOKEN);

    const secret = buildTaskSecret({ ...job, metadata: { ...job.metadata, uid: 'job-uid' } }, task);
    expect(() => new Secret(secret as never).validate()).not.toThrow();
    expect(secret.metadata).toMatchObject({ name: taskSecretNameFor(name), namespace: 'ml', ownerReferences: [{ kind: 'Job', name, uid: 'job-uid' }] });
    expect(Buffer.from(secret.data!.token!, 'base64').toString()).toBe(TOKEN);
  });

  it('gives nothing of the task’s access without a token or without a URL the pods can reach', () => {
    const untracked = buildJob(makeTask({ executor: 'kubernetes-gpu', models }), { gpus: 1, nodes: 1 }, options);
    expect(Object.keys(envOf(untracked)).filter((k) => /MLFLOW|TASK_TOKEN/.test(k))).toEqual([]);
    expect(envOf(untracked).ATELIER_MODEL_FILES_URL).toBe('https://atelier.internal/artifacts'); // the host token may read them
    const nowhere = buildJob(tracked(), { gpus: 1, nodes: 1 }, { ...options, artifactBaseUrl: undefined });
    expect(Object.keys(envOf(nowhere)).filter((k) => /MLFLOW|TASK_TOKEN|MODEL/.test(k))).toEqual([]);
  });
});

describe('the task’s access against the stand-in', () => {
  let standIn: KubernetesStandIn;
  let world: HostWorld;
  let scratch: ReturnType<typeof createScratch>;

  beforeEach(async () => {
    standIn = await createKubernetesStandIn({ namespaces: ['default'] });
    scratch = createScratch();
    world = await createHostWorld(path.join(scratch.root, 'work'));
    // The control plane's answer to each claim carries the attempt's own token, as server/tracking/task-tokens.ts mints it.
    await world.bus.serveClaims(async (claim) => ({ verdict: 'run', tracking: { uri: 'http://127.0.0.1:4000', runId: claim.taskId, token: TOKEN } }));
  });
  afterEach(async () => {
    await world.close();
    await standIn.close();
    scratch.remove();
  });

  // Quick polls and retries; the rest as configured in production.
  const executor = () =>
    createKubernetesGpuExecutor({
      kubeConfig: standIn.kubeConfig(),
      namespace: 'default',
      artifactBaseUrl: BASE,
      statusPollMs: 40,
      retry: { tries: 3, baseMs: 5, maxMs: 40 },
    });

  async function run(steps: PodStep[]) {
    await world.startHost([executor()], { verifyClaims: true });
    return world.submit(
      makeTask({ executor: 'kubernetes-gpu', timeoutMs: 30_000, models, settings: { 'kubernetes-gpu': { command: standInCommand(steps) } } }),
    );
  }

  it('the pod sees the task’s token and MLflow run; the Secret goes with the Job', async () => {
    const task = await run([{ log: 'training' }, { sleepMs: 300 }, { exit: 0 }]);
    const pod = await waitFor(() => standIn.podsOfJob(jobNameFor(task.taskId, 1))[0], 'the pod');
    await waitFor(() => world.logLines(task.taskId).includes('training'), 'the pod running');
    expect(standIn.envOf(pod)).toMatchObject({
      MLFLOW_TRACKING_URI: 'https://atelier.internal',
      MLFLOW_RUN_ID: task.taskId,
      MLFLOW_TRACKING_TOKEN: TOKEN,
      ATELIER_TASK_TOKEN: TOKEN,
    });
    const [secret] = standIn.secrets();
    expect(secret?.metadata.ownerReferences).toEqual([expect.objectContaining({ kind: 'Job', uid: standIn.job(jobNameFor(task.taskId, 1))!.metadata.uid })]);
    expect(JSON.stringify(standIn.jobs())).not.toContain(TOKEN);
    expect((await world.result(task.taskId)).outcome.state).toBe('SUCCEEDED');
    // finalize deleted the Job; the garbage collector took its Secret with it
    expect(standIn.jobs()).toEqual([]);
    expect(standIn.secrets()).toEqual([]);
    const posts = standIn.requests.filter((r) => r.method === 'POST').map((r) => r.path.split('/').pop());
    expect(posts).toEqual(['jobs', 'secrets']);
  });

  it('a pod that starts before its Secret exists waits (CreateContainerConfigError), then runs', async () => {
    standIn.fault({ method: 'POST', path: '/secrets', delayMs: 1_500 });
    const task = await run([{ log: 'ran' }, { exit: 0 }]);
    const secretName = taskSecretNameFor(jobNameFor(task.taskId, 1));
    const waiting = await waitFor(() => {
      const waiting = standIn.podsOfJob(jobNameFor(task.taskId, 1))[0]?.status.containerStatuses?.[0]?.state?.waiting;
      return waiting?.reason === 'CreateContainerConfigError' && waiting; // after ContainerCreating
    }, 'the pod waiting for its Secret');
    expect(waiting).toEqual({ reason: 'CreateContainerConfigError', message: `secret "${secretName}" not found` });
    expect(standIn.secrets()).toEqual([]);
    expect((await world.result(task.taskId)).outcome.state).toBe('SUCCEEDED');
    expect(world.logLines(task.taskId, 'stdout')).toEqual(['ran']);
  });

  it('a Secret that cannot be created fails the attempt and deletes its Job', async () => {
    standIn.fault({ method: 'POST', path: '/secrets', status: 403 });
    const task = await run([{ forever: true }]);
    const { outcome } = await world.result(task.taskId);
    expect(outcome).toMatchObject({ state: 'FAILED', reason: 'kubernetes-credentials' });
    expect(outcome.message).toContain('Secret');
    await waitFor(() => standIn.jobs().length === 0, 'the Job deleted');
  });
});
