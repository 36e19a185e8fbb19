// A loopback stand-in for the Kubernetes API server, for the kubernetes-gpu executor's tests: discovery, Jobs, Pods
// and Services in namespaces with real metadata (uid, resourceVersion, creationTimestamp), Status errors, lists and
// watches (ADDED/MODIFIED/DELETED/BOOKMARK/ERROR, 410 Gone for compacted resource versions), the pod log endpoint
// (follow, timestamps, sinceSeconds), Secrets (create/get/list/delete; a pod whose env names a missing one waits in
// CreateContainerConfigError until it exists), cascading DELETE, a small Job controller and kubelet, and fault injection.
// apps/v1 Deployments (the kubernetes-gpu hot clusters) are stored, validated and report their replicas ready after
// one kubelet step; their pods are not simulated. serving.kserve.io/v1beta1 InferenceServices are stored with
// GET/LIST/watch/POST/PUT/PATCH (merge patch and JSON patch)/DELETE, resourceVersion conflicts and the CRD's printer
// columns as a Table for kubectl; ./kserve.ts simulates the KServe and Knative controllers behind them.
//
// Pods run a program given as their container command (`standInCommand([...steps])`); pods without one wait, in
// Pending, for a test to script them (`standIn.pod(name).schedule()`, `.running()`, `.exit(1)`...).
import { randomUUID } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { createKServeController } from './kserve';

// ---------------------------------------------------------------------------------------------------------------
// Public types

/** One step of a pod's program, run by the stand-in kubelet in order. */
export type PodStep =
  | { unschedulable: string; forMs?: number }
  | {
      waiting: 'ContainerCreating' | 'PodInitializing' | 'ErrImagePull' | 'ImagePullBackOff' | 'InvalidImageName' | 'CreateContainerConfigError' | string;
      message?: string;
      forMs?: number;
    }
  | { log: string }
  | { sleepMs: number }
  | { exit: number; reason?: string; message?: string }
  | { oom: true }
  | { evict: string; disruption?: boolean }
  | { preempt: true }
  | { forever: true };

/** A program: the steps of the first pod, and optionally of the pods that replace it (`replacements[n-1]` for the nth). */
export interface PodProgram {
  steps: PodStep[];
  replacements?: PodStep[][];
}

export interface FaultSpec {
  method?: string;
  /** Substring of (or pattern for) `path?query`. */
  path?: string | RegExp;
  /** How many requests the fault answers (default 1). */
  times?: number;
  /** Answer with this status and a Status object (or `body`). */
  status?: number;
  body?: unknown;
  retryAfterSeconds?: number;
  /** Answer 200 with a body that is not JSON. */
  malformed?: boolean;
  /** Close the connection without answering. */
  reset?: boolean;
  /** Answer only after this long. */
  delayMs?: number;
}

export interface RecordedRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  status: number;
  watch: boolean;
}

export interface KubernetesStandInOptions {
  namespaces?: string[];
  /** Bearer token every request must carry; null accepts anything. Default "stand-in-token". */
  token?: string | null;
  /** Clock for timestamps and deadlines (ms since the epoch). */
  clock?: () => number;
  /** Send a BOOKMARK on each watch that allows them this often (0: never). */
  bookmarkMs?: number;
  /** Delay between the kubelet's automatic steps (scheduling, ContainerCreating, Running). Default 5 ms. */
  stepMs?: number;
  /** How long a KServe predictor revision takes to become ready (or fail). Default 15 ms. */
  kserveReadyMs?: number;
  /** Labels KServe does not copy onto revisions (its inferenceservice-config's serviceLabelDisallowedList). */
  kserveLabelsNotCopied?: string[];
}

type Obj = Record<string, any>;
type Kind = 'jobs' | 'pods' | 'services' | 'secrets' | 'deployments' | 'inferenceservices';
interface StoredEvent {
  rv: number;
  kind: Kind;
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  object: Obj;
}
interface Watcher {
  kind: Kind;
  namespace: string | undefined;
  selector: Selector;
  res: ServerResponse;
  frozen: boolean;
  malformedNext: boolean;
  bookmarks: boolean;
  close(): void;
}
interface LogLine {
  ns: bigint;
  text: string;
}
interface LogFollower {
  pod: string;
  namespace: string;
  timestamps: boolean;
  res: ServerResponse;
}
type Selector = (labels: Record<string, string> | undefined) => boolean;

const STAND_IN_COMMAND = 'stand-in-run';
const CONTROLLER_UID = 'batch.kubernetes.io/controller-uid';
const JOB_NAME = 'batch.kubernetes.io/job-name';
const INDEX = 'batch.kubernetes.io/job-completion-index';

/** The container command that makes the stand-in kubelet run `program`. */
export function standInCommand(program: PodStep[] | PodProgram): string[] {
  return [STAND_IN_COMMAND, JSON.stringify(Array.isArray(program) ? { steps: program } : program)];
}

export type KubernetesStandIn = Awaited<ReturnType<typeof createKubernetesStandIn>>;

export async function createKubernetesStandIn(options: KubernetesStandInOptions = {}) {
  const clock = options.clock ?? Date.now;
  const token = options.token === undefined ? 'stand-in-token' : options.token;
  const stepMs = options.stepMs ?? 5;
  const namespaces = new Set(options.namespaces ?? ['default']);
  const store: Record<Kind, Map<string, Obj>> = {
    jobs: new Map(),
    pods: new Map(),
    services: new Map(),
    secrets: new Map(),
    deployments: new Map(),
    inferenceservices: new Map(),
  };
  const history: StoredEvent[] = [];
  let rv = 100;
  /** Watches from a resourceVersion below this get 410 Gone: the events after it are no longer known. */
  let oldestResumable = rv;
  const watchers = new Set<Watcher>();
  const logs = new Map<string, LogLine[]>(); // "<ns>/<pod>"
  const logFollowers = new Set<LogFollower>();
  const faults: (FaultSpec & { left: number })[] = [];
  const requests: RecordedRequest[] = [];
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const podRuns = new Map<string, number>(); // "<ns>/<job>/<index>" → pods started for that index
  const created = { jobs: 0, services: 0, secrets: 0, pods: 0, deployments: 0, inferenceservices: 0 };
  /** Every Deployment created through the API, as posted (kept after it is deleted). */
  const createdDeployments: Obj[] = [];
  let nsCounter = 0;
  let closed = false;
  let anonymousReads = false;

  const key = (namespace: string, name: string) => `${namespace}/${name}`;
  const now = () => new Date(clock()).toISOString().replace(/\.\d{3}Z$/, 'Z'); // metav1.Time: second precision
  const later = (ms: number, fn: () => void) => {
    if (closed) return;
    const timer = setTimeout(() => {
      timers.delete(timer);
      if (!closed) fn();
    }, ms);
    timers.add(timer);
  };

  // -------------------------------------------------------------------------------------------------------------
  // Store and watch fan-out

  function commit(kind: Kind, type: StoredEvent['type'], object: Obj) {
    rv++;
    object.metadata.resourceVersion = String(rv);
    const k = key(object.metadata.namespace, object.metadata.name);
    if (type === 'DELETED') store[kind].delete(k);
    else store[kind].set(k, object);
    const event: StoredEvent = { rv, kind, type, object: structuredClone(object) };
    history.push(event);
    if (history.length > 5_000) history.splice(0, history.length - 5_000);
    for (const w of watchers) if (matches(w, event)) send(w, event.type, event.object);
    if (kind === 'pods') onPodChange(object, type);
  }

  const matches = (w: Watcher, e: StoredEvent) =>
    w.kind === e.kind && (w.namespace === undefined || w.namespace === e.object.metadata.namespace) && w.selector(e.object.metadata.labels);

  function send(w: Watcher, type: string, object: Obj) {
    if (w.frozen) return;
    if (w.malformedNext) {
      w.malformedNext = false;
      w.res.write('{"type":"MODIFIED","object":{"kind":"Pod"\n');
      return;
    }
    w.res.write(`${JSON.stringify({ type, object })}\n`);
  }

  function statusBody(code: number, reason: string, message: string, details?: Obj): Obj {
    return {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: code < 400 ? 'Success' : 'Failure',
      message,
      reason,
      ...(details ? { details } : {}),
      code,
    };
  }

  const kserve = createKServeController(
    {
      now,
      later,
      get: (namespace, name) => store.inferenceservices.get(key(namespace, name)),
      commitStatus: (object) => commit('inferenceservices', 'MODIFIED', object),
    },
    { readyMs: options.kserveReadyMs, labelsNotCopied: options.kserveLabelsNotCopied },
  );

  // -------------------------------------------------------------------------------------------------------------
  // InferenceServices: stored as a CRD's objects are (status a subresource the controller alone writes), then handed
  // to the simulated KServe controller after every write.

  function createInferenceService(namespace: string, body: Obj): Obj {
    const isvc: Obj = {
      apiVersion: body.apiVersion,
      kind: body.kind,
      metadata: { ...body.metadata, namespace, uid: randomUUID(), generation: 1, creationTimestamp: now() },
      spec: body.spec,
    };
    delete isvc.metadata.resourceVersion;
    created.inferenceservices++;
    commit('inferenceservices', 'ADDED', isvc);
    const answer = structuredClone(isvc);
    kserve.reconcile(namespace, isvc.metadata.name);
    return answer;
  }

  async function updateInferenceService(req: IncomingMessage, res: ServerResponse, namespace: string, name: string, current: Obj | undefined) {
    const what = `inferenceservices.serving.kserve.io "${name}"`;
    let body: unknown;
    try {
      body = JSON.parse(await readAll(req));
    } catch (err) {
      return respond(res, 400, statusBody(400, 'BadRequest', `the body of the request was in an unknown format: ${(err as Error).message}`));
    }
    if (!current) return notFound(res, 'inferenceservices', 'serving.kserve.io', name);
    let next: Obj;
    if (req.method === 'PUT') {
      next = body as Obj;
      if (!next?.metadata?.resourceVersion) {
        return respond(
          res,
          422,
          statusBody(422, 'Invalid', `${what} is invalid: metadata.resourceVersion: Invalid value: 0x0: must be specified for an update`),
        );
      }
    } else {
      const type = String(req.headers['content-type'] ?? '')
        .split(';')[0]!
        .trim();
      try {
        if (type === 'application/merge-patch+json') next = mergePatch(structuredClone(current), body) as Obj;
        else if (type === 'application/json-patch+json') next = jsonPatch(structuredClone(current), body);
        else {
          return respond(
            res,
            415,
            statusBody(
              415,
              'UnsupportedMediaType',
              `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json`,
            ),
          );
        }
      } catch (err) {
        return respond(res, 422, statusBody(422, 'Invalid', `${what} is invalid: ${(err as Error).message}`));
      }
    }
    const sent = next.metadata?.resourceVersion;
    if (sent !== undefined && sent !== current.metadata.resourceVersion) {
      return respond(
        res,
        409,
        statusBody(
          409,
          'Conflict',
          `Operation cannot be fulfilled on ${what}: the object has been modified; please apply your changes to the latest version and try again`,
          {
            name,
            group: 'serving.kserve.io',
            kind: 'inferenceservices',
          },
        ),
      );
    }
    if (next.metadata?.name !== name)
      return respond(res, 400, statusBody(400, 'BadRequest', `the name of the object (${next.metadata?.name}) does not match the name on the URL (${name})`));
    const invalid = kserve.validate(next);
    if (invalid)
      return respond(res, 422, statusBody(422, 'Invalid', `${what} is invalid: ${invalid}`, { name, group: 'serving.kserve.io', kind: 'inferenceservices' }));
    const updated: Obj = {
      ...next,
      metadata: {
        ...next.metadata,
        namespace,
        uid: current.metadata.uid,
        creationTimestamp: current.metadata.creationTimestamp,
        generation: current.metadata.generation + (JSON.stringify(next.spec) === JSON.stringify(current.spec) ? 0 : 1),
      },
      status: current.status, // the status subresource: only the controller writes it
    };
    commit('inferenceservices', 'MODIFIED', updated);
    const answer = structuredClone(updated);
    kserve.reconcile(namespace, name);
    return respond(res, 200, answer);
  }

  /** kubectl asks for server-side printing (a meta.k8s.io Table) first. */
  const wantsTable = (req: IncomingMessage) => /as=Table/.test(String(req.headers.accept ?? ''));

  // -------------------------------------------------------------------------------------------------------------
  // Deployment controller: defaults as the API server fills them, all replicas ready one kubelet step later (no pods).

  function createDeployment(namespace: string, body: Obj): Obj {
    const spec = body.spec ?? {};
    const deployment: Obj = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { ...body.metadata, namespace, uid: randomUUID(), generation: 1, creationTimestamp: now() },
      spec: {
        replicas: 1,
        revisionHistoryLimit: 10,
        progressDeadlineSeconds: 600,
        strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: '25%', maxSurge: '25%' } },
        ...spec,
        template: { ...spec.template, spec: { restartPolicy: 'Always', dnsPolicy: 'ClusterFirst', ...spec.template.spec } },
      },
      status: {},
    };
    created.deployments++;
    createdDeployments.push(structuredClone(body));
    commit('deployments', 'ADDED', deployment);
    const k = key(namespace, deployment.metadata.name);
    const uid = deployment.metadata.uid;
    later(stepMs, () => {
      const current = store.deployments.get(k);
      if (!current || current.metadata.uid !== uid) return;
      const next = structuredClone(current);
      const n = next.spec.replicas;
      next.status = {
        observedGeneration: 1,
        replicas: n,
        updatedReplicas: n,
        readyReplicas: n,
        availableReplicas: n,
        conditions: [
          {
            type: 'Available',
            status: 'True',
            reason: 'MinimumReplicasAvailable',
            message: 'Deployment has minimum availability.',
            lastUpdateTime: now(),
            lastTransitionTime: now(),
          },
          {
            type: 'Progressing',
            status: 'True',
            reason: 'NewReplicaSetAvailable',
            message: `ReplicaSet "${next.metadata.name}" has successfully progressed.`,
            lastUpdateTime: now(),
            lastTransitionTime: now(),
          },
        ],
      };
      commit('deployments', 'MODIFIED', next);
    });
    return structuredClone(deployment);
  }

  // -------------------------------------------------------------------------------------------------------------
  // Job controller

  function createJob(namespace: string, body: Obj): Obj {
    const uid = randomUUID();
    const spec = body.spec ?? {};
    const job: Obj = {
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: { ...body.metadata, namespace, uid, generation: 1, creationTimestamp: now() },
      spec: {
        parallelism: 1,
        completions: 1,
        backoffLimit: 6,
        completionMode: 'NonIndexed',
        suspend: false,
        podReplacementPolicy: spec.podFailurePolicy ? 'Failed' : 'TerminatingOrFailed',
        manualSelector: false,
        ...spec,
        selector: { matchLabels: { [CONTROLLER_UID]: uid } },
        template: {
          ...spec.template,
          metadata: {
            ...spec.template?.metadata,
            labels: {
              ...spec.template?.metadata?.labels,
              [CONTROLLER_UID]: uid,
              [JOB_NAME]: body.metadata.name,
              'controller-uid': uid,
              'job-name': body.metadata.name,
            },
          },
        },
      },
      status: {},
    };
    commit('jobs', 'ADDED', job);
    created.jobs++;
    later(0, () => syncJob(namespace, job.metadata.name));
    return job;
  }

  const jobOf = (namespace: string, name: string) => store.jobs.get(key(namespace, name));
  const podsOf = (job: Obj) =>
    [...store.pods.values()].filter(
      (p) => p.metadata.namespace === job.metadata.namespace && p.metadata.ownerReferences?.some((o: Obj) => o.uid === job.metadata.uid),
    );
  const condition = (obj: Obj, type: string) => (obj.status?.conditions ?? []).find((c: Obj) => c.type === type && c.status === 'True');
  const finished = (job: Obj) => condition(job, 'Complete') || condition(job, 'Failed');
  /** Past the point of no return: the terminal condition is only waiting for the pods to terminate. */
  const ending = (job: Obj) => finished(job) || condition(job, 'FailureTarget') || condition(job, 'SuccessCriteriaMet');

  function updateJob(job: Obj, mutate: (job: Obj) => void) {
    const copy = structuredClone(job);
    mutate(copy);
    commit('jobs', 'MODIFIED', copy);
    return copy;
  }

  function setCondition(job: Obj, type: string, status: 'True' | 'False', reason: string, message: string) {
    const conditions = (job.status.conditions ??= []);
    const existing = conditions.find((c: Obj) => c.type === type);
    const value = { type, status, reason, message, lastProbeTime: now(), lastTransitionTime: now() };
    if (existing) Object.assign(existing, value);
    else conditions.push(value);
  }

  /** What the Job controller does on any change: start pods, count results, end the Job. */
  function syncJob(namespace: string, name: string) {
    let job = jobOf(namespace, name);
    if (!job || ending(job) || job.metadata.deletionTimestamp) return;
    if (job.spec.suspend) {
      if (!condition(job, 'Suspended')) {
        job = updateJob(job, (j) => setCondition(j, 'Suspended', 'True', 'JobSuspended', 'Job suspended'));
      }
      return;
    }
    if (condition(job, 'Suspended')) job = updateJob(job, (j) => setCondition(j, 'Suspended', 'False', 'JobResumed', 'Job resumed'));
    if (!job.status.startTime) job = updateJob(job, (j) => (j.status.startTime = now()));

    const pods = podsOf(job);
    const indexed = job.spec.completionMode === 'Indexed';
    const ignoresDisruption = (job.spec.podFailurePolicy?.rules ?? []).some(
      (r: Obj) => r.action === 'Ignore' && (r.onPodConditions ?? []).some((c: Obj) => c.type === 'DisruptionTarget'),
    );
    const disrupted = (p: Obj) => condition(p, 'DisruptionTarget');
    const counted = (p: Obj) => p.status.phase === 'Failed' && !(ignoresDisruption && disrupted(p));
    const failed = pods.filter(counted).length + (job.status.uncountedFailed ?? 0);
    const succeededIndexes = new Set(
      pods.filter((p) => p.status.phase === 'Succeeded').map((p) => (indexed ? p.metadata.annotations?.[INDEX] : p.metadata.name)),
    );
    const active = pods.filter((p) => p.status.phase !== 'Succeeded' && p.status.phase !== 'Failed' && !p.metadata.deletionTimestamp);

    if (failed > job.spec.backoffLimit) return failJob(job, 'BackoffLimitExceeded', 'Job has reached the specified backoff limit');
    const completions = job.spec.completions ?? 1;
    if (succeededIndexes.size >= completions) return completeJob(job);

    // Start a pod for every index (or completion) that has neither an active nor a succeeded pod.
    const want = indexed ? completions : Math.min(job.spec.parallelism ?? 1, completions - succeededIndexes.size);
    const slots = indexed
      ? Array.from({ length: completions }, (_, i) => String(i)).filter(
          (i) => !succeededIndexes.has(i) && !active.some((p) => p.metadata.annotations?.[INDEX] === i),
        )
      : Array.from({ length: Math.max(0, want - active.length) }, () => undefined);
    for (const index of slots) startPod(job, index);
    const after = podsOf(job);
    job = updateJob(job, (j) => {
      j.status.active = after.filter((p) => p.status.phase !== 'Succeeded' && p.status.phase !== 'Failed').length;
      j.status.succeeded = after.filter((p) => p.status.phase === 'Succeeded').length;
      j.status.failed = after.filter((p) => p.status.phase === 'Failed').length;
      j.status.ready = after.filter((p) => p.status.phase === 'Running').length;
      if (indexed) j.status.completedIndexes = [...succeededIndexes].sort().join(',');
    });
  }

  function completeJob(job: Obj) {
    // Since 1.31 SuccessCriteriaMet comes first; Complete follows once every pod has terminated.
    const interim = updateJob(job, (j) => setCondition(j, 'SuccessCriteriaMet', 'True', 'CompletionsReached', 'Reached expected number of succeeded pods'));
    later(stepMs, () => {
      const current = jobOf(interim.metadata.namespace, interim.metadata.name);
      if (!current || finished(current)) return;
      updateJob(current, (j) => {
        setCondition(j, 'Complete', 'True', 'CompletionsReached', 'Reached expected number of succeeded pods');
        j.status.completionTime = now();
        j.status.active = 0;
      });
    });
  }

  function failJob(job: Obj, reason: string, message: string) {
    // FailureTarget first; the active pods are terminated; then Failed with the same reason and message.
    const interim = updateJob(job, (j) => setCondition(j, 'FailureTarget', 'True', reason, message));
    for (const pod of podsOf(interim)) {
      if (pod.status.phase === 'Succeeded' || pod.status.phase === 'Failed') continue;
      terminatePod(pod, 137, 'Error', 'terminated by the Job controller');
    }
    later(stepMs, () => {
      const current = jobOf(interim.metadata.namespace, interim.metadata.name);
      if (!current || finished(current)) return;
      updateJob(current, (j) => {
        setCondition(j, 'Failed', 'True', reason, message);
        j.status.active = 0;
      });
    });
  }

  function startPod(job: Obj, index: string | undefined) {
    const namespace = job.metadata.namespace;
    const runKey = `${namespace}/${job.metadata.name}/${index ?? ''}`;
    const run = podRuns.get(runKey) ?? 0;
    podRuns.set(runKey, run + 1);
    const suffix = Math.random().toString(36).slice(2, 7).padEnd(5, 'x');
    const name = index === undefined ? `${job.metadata.name}-${suffix}` : `${job.metadata.name}-${index}-${suffix}`;
    const template = structuredClone(job.spec.template);
    const spec: Obj = { ...template.spec, nodeName: undefined };
    if (index !== undefined) {
      spec.hostname = `${job.metadata.name}-${index}`;
      for (const c of spec.containers ?? []) {
        c.env = [...(c.env ?? []), { name: 'JOB_COMPLETION_INDEX', valueFrom: { fieldRef: { fieldPath: `metadata.annotations['${INDEX}']` } } }];
      }
    }
    const pod: Obj = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name,
        namespace,
        uid: randomUUID(),
        creationTimestamp: now(),
        generateName: `${job.metadata.name}-`,
        labels: { ...template.metadata?.labels, ...(index !== undefined ? { [INDEX]: index } : {}) },
        annotations: { ...template.metadata?.annotations, ...(index !== undefined ? { [INDEX]: index } : {}) },
        ownerReferences: [{ apiVersion: 'batch/v1', kind: 'Job', name: job.metadata.name, uid: job.metadata.uid, controller: true, blockOwnerDeletion: true }],
        finalizers: ['batch.kubernetes.io/job-tracking'],
      },
      spec,
      status: { phase: 'Pending', qosClass: 'BestEffort' },
    };
    commit('pods', 'ADDED', pod);
    created.pods++;
    logs.set(key(namespace, name), []);
    const command: string[] | undefined = spec.containers?.[0]?.command;
    if (command?.[0] === STAND_IN_COMMAND && command[1]) {
      const program = JSON.parse(command[1]) as PodProgram;
      const steps = run === 0 ? program.steps : (program.replacements?.[Math.min(run, program.replacements.length) - 1] ?? program.steps);
      void runProgram(namespace, name, steps);
    }
  }

  function onPodChange(pod: Obj, type: StoredEvent['type']) {
    const owner = pod.metadata.ownerReferences?.find((o: Obj) => o.kind === 'Job' && o.controller);
    if (owner && (type === 'DELETED' || pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed')) {
      later(0, () => syncJob(pod.metadata.namespace, owner.name));
    }
    if (type === 'DELETED' || ['Succeeded', 'Failed'].includes(pod.status?.phase)) {
      // Follow streams end once the container has ended and its last lines are out.
      for (const f of logFollowers) if (f.namespace === pod.metadata.namespace && f.pod === pod.metadata.name) endFollower(f);
    }
  }

  // -------------------------------------------------------------------------------------------------------------
  // Kubelet

  const podNow = (namespace: string, name: string) => store.pods.get(key(namespace, name));

  function updatePod(namespace: string, name: string, mutate: (pod: Obj) => void): Obj | undefined {
    const pod = podNow(namespace, name);
    if (!pod) return undefined;
    const copy = structuredClone(pod);
    mutate(copy);
    commit('pods', 'MODIFIED', copy);
    return copy;
  }

  const containerName = (pod: Obj) => pod.spec.containers?.[0]?.name ?? 'main';
  const setContainer = (pod: Obj, state: Obj, extra: Obj = {}) => {
    pod.status.containerStatuses = [
      {
        name: containerName(pod),
        image: pod.spec.containers?.[0]?.image,
        imageID: '',
        ready: !!state.running,
        restartCount: 0,
        started: !!state.running,
        state,
        ...extra,
      },
    ];
  };
  const setPodCondition = (pod: Obj, type: string, status: string, reason?: string, message?: string) => {
    const conditions = (pod.status.conditions ??= []);
    const value = { type, status, lastProbeTime: null, lastTransitionTime: now(), ...(reason ? { reason } : {}), ...(message ? { message } : {}) };
    const existing = conditions.find((c: Obj) => c.type === type);
    if (existing) Object.assign(existing, value);
    else conditions.push(value);
  };

  function schedule(namespace: string, name: string, node = 'gpu-node-1') {
    return updatePod(namespace, name, (p) => {
      p.spec.nodeName = node;
      setPodCondition(p, 'PodScheduled', 'True');
      setContainer(p, { waiting: { reason: 'ContainerCreating' } });
    });
  }
  function unschedulable(namespace: string, name: string, message: string) {
    return updatePod(namespace, name, (p) => setPodCondition(p, 'PodScheduled', 'False', 'Unschedulable', message));
  }
  function waiting(namespace: string, name: string, reason: string, message?: string) {
    return updatePod(namespace, name, (p) => {
      if (!p.spec.nodeName) {
        p.spec.nodeName = 'gpu-node-1';
        setPodCondition(p, 'PodScheduled', 'True');
      }
      setContainer(p, { waiting: { reason, ...(message ? { message } : {}) } });
    });
  }
  /** The first secretKeyRef of the pod's env that cannot be resolved, as the kubelet words it; none: undefined. */
  function missingSecret(namespace: string, name: string): string | undefined {
    for (const c of podNow(namespace, name)?.spec.containers ?? []) {
      for (const e of c.env ?? []) {
        const ref = e.valueFrom?.secretKeyRef;
        if (!ref || ref.optional) continue;
        const secret = store.secrets.get(key(namespace, ref.name));
        if (!secret) return `secret "${ref.name}" not found`;
        if (secret.data?.[ref.key] === undefined) return `couldn't find key ${ref.key} in Secret ${namespace}/${ref.name}`;
      }
    }
    return undefined;
  }
  /** The environment a pod's first container sees: values, secretKeyRefs decoded, fieldRefs to its annotations. */
  function envOfPod(pod: Obj): Record<string, string | undefined> {
    const env: Record<string, string | undefined> = {};
    for (const e of pod.spec.containers?.[0]?.env ?? []) {
      const secret = e.valueFrom?.secretKeyRef;
      const field = /^metadata\.annotations\['(.+)'\]$/.exec(e.valueFrom?.fieldRef?.fieldPath ?? '');
      if (secret) {
        const data = store.secrets.get(key(pod.metadata.namespace, secret.name))?.data?.[secret.key];
        env[e.name] = data === undefined ? undefined : Buffer.from(data, 'base64').toString();
      } else if (field) env[e.name] = pod.metadata.annotations?.[field[1]!];
      else env[e.name] = e.value;
    }
    return env;
  }
  function running(namespace: string, name: string) {
    return updatePod(namespace, name, (p) => {
      if (!p.spec.nodeName) {
        p.spec.nodeName = 'gpu-node-1';
        setPodCondition(p, 'PodScheduled', 'True');
      }
      p.status.phase = 'Running';
      p.status.startTime ??= now();
      setPodCondition(p, 'Ready', 'True');
      setContainer(p, { running: { startedAt: now() } });
    });
  }
  function terminatePod(pod: Obj, exitCode: number, reason: string, message?: string, podLevel?: { reason: string; message: string; disruption?: string }) {
    updatePod(pod.metadata.namespace, pod.metadata.name, (p) => {
      const startedAt = p.status.containerStatuses?.[0]?.state?.running?.startedAt ?? now();
      p.status.phase = exitCode === 0 && !podLevel ? 'Succeeded' : 'Failed';
      setPodCondition(p, 'Ready', 'False', 'PodCompleted');
      if (podLevel?.disruption) setPodCondition(p, 'DisruptionTarget', 'True', podLevel.disruption, podLevel.message);
      if (podLevel) {
        p.status.reason = podLevel.reason;
        p.status.message = podLevel.message;
      }
      setContainer(p, {
        terminated: { exitCode, reason, ...(message ? { message } : {}), startedAt, finishedAt: now(), containerID: `containerd://${randomUUID()}` },
      });
    });
  }
  function appendLog(namespace: string, name: string, text: string) {
    const lines = logs.get(key(namespace, name));
    if (!lines) return;
    const ms = BigInt(clock());
    const lastNs = lines.at(-1)?.ns ?? 0n;
    let ns = ms * 1_000_000n;
    if (ns <= lastNs) ns = lastNs + 1n; // strictly increasing, as a container runtime's clock is
    const line: LogLine = { ns, text };
    lines.push(line);
    for (const f of logFollowers) if (f.namespace === namespace && f.pod === name) f.res.write(formatLine(line, f.timestamps));
  }

  async function runProgram(namespace: string, name: string, steps: PodStep[]) {
    const alive = () => !closed && podNow(namespace, name) !== undefined && !['Succeeded', 'Failed'].includes(podNow(namespace, name)!.status.phase);
    const pause = (ms: number) => new Promise<void>((resolve) => later(ms, resolve));
    await pause(stepMs);
    let scheduled = false;
    let started = false;
    const ensureStarted = async () => {
      if (!scheduled) {
        schedule(namespace, name);
        scheduled = true;
        await pause(stepMs);
      }
      if (!started) {
        // The kubelet resolves secretKeyRef env before it creates the container, and retries until it can.
        for (let missing = missingSecret(namespace, name); missing; missing = missingSecret(namespace, name)) {
          if (!alive()) return;
          waiting(namespace, name, 'CreateContainerConfigError', missing);
          await pause(stepMs);
        }
        if (!alive()) return;
        running(namespace, name);
        started = true;
      }
    };
    for (const step of steps) {
      if (!alive()) return;
      if ('unschedulable' in step) {
        unschedulable(namespace, name, step.unschedulable);
        if (step.forMs === undefined) return;
        await pause(step.forMs);
      } else if ('waiting' in step) {
        waiting(namespace, name, step.waiting, step.message);
        scheduled = true;
        if (step.forMs === undefined) return;
        await pause(step.forMs);
      } else if ('log' in step) {
        await ensureStarted();
        appendLog(namespace, name, step.log);
      } else if ('sleepMs' in step) {
        await ensureStarted();
        await pause(step.sleepMs);
      } else if ('exit' in step) {
        await ensureStarted();
        terminatePod(podNow(namespace, name)!, step.exit, step.reason ?? (step.exit === 0 ? 'Completed' : 'Error'), step.message);
        return;
      } else if ('oom' in step) {
        await ensureStarted();
        terminatePod(podNow(namespace, name)!, 137, 'OOMKilled');
        return;
      } else if ('evict' in step) {
        await ensureStarted();
        terminatePod(podNow(namespace, name)!, 137, 'Error', undefined, {
          reason: 'Evicted',
          message: step.evict,
          disruption: step.disruption === false ? undefined : 'TerminationByKubelet',
        });
        return;
      } else if ('preempt' in step) {
        await ensureStarted();
        terminatePod(podNow(namespace, name)!, 137, 'Error', undefined, {
          reason: 'Preempting',
          message: 'Preempted in order to admit critical pod',
          disruption: 'PreemptionByScheduler',
        });
        return;
      } else if ('forever' in step) {
        await ensureStarted();
        return;
      }
    }
    if (!alive()) return;
    await ensureStarted();
    terminatePod(podNow(namespace, name)!, 0, 'Completed');
  }

  // -------------------------------------------------------------------------------------------------------------
  // Deletion and garbage collection

  function deleteObject(kind: Kind, namespace: string, name: string, propagation: string): Obj | undefined {
    const obj = store[kind].get(key(namespace, name));
    if (!obj) return undefined;
    const last = structuredClone(obj);
    last.metadata.deletionTimestamp = now();
    last.metadata.deletionGracePeriodSeconds = 0;
    if (kind === 'pods' && !['Succeeded', 'Failed'].includes(last.status.phase)) {
      last.status.phase = 'Failed';
      setContainer(last, { terminated: { exitCode: 137, reason: 'Error', finishedAt: now() } });
    }
    commit(kind, 'DELETED', last);
    const uid = obj.metadata.uid;
    // Dependents (a Job's pods, its headless Service, its task Secret) go with it unless orphaned, as the garbage
    // collector does.
    for (const dependentKind of ['pods', 'services', 'secrets'] as Kind[]) {
      for (const dep of [...store[dependentKind].values()]) {
        if (!dep.metadata.ownerReferences?.some((o: Obj) => o.uid === uid)) continue;
        if (propagation === 'Orphan') {
          const orphan = structuredClone(dep);
          orphan.metadata.ownerReferences = orphan.metadata.ownerReferences.filter((o: Obj) => o.uid !== uid);
          commit(dependentKind, 'MODIFIED', orphan);
        } else {
          deleteObject(dependentKind, dep.metadata.namespace, dep.metadata.name, propagation);
        }
      }
    }
    return last;
  }

  // -------------------------------------------------------------------------------------------------------------
  // HTTP

  function respond(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
    res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
  }
  const notFound = (res: ServerResponse, kind: string, group: string, name: string) =>
    respond(res, 404, statusBody(404, 'NotFound', `${group ? `${kind}.${group}` : kind} "${name}" not found`, { name, group, kind }));

  const discovery: Record<string, Obj> = {
    '/api': { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: '127.0.0.1' }] },
    '/apis': {
      kind: 'APIGroupList',
      apiVersion: 'v1',
      groups: [
        { name: 'apps', versions: [{ groupVersion: 'apps/v1', version: 'v1' }], preferredVersion: { groupVersion: 'apps/v1', version: 'v1' } },
        { name: 'batch', versions: [{ groupVersion: 'batch/v1', version: 'v1' }], preferredVersion: { groupVersion: 'batch/v1', version: 'v1' } },
        {
          name: 'serving.kserve.io',
          versions: [{ groupVersion: 'serving.kserve.io/v1beta1', version: 'v1beta1' }],
          preferredVersion: { groupVersion: 'serving.kserve.io/v1beta1', version: 'v1beta1' },
        },
      ],
    },
    '/api/v1': {
      kind: 'APIResourceList',
      groupVersion: 'v1',
      resources: [
        { name: 'namespaces', singularName: 'namespace', namespaced: false, kind: 'Namespace', verbs: ['get', 'list'], shortNames: ['ns'] },
        {
          name: 'pods',
          singularName: 'pod',
          namespaced: true,
          kind: 'Pod',
          verbs: ['delete', 'get', 'list', 'watch'],
          shortNames: ['po'],
          categories: ['all'],
        },
        { name: 'pods/log', singularName: '', namespaced: true, kind: 'Pod', verbs: ['get'] },
        {
          name: 'services',
          singularName: 'service',
          namespaced: true,
          kind: 'Service',
          verbs: ['create', 'delete', 'get', 'list', 'watch'],
          shortNames: ['svc'],
          categories: ['all'],
        },
        { name: 'secrets', singularName: 'secret', namespaced: true, kind: 'Secret', verbs: ['create', 'delete', 'get', 'list'] },
      ],
    },
    '/apis/batch/v1': {
      kind: 'APIResourceList',
      apiVersion: 'v1',
      groupVersion: 'batch/v1',
      resources: [
        { name: 'jobs', singularName: 'job', namespaced: true, kind: 'Job', verbs: ['create', 'delete', 'get', 'list', 'watch'], categories: ['all'] },
        { name: 'jobs/status', singularName: '', namespaced: true, kind: 'Job', verbs: ['get'] },
      ],
    },
    '/apis/apps/v1': {
      kind: 'APIResourceList',
      apiVersion: 'v1',
      groupVersion: 'apps/v1',
      resources: [
        {
          name: 'deployments',
          singularName: 'deployment',
          namespaced: true,
          kind: 'Deployment',
          verbs: ['create', 'delete', 'get', 'list', 'watch'],
          shortNames: ['deploy'],
          categories: ['all'],
        },
        { name: 'deployments/status', singularName: '', namespaced: true, kind: 'Deployment', verbs: ['get'] },
      ],
    },
    '/apis/serving.kserve.io/v1beta1': {
      kind: 'APIResourceList',
      apiVersion: 'v1',
      groupVersion: 'serving.kserve.io/v1beta1',
      resources: [
        {
          name: 'inferenceservices',
          singularName: 'inferenceservice',
          namespaced: true,
          kind: 'InferenceService',
          verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'],
          shortNames: ['isvc'],
        },
        { name: 'inferenceservices/status', singularName: '', namespaced: true, kind: 'InferenceService', verbs: ['get'] },
      ],
    },
    '/version': { major: '1', minor: '32', gitVersion: 'v1.32.0-stand-in', platform: 'linux/amd64' },
  };

  const ROUTE =
    /^\/(api\/v1|apis\/batch\/v1|apis\/apps\/v1|apis\/serving\.kserve\.io\/v1beta1)(?:\/namespaces\/([^/]+))?\/(jobs|pods|services|secrets|deployments|inferenceservices)(?:\/([^/]+))?(?:\/(log|status))?$/;
  /** The API group path each resource is served under. */
  const GROUP_PATH: Record<Kind, string> = {
    jobs: 'apis/batch/v1',
    deployments: 'apis/apps/v1',
    pods: 'api/v1',
    services: 'api/v1',
    secrets: 'api/v1',
    inferenceservices: 'apis/serving.kserve.io/v1beta1',
  };
  const GROUP: Record<Kind, string> = { jobs: 'batch', deployments: 'apps', pods: '', services: '', secrets: '', inferenceservices: 'serving.kserve.io' };
  const API_VERSION: Record<Kind, string> = {
    jobs: 'batch/v1',
    deployments: 'apps/v1',
    pods: 'v1',
    services: 'v1',
    secrets: 'v1',
    inferenceservices: 'serving.kserve.io/v1beta1',
  };

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const url = new URL(req.url ?? '/', 'http://stand-in');
    const method = req.method ?? 'GET';
    const record: RecordedRequest = {
      method,
      path: url.pathname,
      query: url.searchParams,
      status: 0,
      watch: url.searchParams.get('watch') === 'true' || url.searchParams.get('watch') === '1',
    };
    requests.push(record);
    res.on('finish', () => (record.status = res.statusCode));
    res.on('close', () => (record.status ||= res.statusCode));

    const fault = faults.find(
      (f) =>
        f.left > 0 &&
        (!f.method || f.method === method) &&
        (!f.path || (typeof f.path === 'string' ? `${url.pathname}${url.search}`.includes(f.path) : f.path.test(`${url.pathname}${url.search}`))),
    );
    if (fault) {
      fault.left--;
      if (fault.delayMs) await new Promise((r) => setTimeout(r, fault.delayMs));
      if (fault.reset) return void req.socket.destroy();
      if (fault.malformed)
        return void res.writeHead(200, { 'content-type': 'application/json' }).end('{"kind":"Job","apiVersion":"batch/v1","metadata":{"name":');
      if (fault.status) {
        const headers: Record<string, string> = fault.retryAfterSeconds !== undefined ? { 'retry-after': String(fault.retryAfterSeconds) } : {};
        const reason =
          fault.status === 429
            ? 'TooManyRequests'
            : fault.status === 401
              ? 'Unauthorized'
              : fault.status === 403
                ? 'Forbidden'
                : fault.status >= 500
                  ? 'InternalError'
                  : 'BadRequest';
        return respond(res, fault.status, fault.body ?? statusBody(fault.status, reason, `stand-in fault: ${fault.status}`), headers);
      }
    }

    // kubectl (client-go) sends no bearer token over plain http: reads may be anonymous when a test allows it.
    const anonymousRead = anonymousReads && !req.headers.authorization && method === 'GET';
    if (token !== null && req.headers.authorization !== `Bearer ${token}` && !anonymousRead) {
      return respond(res, 401, statusBody(401, 'Unauthorized', 'Unauthorized'));
    }
    if (method === 'GET' && discovery[url.pathname]) return respond(res, 200, discovery[url.pathname]);
    if (url.pathname.startsWith('/api/v1/namespaces/') && /^\/api\/v1\/namespaces\/[^/]+$/.test(url.pathname) && method === 'GET') {
      const name = decodeURIComponent(url.pathname.split('/').pop()!);
      if (!namespaces.has(name)) return notFound(res, 'namespaces', '', name);
      return respond(res, 200, { kind: 'Namespace', apiVersion: 'v1', metadata: { name, uid: name }, status: { phase: 'Active' } });
    }
    const m = ROUTE.exec(url.pathname);
    if (!m) return respond(res, 404, statusBody(404, 'NotFound', 'the server could not find the requested resource'));
    const [, groupPath, nsRaw, kind, nameRaw, sub] = m as unknown as [string, string, string | undefined, Kind, string | undefined, string | undefined];
    const namespace = nsRaw === undefined ? undefined : decodeURIComponent(nsRaw);
    const name = nameRaw === undefined ? undefined : decodeURIComponent(nameRaw);
    if (GROUP_PATH[kind] !== groupPath) return respond(res, 404, statusBody(404, 'NotFound', 'the server could not find the requested resource'));
    const group = GROUP[kind];
    if (namespace !== undefined && !namespaces.has(namespace)) return notFound(res, 'namespaces', '', namespace);

    if (method === 'GET' && name === undefined) {
      const selector = parseSelector(url.searchParams.get('labelSelector'));
      if (record.watch) return openWatch(req, res, kind, namespace, selector, url.searchParams);
      const items = [...store[kind].values()].filter((o) => (namespace === undefined || o.metadata.namespace === namespace) && selector(o.metadata.labels));
      if (kind === 'inferenceservices' && wantsTable(req)) return respond(res, 200, kserve.table(items, String(rv)));
      const listKind = {
        jobs: 'JobList',
        pods: 'PodList',
        services: 'ServiceList',
        secrets: 'SecretList',
        deployments: 'DeploymentList',
        inferenceservices: 'InferenceServiceList',
      }[kind];
      return respond(res, 200, { kind: listKind, apiVersion: API_VERSION[kind], metadata: { resourceVersion: String(rv) }, items });
    }
    if (namespace === undefined)
      return respond(res, 405, statusBody(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource'));

    if (method === 'POST' && name === undefined) {
      let body: Obj;
      try {
        body = JSON.parse(await readAll(req));
      } catch (err) {
        return respond(res, 400, statusBody(400, 'BadRequest', `the body of the request was in an unknown format: ${(err as Error).message}`));
      }
      const invalid = validate(kind, body);
      if (invalid)
        return respond(
          res,
          422,
          statusBody(422, 'Invalid', `${kind}${group ? `.${group}` : ''} "${body?.metadata?.name ?? ''}" is invalid: ${invalid}`, {
            name: body?.metadata?.name,
            group,
            kind,
          }),
        );
      const objName = body.metadata.name as string;
      if (store[kind].has(key(namespace, objName))) {
        return respond(
          res,
          409,
          statusBody(409, 'AlreadyExists', `${kind}${group ? `.${group}` : ''} "${objName}" already exists`, { name: objName, group, kind }),
        );
      }
      if (kind === 'jobs') return respond(res, 201, createJob(namespace, body));
      if (kind === 'deployments') return respond(res, 201, createDeployment(namespace, body));
      if (kind === 'inferenceservices') return respond(res, 201, createInferenceService(namespace, body));
      const obj: Obj = { ...body, metadata: { ...body.metadata, namespace, uid: randomUUID(), creationTimestamp: now() } };
      if (kind === 'services') {
        obj.spec = { type: 'ClusterIP', sessionAffinity: 'None', ...obj.spec, clusterIPs: obj.spec?.clusterIP === 'None' ? ['None'] : ['10.96.0.10'] };
        obj.status = { loadBalancer: {} };
        created.services++;
      }
      if (kind === 'secrets') {
        // stringData is write-only: merged into data (base64), never stored or returned as such.
        obj.type ??= 'Opaque';
        obj.data = { ...obj.data };
        for (const [k, v] of Object.entries((obj.stringData ?? {}) as Record<string, string>)) obj.data[k] = Buffer.from(v).toString('base64');
        delete obj.stringData;
        created.secrets++;
      }
      commit(kind, 'ADDED', obj);
      return respond(res, 201, obj);
    }

    if (name === undefined) return respond(res, 405, statusBody(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource'));
    const obj = store[kind].get(key(namespace, name));

    if (method === 'GET' && sub === 'log' && kind === 'pods') return podLog(res, namespace, name, url.searchParams);
    if (method === 'GET' && obj && kind === 'inferenceservices' && wantsTable(req)) return respond(res, 200, kserve.table([obj], obj.metadata.resourceVersion));
    if (method === 'GET') return obj ? respond(res, 200, obj) : notFound(res, kind, group, name);
    if ((method === 'PUT' || method === 'PATCH') && kind === 'inferenceservices') return updateInferenceService(req, res, namespace, name, obj);

    if (method === 'DELETE') {
      if (!obj) return notFound(res, kind, group, name);
      let propagation = url.searchParams.get('propagationPolicy') ?? undefined;
      const text = await readAll(req);
      if (text.trim()) {
        try {
          propagation ??= (JSON.parse(text) as Obj).propagationPolicy;
        } catch {
          return respond(res, 400, statusBody(400, 'BadRequest', 'the body of the request was in an unknown format'));
        }
      }
      // The API's default for batch/v1 Jobs is to orphan their pods (kubectl asks for Background itself).
      const last = deleteObject(kind, namespace, name, propagation ?? (kind === 'jobs' ? 'Orphan' : 'Background'))!;
      if (kind === 'inferenceservices') kserve.forget(last.metadata.uid);
      if (kind === 'jobs' || kind === 'deployments' || kind === 'inferenceservices')
        return respond(res, 200, statusBody(200, '', '', { name, group, kind, uid: last.metadata.uid }));
      return respond(res, 200, last);
    }
    return respond(res, 405, statusBody(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource'));
  }

  function validate(kind: Kind, body: Obj): string | undefined {
    if (kind === 'inferenceservices') return kserve.validate(body);
    const name = body?.metadata?.name;
    if (typeof name !== 'string' || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(name) || name.length > 63) {
      return `metadata.name: Invalid value: ${JSON.stringify(name)}: a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character`;
    }
    if (kind === 'jobs') {
      if (body.apiVersion !== 'batch/v1' || body.kind !== 'Job') return 'apiVersion/kind: must be batch/v1 Job';
      const spec = body.spec ?? {};
      const pod = spec.template?.spec;
      if (!pod?.containers?.length) return 'spec.template.spec.containers: Required value';
      if (pod.restartPolicy !== 'Never' && pod.restartPolicy !== 'OnFailure')
        return `spec.template.spec.restartPolicy: Required value: valid values: "OnFailure", "Never"`;
      if (spec.podFailurePolicy && pod.restartPolicy !== 'Never')
        return 'spec.podFailurePolicy: Invalid value: only "Never" is supported when podFailurePolicy is specified';
      if (spec.completionMode === 'Indexed' && !(spec.completions > 0)) return 'spec.completions: Required value: when completion mode is Indexed';
      for (const c of pod.containers) {
        if (!c.name || !c.image) return 'spec.template.spec.containers[0]: name and image are required';
        for (const [res, value] of Object.entries({ ...c.resources?.limits, ...c.resources?.requests })) {
          if (!/^[+]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+|[KMGTPE]i|[mkMGTPE]|n|u)?$/.test(String(value))) {
            return `spec.template.spec.containers[0].resources: Invalid value: "${value}" for ${res}: quantities must match the regular expression`;
          }
        }
      }
    }
    if (kind === 'deployments') {
      if (body.apiVersion !== 'apps/v1' || body.kind !== 'Deployment') return 'apiVersion/kind: must be apps/v1 Deployment';
      const spec = body.spec ?? {};
      const matchLabels: Record<string, string> | undefined = spec.selector?.matchLabels;
      if (!matchLabels || Object.keys(matchLabels).length === 0) return 'spec.selector: Required value';
      const templateLabels: Record<string, string> = spec.template?.metadata?.labels ?? {};
      if (Object.entries(matchLabels).some(([k, v]) => templateLabels[k] !== v)) {
        return 'spec.template.metadata.labels: Invalid value: `selector` does not match template `labels`';
      }
      if (spec.replicas !== undefined && !(Number.isInteger(spec.replicas) && spec.replicas >= 0))
        return 'spec.replicas: Invalid value: must be greater than or equal to 0';
      const pod = spec.template?.spec;
      if (!pod?.containers?.length) return 'spec.template.spec.containers: Required value';
      if (pod.restartPolicy !== undefined && pod.restartPolicy !== 'Always')
        return `spec.template.spec.restartPolicy: Unsupported value: "${pod.restartPolicy}": supported values: "Always"`;
      for (const c of pod.containers) {
        if (!c.name || !c.image) return 'spec.template.spec.containers[0]: name and image are required';
        for (const [res, value] of Object.entries({ ...c.resources?.limits, ...c.resources?.requests })) {
          if (!/^[+]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+|[KMGTPE]i|[mkMGTPE]|n|u)?$/.test(String(value))) {
            return `spec.template.spec.containers[0].resources: Invalid value: "${value}" for ${res}: quantities must match the regular expression`;
          }
        }
      }
    }
    if (kind === 'secrets') {
      for (const [k, v] of Object.entries((body.data ?? {}) as Record<string, unknown>)) {
        if (!/^[-._a-zA-Z0-9]+$/.test(k))
          return `data[${k}]: Invalid value: ${JSON.stringify(k)}: a valid config key must consist of alphanumeric characters, '-', '_' or '.'`;
        if (typeof v !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(v)) return `data[${k}]: Invalid value: illegal base64 data`;
      }
    }
    if (kind === 'services' && body.spec?.clusterIP === 'None' && !body.spec?.selector)
      return 'spec.selector: Required value: headless services need a selector here';
    return undefined;
  }

  function openWatch(_req: IncomingMessage, res: ServerResponse, kind: Kind, namespace: string | undefined, selector: Selector, params: URLSearchParams) {
    const from = params.get('resourceVersion');
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    res.flushHeaders();
    const w: Watcher = {
      kind,
      namespace,
      selector,
      res,
      frozen: false,
      malformedNext: false,
      bookmarks: params.get('allowWatchBookmarks') === 'true',
      close: () => {
        watchers.delete(w);
        if (bookmarkTimer) clearInterval(bookmarkTimer);
        if (timeout) clearTimeout(timeout);
        res.end();
      },
    };
    if (from && from !== '0' && Number(from) < oldestResumable) {
      res.write(`${JSON.stringify({ type: 'ERROR', object: statusBody(410, 'Expired', `too old resource version: ${from} (${rv})`) })}\n`);
      return void res.end();
    }
    if (!from || from === '0') {
      for (const o of store[kind].values())
        if ((namespace === undefined || o.metadata.namespace === namespace) && selector(o.metadata.labels)) send(w, 'ADDED', o);
    } else {
      for (const e of history) if (e.rv > Number(from) && matches(w, e)) send(w, e.type, e.object);
    }
    watchers.add(w);
    const timeoutSeconds = Number(params.get('timeoutSeconds') ?? 0);
    const timeout = timeoutSeconds > 0 ? setTimeout(() => w.close(), timeoutSeconds * 1000) : undefined;
    const bookmarkTimer = w.bookmarks && (options.bookmarkMs ?? 0) > 0 ? setInterval(() => bookmark(w), options.bookmarkMs) : undefined;
    res.on('close', () => {
      watchers.delete(w);
      if (bookmarkTimer) clearInterval(bookmarkTimer);
      if (timeout) clearTimeout(timeout);
    });
  }

  function bookmark(w: Watcher) {
    const kindName = { jobs: 'Job', pods: 'Pod', services: 'Service', secrets: 'Secret', deployments: 'Deployment', inferenceservices: 'InferenceService' }[
      w.kind
    ];
    send(w, 'BOOKMARK', { kind: kindName, apiVersion: API_VERSION[w.kind], metadata: { resourceVersion: String(rv) } });
  }

  function podLog(res: ServerResponse, namespace: string, name: string, params: URLSearchParams) {
    const pod = podNow(namespace, name);
    if (!pod) return notFound(res, 'pods', '', name);
    const container = params.get('container') ?? containerName(pod);
    if (container !== containerName(pod)) return respond(res, 400, statusBody(400, 'BadRequest', `container ${container} is not valid for pod ${name}`));
    const state = pod.status.containerStatuses?.[0]?.state;
    if (!state?.running && !state?.terminated) {
      const why = state?.waiting?.reason ?? 'ContainerCreating';
      return respond(res, 400, statusBody(400, 'BadRequest', `container "${container}" in pod "${name}" is waiting to start: ${why}`));
    }
    const timestamps = params.get('timestamps') === 'true';
    const follow = params.get('follow') === 'true';
    let lines = logs.get(key(namespace, name)) ?? [];
    const sinceSeconds = params.get('sinceSeconds');
    const sinceTime = params.get('sinceTime');
    if (sinceSeconds && sinceTime) return respond(res, 400, statusBody(400, 'BadRequest', 'at most one of sinceTime or sinceSeconds may be specified'));
    if (sinceSeconds) {
      const from = BigInt(clock() - Number(sinceSeconds) * 1000) * 1_000_000n;
      lines = lines.filter((l) => l.ns >= from);
    } else if (sinceTime) {
      const from = BigInt(Date.parse(sinceTime)) * 1_000_000n;
      lines = lines.filter((l) => l.ns >= from);
    }
    const tail = params.get('tailLines');
    if (tail) lines = lines.slice(-Number(tail));
    res.writeHead(200, { 'content-type': 'text/plain', 'transfer-encoding': 'chunked' });
    for (const line of lines) res.write(formatLine(line, timestamps));
    if (!follow || !state.running) return void res.end();
    const follower: LogFollower = { pod: name, namespace, timestamps, res };
    logFollowers.add(follower);
    res.on('close', () => logFollowers.delete(follower));
  }

  function endFollower(f: LogFollower) {
    logFollowers.delete(f);
    f.res.end();
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err) => {
      if (!res.headersSent) respond(res, 500, statusBody(500, 'InternalError', `stand-in bug: ${(err as Error).stack}`));
      else res.destroy();
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  // activeDeadlineSeconds, checked against the (injectable) clock as the Job controller would.
  const deadlineTicker = setInterval(() => {
    for (const job of [...store.jobs.values()]) {
      if (ending(job) || job.spec.suspend || !job.status.startTime || !job.spec.activeDeadlineSeconds) continue;
      if (clock() - Date.parse(job.status.startTime) >= job.spec.activeDeadlineSeconds * 1000) {
        failJob(job, 'DeadlineExceeded', 'Job was active longer than specified deadline');
      }
    }
  }, 20);

  const findPod = (selector: string | { job: string; index?: number }, namespace: string): Obj => {
    if (typeof selector === 'string') {
      const pod = podNow(namespace, selector);
      if (!pod) throw new Error(`stand-in: no pod ${selector} in ${namespace}`);
      return pod;
    }
    const job = jobOf(namespace, selector.job);
    if (!job) throw new Error(`stand-in: no job ${selector.job} in ${namespace}`);
    const pods = podsOf(job).filter((p) => selector.index === undefined || p.metadata.annotations?.[INDEX] === String(selector.index));
    const pod = pods.at(-1);
    if (!pod) throw new Error(`stand-in: job ${selector.job} has no pod${selector.index !== undefined ? ` with index ${selector.index}` : ''}`);
    return pod;
  };

  return {
    url,
    /** Counts of objects created through the API (and pods by the Job controller). */
    created,
    requests,
    namespaces,

    /** A client-node KubeConfig for this server (`loadFromOptions`), with the right token unless told otherwise. */
    kubeConfig(config: { token?: string; namespace?: string } = {}): KubeConfig {
      const kc = new KubeConfig();
      kc.loadFromOptions({
        clusters: [{ name: 'stand-in', server: url, skipTLSVerify: true }],
        users: [{ name: `stand-in-user-${nsCounter++}`, token: config.token ?? token ?? 'anything' }],
        contexts: [{ name: 'stand-in', cluster: 'stand-in', user: `stand-in-user-${nsCounter - 1}`, namespace: config.namespace ?? 'default' }],
        currentContext: 'stand-in',
      });
      return kc;
    },
    /** The same as a kubeconfig file, for kubectl. */
    kubeconfigYaml(namespace = 'default'): string {
      return [
        'apiVersion: v1',
        'kind: Config',
        'clusters:',
        '- name: stand-in',
        '  cluster:',
        `    server: ${url}`,
        'users:',
        '- name: stand-in',
        '  user:',
        `    token: ${token ?? 'anything'}`,
        'contexts:',
        '- name: stand-in',
        '  context:',
        '    cluster: stand-in',
        '    user: stand-in',
        `    namespace: ${namespace}`,
        'current-context: stand-in',
        '',
      ].join('\n');
    },

    jobs: (namespace = 'default') => [...store.jobs.values()].filter((j) => j.metadata.namespace === namespace),
    job: (name: string, namespace = 'default') => jobOf(namespace, name),
    pods: (namespace = 'default') => [...store.pods.values()].filter((p) => p.metadata.namespace === namespace),
    podsOfJob: (job: string, namespace = 'default') => {
      const j = jobOf(namespace, job);
      return j ? podsOf(j) : [];
    },
    services: (namespace = 'default') => [...store.services.values()].filter((s) => s.metadata.namespace === namespace),
    secrets: (namespace = 'default') => [...store.secrets.values()].filter((s) => s.metadata.namespace === namespace),
    /** What the pod's first container sees in its environment (Secrets and annotations resolved, as the kubelet does). */
    envOf: (pod: Obj) => envOfPod(pod),
    createdDeployments,
    deployments: (namespace = 'default') => [...store.deployments.values()].filter((d) => d.metadata.namespace === namespace),
    deployment: (name: string, namespace = 'default') => store.deployments.get(key(namespace, name)),
    inferenceServices: (namespace = 'default') => [...store.inferenceservices.values()].filter((o) => o.metadata.namespace === namespace),
    inferenceService: (name: string, namespace = 'default') => store.inferenceservices.get(key(namespace, name)),
    /** The simulated KServe: make a storage URI fail to load or answer errors; count the Knative revisions alive; its pods' metrics. */
    kserve: {
      failStorageUri: kserve.failStorageUri,
      healStorageUri: kserve.healStorageUri,
      setGpuCapacity: kserve.setGpuCapacity,
      pause: kserve.pause,
      resume: kserve.resume,
      revisions: kserve.revisions,
      answerWith: kserve.answerWith,
      restartPod: kserve.restartPod,
      queueProxyMetrics: kserve.queueProxyMetrics,
    },
    logOf: (pod: string, namespace = 'default') => (logs.get(key(namespace, pod)) ?? []).map((l) => l.text),
    resourceVersion: () => rv,

    /** Drives one pod (by name, or the latest pod of a Job and index) as a kubelet and scheduler would. */
    pod(selector: string | { job: string; index?: number }, namespace = 'default') {
      const name = () => findPod(selector, namespace).metadata.name as string;
      const self = {
        name,
        unschedulable(message: string) {
          unschedulable(namespace, name(), message);
          return self;
        },
        schedule(node?: string) {
          schedule(namespace, name(), node);
          return self;
        },
        waiting(reason: string, message?: string) {
          waiting(namespace, name(), reason, message);
          return self;
        },
        running() {
          running(namespace, name());
          return self;
        },
        log(...lines: string[]) {
          for (const line of lines) appendLog(namespace, name(), line);
          return self;
        },
        exit(code: number, reason?: string, message?: string) {
          terminatePod(findPod(selector, namespace), code, reason ?? (code === 0 ? 'Completed' : 'Error'), message);
          return self;
        },
        oomKilled() {
          terminatePod(findPod(selector, namespace), 137, 'OOMKilled');
          return self;
        },
        evict(message: string, disruption = true) {
          terminatePod(findPod(selector, namespace), 137, 'Error', undefined, {
            reason: 'Evicted',
            message,
            disruption: disruption ? 'TerminationByKubelet' : undefined,
          });
          return self;
        },
        preempt() {
          terminatePod(findPod(selector, namespace), 137, 'Error', undefined, {
            reason: 'Preempting',
            message: 'Preempted in order to admit critical pod',
            disruption: 'PreemptionByScheduler',
          });
          return self;
        },
        phase(phase: string) {
          updatePod(namespace, name(), (p) => (p.status.phase = phase));
          return self;
        },
        delete() {
          deleteObject('pods', namespace, name(), 'Background');
          return self;
        },
      };
      return self;
    },

    /** Drives one Job as Kueue or the Job controller would. */
    job$(name: string, namespace = 'default') {
      const current = () => {
        const job = jobOf(namespace, name);
        if (!job) throw new Error(`stand-in: no job ${name}`);
        return job;
      };
      return {
        /** Kueue admitting the Job: unsuspend it. */
        admit() {
          updateJob(current(), (j) => (j.spec.suspend = false));
          syncJob(namespace, name);
        },
        condition(type: string, status: 'True' | 'False', reason: string, message = '') {
          updateJob(current(), (j) => setCondition(j, type, status, reason, message));
        },
        fail(reason: string, message: string) {
          failJob(current(), reason, message);
        },
        /** Deleted behind Atelier's back (kubectl delete job --cascade=background). */
        delete() {
          deleteObject('jobs', namespace, name, 'Background');
        },
      };
    },

    /** Lets requests without credentials read (system:anonymous with a read-only role), for kubectl over http. */
    allowAnonymousReads() {
      anonymousReads = true;
    },

    // -- faults ---------------------------------------------------------------------------------------------------
    fault(spec: FaultSpec) {
      faults.push({ ...spec, left: spec.times ?? 1 });
    },
    clearFaults() {
      faults.length = 0;
    },
    /** Cuts every open watch connection without a word (a load balancer reset). */
    dropWatches() {
      for (const w of [...watchers]) {
        watchers.delete(w);
        w.res.destroy();
      }
    },
    /** Open watches go quiet but stay connected (a half-dead connection): only a stall timer notices. */
    freezeWatches() {
      for (const w of watchers) w.frozen = true;
    },
    /** The next event on each open watch arrives as a broken line. */
    corruptWatches() {
      for (const w of watchers) w.malformedNext = true;
    },
    /**
     * Other objects in the cluster move the (cluster-wide) resourceVersion on, then the event history is compacted:
     * resuming a watch from any resourceVersion seen before gets 410 Gone.
     */
    compact() {
      rv += 10;
      oldestResumable = rv;
      history.length = 0;
    },
    /** Compacts and tells every open watch so with a 410 ERROR event, as the watch cache does. */
    expireWatches() {
      rv += 10;
      oldestResumable = rv;
      history.length = 0;
      for (const w of [...watchers]) {
        w.res.write(`${JSON.stringify({ type: 'ERROR', object: statusBody(410, 'Expired', `too old resource version: ${rv} (${rv + 1})`) })}\n`);
        w.close();
      }
    },
    sendBookmarks() {
      for (const w of watchers) if (w.bookmarks) bookmark(w);
    },
    /** Cuts every open log stream mid-way (an API server restart). */
    dropLogStreams() {
      for (const f of [...logFollowers]) {
        logFollowers.delete(f);
        f.res.destroy();
      }
    },
    openWatches: () => watchers.size,
    openLogStreams: () => logFollowers.size,

    async close() {
      closed = true;
      clearInterval(deadlineTicker);
      kserve.close();
      for (const timer of timers) clearTimeout(timer);
      for (const w of [...watchers]) w.res.destroy();
      for (const f of [...logFollowers]) f.res.destroy();
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function formatLine(line: LogLine, timestamps: boolean): string {
  return timestamps ? `${rfc3339Nano(line.ns)} ${line.text}\n` : `${line.text}\n`;
}

/** Go's time.RFC3339Nano: nanoseconds with trailing zeros trimmed, as the kubelet writes them. */
function rfc3339Nano(ns: bigint): string {
  const ms = Number(ns / 1_000_000n);
  const seconds = new Date(ms).toISOString().slice(0, 19);
  const fraction = String(ns % 1_000_000_000n)
    .padStart(9, '0')
    .replace(/0+$/, '');
  return `${seconds}${fraction ? `.${fraction}` : ''}Z`;
}

/** Equality-based label selectors: `a=b`, `a==b`, `a!=b`, `a`, `!a`, comma-separated. */
function parseSelector(text: string | null): Selector {
  if (!text) return () => true;
  const terms = text
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean);
  return (labels = {}) =>
    terms.every((term) => {
      const ne = term.split('!=');
      if (ne.length === 2) return labels[ne[0]!.trim()] !== ne[1]!.trim();
      const eq = term.includes('==') ? term.split('==') : term.split('=');
      if (eq.length === 2) return labels[eq[0]!.trim()] === eq[1]!.trim();
      if (term.startsWith('!')) return !(term.slice(1) in labels);
      return term in labels;
    });
}

function readAll(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** RFC 7386 JSON merge patch. */
function mergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch;
  const out: Obj = target !== null && typeof target === 'object' && !Array.isArray(target) ? (target as Obj) : {};
  for (const [k, v] of Object.entries(patch as Obj)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

/** RFC 6902 JSON patch (add, remove, replace, move, copy, test), paths as RFC 6901 pointers. */
function jsonPatch(doc: Obj, ops: unknown): Obj {
  if (!Array.isArray(ops)) throw new Error('a JSON patch must be an array of operations');
  const parse = (pointer: string) => {
    if (typeof pointer !== 'string' || (pointer !== '' && !pointer.startsWith('/'))) throw new Error(`bad JSON pointer ${JSON.stringify(pointer)}`);
    return pointer
      .split('/')
      .slice(1)
      .map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
  };
  const parent = (tokens: string[]) => {
    let node: any = doc;
    for (const t of tokens.slice(0, -1)) {
      node = node?.[t];
      if (node === undefined || node === null || typeof node !== 'object') throw new Error(`doc is missing path: /${tokens.join('/')}`);
    }
    return node;
  };
  const get = (tokens: string[]) => tokens.reduce<any>((n, t) => (n === undefined || n === null ? undefined : n[t]), doc);
  const remove = (tokens: string[]) => {
    const p = parent(tokens);
    const last = tokens.at(-1)!;
    if (!(last in p)) throw new Error(`unable to remove nonexistent key: ${last}: missing value`);
    const value = p[last];
    if (Array.isArray(p)) p.splice(Number(last), 1);
    else delete p[last];
    return value;
  };
  const add = (tokens: string[], value: unknown) => {
    const p = parent(tokens);
    const last = tokens.at(-1)!;
    if (Array.isArray(p)) p.splice(last === '-' ? p.length : Number(last), 0, value);
    else p[last] = value;
  };
  for (const op of ops as Obj[]) {
    const path = parse(op.path);
    if (path.length === 0) throw new Error('the whole document cannot be patched');
    switch (op.op) {
      case 'add':
        add(path, structuredClone(op.value));
        break;
      case 'remove':
        remove(path);
        break;
      case 'replace':
        remove(path);
        add(path, structuredClone(op.value));
        break;
      case 'move':
        add(path, remove(parse(op.from)));
        break;
      case 'copy':
        add(path, structuredClone(get(parse(op.from))));
        break;
      case 'test':
        if (JSON.stringify(get(path)) !== JSON.stringify(op.value)) throw new Error(`testing value /${path.join('/')} failed`);
        break;
      default:
        throw new Error(`Unexpected kind: ${op.op}`);
    }
  }
  return doc;
}
