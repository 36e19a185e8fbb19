// What a pod of one attempt is handed to reach the control plane as that task: the task's own short-lived token (the
// one its claim's answer carried, for the MLflow client and for the model files the task is pinned to), kept in a
// Secret per attempt so it never appears in the Job object, its events or the control plane's records. The Secret is
// owned by the Job, so it goes when the Job goes (deleted at finalize, or by ttlSecondsAfterFinished).
//
// The pod's contract (docs/executors.md): MLFLOW_TRACKING_URI, MLFLOW_RUN_ID and MLFLOW_TRACKING_TOKEN as the local
// executor sets them; ATELIER_TASK_TOKEN the same token; ATELIER_MODELS the pinned models by port (as the local
// executor's) and ATELIER_MODEL_FILES_URL, under which each file is `<url>/<file digest>`, to be fetched with the
// task token into `models/<port>/<path>` of the working directory before the module starts.
import type { V1EnvVar, V1Job, V1Secret } from '@kubernetes/client-node';
import type { TaskMessage } from '../../plugins/protocol';

/** The key of the task token in an attempt's Secret. */
export const TASK_TOKEN_KEY = 'token';

/** The attempt's Secret: the Job's name and `-task` (Job names leave room under the 253 characters a Secret may have). */
export const taskSecretNameFor = (jobName: string) => `${jobName}-task`;

/** Whether the attempt's pods get the task's token: it has one, and the pods know where the control plane is. */
export const handsTaskToken = (task: TaskMessage, baseUrl: string | undefined): baseUrl is string => Boolean(task.tracking && baseUrl);

/** The environment that gives a pod the task's access (by reference to the Secret) and its pinned models. */
export function taskAccessEnv(task: TaskMessage, jobName: string, baseUrl: string | undefined): V1EnvVar[] {
  if (!baseUrl) return [];
  const base = baseUrl.replace(/\/+$/, '');
  const env: V1EnvVar[] = [];
  if (handsTaskToken(task, base)) {
    const token = { secretKeyRef: { name: taskSecretNameFor(jobName), key: TASK_TOKEN_KEY } };
    env.push(
      { name: 'ATELIER_TASK_TOKEN', valueFrom: token },
      { name: 'MLFLOW_TRACKING_URI', value: base },
      { name: 'MLFLOW_RUN_ID', value: task.tracking!.runId },
      { name: 'MLFLOW_TRACKING_TOKEN', valueFrom: token },
    );
  }
  if (task.models && Object.keys(task.models).length) {
    env.push({ name: 'ATELIER_MODELS', value: JSON.stringify(task.models) }, { name: 'ATELIER_MODEL_FILES_URL', value: `${base}/artifacts` });
  }
  return env;
}

/** The attempt's Secret holding its task token, owned by its (created) Job. */
export function buildTaskSecret(job: V1Job, task: TaskMessage): V1Secret {
  const name = job.metadata!.name!;
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'Opaque',
    metadata: {
      name: taskSecretNameFor(name),
      namespace: job.metadata!.namespace,
      labels: { ...job.metadata!.labels },
      ownerReferences: job.metadata?.uid
        ? [{ apiVersion: 'batch/v1', kind: 'Job', name, uid: job.metadata.uid, controller: true, blockOwnerDeletion: false }]
        : undefined,
    },
    data: { [TASK_TOKEN_KEY]: Buffer.from(task.tracking!.token).toString('base64') },
  };
}
