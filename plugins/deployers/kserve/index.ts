// The kserve deployer: one serving.kserve.io/v1beta1 InferenceService per deployment, driven through the Kubernetes
// API. `apply` writes the revision's predictor (storage URI from the registry's model version, resources and GPUs),
// `setTraffic` and `rollback` move `canaryTrafficPercent` (KServe's canary rollout), `status` reads the resource's
// status (conditions, url, traffic per revision), `delete` deletes it. Everything the deployer needs lives on the
// resource (a label, annotations), so a new instance re-attaches from the API alone. See docs/deployers.md "kserve".
import { createHash } from 'node:crypto';
import type { KubeConfig } from '@kubernetes/client-node';
import {
  checkSplit,
  type Deployer,
  DeployerError,
  type DeployerErrorCode,
  type Deployment,
  type DeploymentStatus,
  defineDeployer,
  normaliseSplit,
  type Revision,
  type TrafficSplit,
} from '../../deployer-sdk';
import { createInferenceServiceApi, type InferenceService, KubeError } from './api';
import {
  ATTEMPT_ANNOTATION,
  canaryFor,
  caughtUp,
  DEPLOYMENT_ANNOTATION,
  DEPLOYMENT_LABEL,
  INSTALLATION_LABEL,
  knativeNames,
  labelledFor,
  labelValue,
  lastKnative,
  newInferenceService,
  predictorFor,
  REVISIONS_ANNOTATION,
  type RevisionEntry,
  readEntries,
  statusOf,
  storageUriFor,
  storageUriProblem,
} from './manifest';
import { createServingReader, type PrometheusOptions } from './prometheus';

export interface KServeDeployerOptions {
  /** The cluster (a KubeConfig, or a function giving one: read at each call, so rotated credentials are picked up). */
  kubeConfig: KubeConfig | (() => KubeConfig);
  /** Namespace of deployments whose settings name none (default `default`). */
  namespace?: string;
  /**
   * Namespaces a deployment's `settings.namespace` may name besides `namespace` (`ATELIER_KSERVE_NAMESPACES`): the
   * cluster's other namespaces (another team's, the system's) are the operator's to give, not a deployment's author's.
   */
  namespaces?: string[];
  /**
   * Storage URI template for a revision's model, e.g. `s3://models/{ref}` (`{ref}`, `{digest}`, `{number}`,
   * `{deployment}` are filled in). A deployment's `settings.storageUri` overrides it; a revision's env `STORAGE_URI`
   * overrides both.
   */
  storageUri?: string;
  /**
   * What a deployment's `settings.storageUri` must start with, at a `/` (`ATELIER_KSERVE_STORAGE_URI_PREFIXES`, e.g.
   * `s3://models/vision/`); none: the setting is refused. KServe's storage initializer fetches the URI in the cluster
   * with the namespace's credentials, so a URI the author chose could read any bucket, volume or address it reaches.
   */
  storageUriPrefixes?: string[];
  /** `spec.predictor.model.modelFormat.name` (default `atelier`: Atelier's serving runtime runs the serve entrypoint). */
  modelFormat?: string;
  /** `spec.predictor.model.runtime`: a ServingRuntime name, when the format alone does not pick one. */
  runtime?: string;
  /** How often apply and traffic changes poll the InferenceService (default 500 ms). */
  pollMs?: number;
  /** How long `apply` waits for a revision to become ready or fail before answering STARTING (default 10 min). */
  readyTimeoutMs?: number;
  /** How long a traffic change waits for KServe to route as told (default 60 s). */
  trafficTimeoutMs?: number;
  /** Per-request limit (default 30 s). */
  requestTimeoutMs?: number;
  /** Deployer name (default `kserve`). */
  name?: string;
  /**
   * Where Knative's queue-proxy metrics are scraped: `status` then says what each revision served (requests, 5xx,
   * latency), which canary gates and monitors read. Without it a kserve deployment has no serving figures.
   */
  prometheus?: PrometheusOptions;
}

interface Located {
  namespace: string;
  name: string;
}

export function createKServeDeployer(options: KServeDeployerOptions): Deployer {
  const name = options.name ?? 'kserve';
  const kubeConfig = typeof options.kubeConfig === 'function' ? options.kubeConfig : () => options.kubeConfig as KubeConfig;
  const api = createInferenceServiceApi(kubeConfig, options.requestTimeoutMs ?? 30_000);
  const pollMs = options.pollMs ?? 500;
  const located = new Map<string, Located>();
  const queues = new Map<string, Promise<unknown>>();
  const sha = (s: string) => createHash('sha256').update(s).digest('hex');
  const refuse = (code: DeployerErrorCode, message: string) => new DeployerError(code, message, name);
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const serving = options.prometheus ? createServingReader(options.prometheus) : null;

  /** The status with what Prometheus says each revision served; a Prometheus that cannot be read only costs the figures. */
  async function withServing(id: string, at: Located, isvc: InferenceService): Promise<DeploymentStatus> {
    const status = statusOf(id, isvc);
    if (!serving) return status;
    try {
      return { ...status, serving: await serving.read(id, at.namespace, knativeNames(isvc, readEntries(isvc))) };
    } catch (err) {
      return { ...status, message: `${status.message} (no serving figures: ${(err as Error).message})` };
    }
  }

  /** Calls for one deployment run one after another. */
  function serial<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const run = (queues.get(id) ?? Promise.resolve()).then(fn, fn);
    const tail = run.catch(() => undefined);
    queues.set(id, tail);
    void tail.then(() => queues.get(id) === tail && queues.delete(id));
    return run;
  }

  /** API errors as DeployerErrors where they are the caller's to fix; the rest (5xx, auth, network) as they are. */
  function translate(err: unknown, what: string): never {
    if (err instanceof KubeError) {
      if (err.status === 422 || err.status === 400)
        throw refuse('BAD_SETTINGS', `the Kubernetes API refused ${what}: ${err.message}: check the deployment's settings and the revision`);
      if (err.status === 404) throw refuse('BAD_SETTINGS', `${what}: ${err.message}: create the namespace or set settings.namespace`);
      if (err.status === 401 || err.status === 403)
        throw new Error(
          `${name}: the Kubernetes API refused ${what} (${err.status} ${err.reason}): ${err.message}: give the deployer's credentials RBAC on inferenceservices.serving.kserve.io`,
        );
      throw new Error(`${name}: ${what} failed (${err.status} ${err.reason}): ${err.message}`);
    }
    throw err;
  }

  async function find(id: string): Promise<{ at: Located; isvc: InferenceService } | null> {
    const known = located.get(id);
    if (known) {
      const isvc = await api.get(known.namespace, known.name).catch((err) => translate(err, `reading InferenceService ${known.name}`));
      if (isvc && isvc.metadata?.annotations?.[DEPLOYMENT_ANNOTATION] === id) return { at: known, isvc };
      located.delete(id);
    }
    // Re-attach from the API alone: the deployment's label, over all namespaces (or the default one without the RBAC).
    const selector = `${DEPLOYMENT_LABEL}=${labelValue(id, sha)}`;
    let items: InferenceService[];
    try {
      items = await api.list(selector);
    } catch (err) {
      if (!(err instanceof KubeError && err.status === 403)) translate(err, 'listing InferenceServices');
      items = await api.list(selector, options.namespace ?? 'default').catch((e) => translate(e, 'listing InferenceServices'));
    }
    const isvc = items.find((i) => i.metadata?.annotations?.[DEPLOYMENT_ANNOTATION] === id);
    if (!isvc) return null;
    const at = { namespace: isvc.metadata.namespace, name: isvc.metadata.name };
    located.set(id, at);
    return { at, isvc };
  }

  async function mustFind(id: string) {
    const found = await find(id);
    if (!found) throw refuse('UNKNOWN_DEPLOYMENT', `no InferenceService belongs to deployment ${id}: apply a revision first`);
    return found;
  }

  async function poll(at: Located, done: (isvc: InferenceService) => boolean, timeoutMs: number): Promise<InferenceService> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const isvc = await api.get(at.namespace, at.name).catch((err) => translate(err, `reading InferenceService ${at.name}`));
      if (!isvc) throw refuse('UNKNOWN_DEPLOYMENT', `InferenceService ${at.namespace}/${at.name} was deleted meanwhile: apply the revision again`);
      if (done(isvc) || Date.now() >= deadline) return isvc;
      await sleep(pollMs);
    }
  }

  /** Waits until KServe has made the last entry's revision and it is ready or failed (or the deadline passed). */
  const settled = (isvc: InferenceService) => {
    if (!lastKnative(isvc, readEntries(isvc))) return false;
    const p = isvc.status?.components?.predictor ?? {};
    const configuration = (isvc.status?.conditions ?? []).find((c: { type: string }) => c.type === 'PredictorConfigurationReady');
    return !!p.latestCreatedRevision && (p.latestReadyRevision === p.latestCreatedRevision || configuration?.status === 'False');
  };

  function settingsOf(deployment: Deployment, revision: Revision) {
    const s = deployment.settings ?? {};
    const namespace = s.namespace ?? options.namespace ?? 'default';
    if (typeof namespace !== 'string' || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(namespace))
      throw refuse('BAD_SETTINGS', `settings.namespace must be a Kubernetes namespace name, not ${JSON.stringify(namespace)}`);
    const namespaces = [options.namespace ?? 'default', ...(options.namespaces ?? [])];
    if (!namespaces.includes(namespace))
      throw refuse(
        'BAD_SETTINGS',
        `settings.namespace "${namespace}" is not one this deployer serves in (${namespaces.join(', ')}); an operator adds it to ATELIER_KSERVE_NAMESPACES`,
      );
    if (!/^[a-z]([-a-z0-9]*[a-z0-9])?$/.test(deployment.name) || deployment.name.length > 45)
      throw refuse(
        'BAD_SETTINGS',
        `deployment name "${deployment.name}" cannot name an InferenceService: use lowercase letters, digits and dashes, starting with a letter, at most 45 characters`,
      );
    const template = revision.env?.STORAGE_URI ?? s.storageUri ?? options.storageUri;
    if (typeof template !== 'string' || template === '')
      throw refuse(
        'BAD_SETTINGS',
        `no storage URI for ${revision.modelVersion.ref}: give the deployer a storageUri template, or settings.storageUri, or the revision env STORAGE_URI`,
      );
    const storageUri = storageUriFor(template, revision, deployment.name);
    if (revision.env?.STORAGE_URI === undefined && s.storageUri !== undefined) {
      const problem = storageUriProblem(storageUri, options.storageUriPrefixes ?? []);
      if (problem) throw refuse('BAD_SETTINGS', problem);
    }
    const modelFormat = s.modelFormat ?? options.modelFormat ?? 'atelier';
    const runtime = s.runtime ?? options.runtime;
    if (typeof modelFormat !== 'string' || (runtime !== undefined && typeof runtime !== 'string'))
      throw refuse('BAD_SETTINGS', 'settings.modelFormat and settings.runtime must be strings');
    return { namespace, predictor: { storageUri, modelFormat, runtime } };
  }

  async function write(at: Located, change: (isvc: InferenceService) => InferenceService | 'unchanged'): Promise<InferenceService> {
    for (let attempt = 0; ; attempt++) {
      const isvc = await api.get(at.namespace, at.name).catch((err) => translate(err, `reading InferenceService ${at.name}`));
      if (!isvc) throw refuse('UNKNOWN_DEPLOYMENT', `InferenceService ${at.namespace}/${at.name} was deleted meanwhile: apply the revision again`);
      const next = change(structuredClone(isvc));
      if (next === 'unchanged') return isvc;
      try {
        return await api.replace(at.namespace, at.name, next);
      } catch (err) {
        // 409: someone wrote in between; read again and redo (optimistic concurrency on resourceVersion).
        if (err instanceof KubeError && err.status === 409 && attempt < 4) continue;
        translate(err, `updating InferenceService ${at.name}`);
      }
    }
  }

  async function apply(deployment: Deployment, revision: Revision): Promise<DeploymentStatus> {
    if (!revision.serve)
      throw refuse('NO_SERVE_ENTRYPOINT', `${revision.modelVersion.ref} has no serve entrypoint: give the model version one before deploying it`);
    const { namespace, predictor: settings } = settingsOf(deployment, revision);
    const predictor = predictorFor(revision, settings);
    const entry: RevisionEntry = { number: revision.number, ref: revision.modelVersion.ref, digest: revision.modelVersion.digest };
    const found = await find(deployment.id);
    let at: Located;
    if (!found) {
      at = { namespace, name: deployment.name };
      const installation = deployment.installation ? labelValue(deployment.installation, sha) : undefined;
      const body = newInferenceService(deployment.name, deployment.id, labelValue(deployment.id, sha), predictor, [{ ...entry, generation: 1 }], installation);
      try {
        await api.create(namespace, body);
      } catch (err) {
        if (err instanceof KubeError && err.status === 409)
          throw refuse(
            'BAD_SETTINGS',
            `an InferenceService named ${deployment.name} already exists in namespace ${namespace} and belongs to something else: choose another deployment name or namespace`,
          );
        translate(err, `creating InferenceService ${deployment.name}`);
      }
      located.set(deployment.id, at);
    } else {
      at = found.at;
      const entries = readEntries(found.isvc);
      const same = entries.find((e) => e.number === revision.number);
      const last = entries.at(-1);
      if (same && same.digest !== entry.digest)
        throw refuse(
          'REVISION_CONFLICT',
          `revision ${revision.number} was applied with digest ${same.digest}, not ${entry.digest}: give the new model version a new revision number`,
        );
      if (!same && last && revision.number < last.number)
        throw refuse('REVISION_CONFLICT', `revision ${revision.number} is older than the latest applied (${last.number}): revision numbers only grow`);
      const health = statusOf(deployment.id, found.isvc).revisions.find((r) => r.number === revision.number)?.health;
      if (same && !(same === last && health === 'FAILED')) {
        if (same === last && !settled(found.isvc)) await poll(at, settled, options.readyTimeoutMs ?? 600_000);
        // One applied before installations were tagged takes its control plane's id now (the reconciler's first pass).
        if (deployment.installation && !found.isvc.metadata.labels?.[INSTALLATION_LABEL])
          await write(at, (isvc) => labelledFor(isvc, labelValue(deployment.installation!, sha)));
        const now = (await find(deployment.id))!;
        return withServing(deployment.id, now.at, now.isvc);
      }
      // The revision before must have its KServe revision (recorded below) before the predictor changes again.
      if (!same && last && !lastKnative(found.isvc, entries)) {
        const waited = await poll(at, (i) => !!lastKnative(i, readEntries(i)), options.readyTimeoutMs ?? 600_000);
        if (!lastKnative(waited, readEntries(waited)))
          throw new Error(
            `${name}: KServe has not yet created a revision for revision ${last.number} of deployment ${deployment.id}: apply revision ${revision.number} again once it has`,
          );
      }
      await write(at, (isvc) => {
        const now = readEntries(isvc);
        if (same) {
          // A FAILED latest revision, started afresh: a new attempt annotation makes KServe create a new revision.
          const current = now.at(-1)!;
          const failedAs = lastKnative(isvc, now);
          if (current.number !== revision.number || !failedAs) return 'unchanged';
          const attempt = Number(isvc.metadata.annotations?.[ATTEMPT_ANNOTATION] ?? 0) + 1;
          const canary = isvc.spec.predictor?.canaryTrafficPercent;
          const nextPredictor = { ...predictor, ...(canary === undefined ? {} : { canaryTrafficPercent: canary }) };
          current.generation = isvc.metadata.generation + (JSON.stringify(nextPredictor) === JSON.stringify(isvc.spec.predictor) ? 0 : 1);
          current.replaced = [...(current.replaced ?? []), failedAs];
          isvc.metadata.annotations = {
            ...isvc.metadata.annotations,
            [ATTEMPT_ANNOTATION]: String(attempt),
            [REVISIONS_ANNOTATION]: JSON.stringify(now),
          };
          isvc.spec.predictor = nextPredictor;
          return isvc;
        }
        if (now.some((e) => e.number === revision.number)) return 'unchanged';
        const names = knativeNames(isvc, now);
        const previous = now.at(-1);
        if (previous) {
          previous.knative = [...names].find(([, n]) => n === previous.number)?.[0];
          const was = statusOf(deployment.id, isvc).revisions.at(-1);
          if (was?.health === 'FAILED') previous.failed = was.message ?? 'failed';
        }
        const written = { ...entry, generation: isvc.metadata.generation + 1 }; // the predictor changes: a new generation
        isvc.metadata.annotations = { ...isvc.metadata.annotations, [REVISIONS_ANNOTATION]: JSON.stringify([...now, written]) };
        if (deployment.installation) labelledFor(isvc, labelValue(deployment.installation, sha));
        // A new revision takes no traffic until told: canaryTrafficPercent 0 pins it all on the rolled-out one.
        isvc.spec.predictor = { ...predictor, canaryTrafficPercent: 0 };
        return isvc;
      });
    }
    const isvc = await poll(at, settled, options.readyTimeoutMs ?? 600_000);
    return withServing(deployment.id, at, isvc);
  }

  async function route(id: string, split: TrafficSplit, how: 'merge' | 'json'): Promise<DeploymentStatus> {
    const { at, isvc } = await mustFind(id);
    checkSplit(split, statusOf(id, isvc).revisions, name);
    const wanted = normaliseSplit(split);
    const canary = canaryFor(isvc, wanted);
    if ('refusal' in canary) throw refuse('BAD_SPLIT', canary.refusal);
    try {
      if (how === 'merge') await api.patch(at.namespace, at.name, 'merge', { spec: { predictor: { canaryTrafficPercent: canary.percent } } });
      // KServe's documented rollback: kubectl patch isvc NAME --type=json -p '[{"op":"replace","path":"/spec/predictor/canaryTrafficPercent","value":0}]'
      else await api.patch(at.namespace, at.name, 'json', [{ op: 'add', path: '/spec/predictor/canaryTrafficPercent', value: canary.percent }]);
    } catch (err) {
      translate(err, `setting canaryTrafficPercent of InferenceService ${at.name}`);
    }
    const same = (s: DeploymentStatus) => JSON.stringify(s.traffic) === JSON.stringify(wanted);
    const timeoutMs = options.trafficTimeoutMs ?? 60_000;
    const routed = await poll(at, (i) => caughtUp(i) && same(statusOf(id, i)), timeoutMs);
    const after = statusOf(id, routed);
    if (!same(after))
      throw new Error(
        `${name}: KServe set canaryTrafficPercent ${canary.percent} but routes ${JSON.stringify(after.traffic)}, not ${JSON.stringify(wanted)}, after ${timeoutMs} ms (${after.message}): check the KServe controller and Knative`,
      );
    return withServing(id, at, routed);
  }

  return defineDeployer({
    name,
    apply: (deployment, revision) => serial(deployment.id, () => apply(deployment, revision)),
    status: async (id) => {
      const { at, isvc } = await mustFind(id);
      return withServing(id, at, isvc);
    },
    setTraffic: (id, split) => serial(id, () => route(id, split, 'merge')),
    rollback: (id, toRevision) =>
      serial(id, async () => {
        const { isvc } = await mustFind(id);
        if (!statusOf(id, isvc).revisions.some((r) => r.number === toRevision))
          throw refuse('UNKNOWN_REVISION', `revision ${toRevision} was never applied to deployment ${id}: roll back to one it holds`);
        return route(id, { [toRevision]: 100 }, 'json');
      }),
    delete: (id) =>
      serial(id, async () => {
        const found = await find(id);
        if (found) await api.delete(found.at.namespace, found.at.name).catch((err) => translate(err, `deleting InferenceService ${found.at.name}`));
        located.delete(id);
        serving?.forget(id);
      }),
    // By the installation's label, over all namespaces (or the deployer's own without the RBAC for that), as find does.
    list: async (installation) => {
      const selector = `${INSTALLATION_LABEL}=${labelValue(installation, sha)}`;
      const items = await api.list(selector).catch((err) => {
        if (err instanceof KubeError && err.status === 403) return api.list(selector, options.namespace ?? 'default');
        throw err;
      });
      return items
        .filter((i) => typeof i.metadata?.annotations?.[DEPLOYMENT_ANNOTATION] === 'string')
        .map((i) => ({ id: i.metadata.annotations[DEPLOYMENT_ANNOTATION] as string, name: i.metadata.name as string }));
    },
    close: async () => {
      located.clear();
    },
  });
}
