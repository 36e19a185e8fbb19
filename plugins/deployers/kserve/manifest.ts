// What the kserve deployer writes and reads: the InferenceService for a revision, the annotation that maps Atelier's
// revision numbers onto KServe's revisions, and the deployment's status read back from the resource's status alone.
//
// Followed (KServe 0.16 docs, "Canary Rollout Strategy" / "Canary Rollout Example"; the InferenceService CRD's status:
// conditions Ready, PredictorReady, IngressReady, PredictorConfigurationReady, PredictorRouteReady; status.url;
// status.components.predictor.{latestCreatedRevision, latestReadyRevision, latestRolledoutRevision,
// previousRolledoutRevision, traffic[]}; spec.predictor.model.{modelFormat, runtime, storageUri, env, resources}).
import type { DeploymentStatus, Revision, RevisionStatus, TrafficSplit } from '../../deployer-sdk';
import { GROUP_VERSION, type InferenceService } from './api';

/** JSON list of the revisions applied, oldest first (see `RevisionEntry`). */
export const REVISIONS_ANNOTATION = 'serving.atelier.dev/revisions';
/** The deployment id (full) on the InferenceService; the label below holds a selector-safe form of it. */
export const DEPLOYMENT_ANNOTATION = 'serving.atelier.dev/deployment-id';
export const DEPLOYMENT_LABEL = 'serving.atelier.dev/deployment';
/** The control plane's installation id (Deployment.installation, selector-safe): `list` selects by it. */
export const INSTALLATION_LABEL = 'serving.atelier.dev/installation';
/** Bumped to make KServe start a FAILED revision afresh (a template change makes a new Knative revision). */
export const ATTEMPT_ANNOTATION = 'serving.atelier.dev/attempt';
/** The env var telling Atelier's serving runtime which revision it serves (it tags responses with REVISION_HEADER). */
export const REVISION_ENV = 'ATELIER_REVISION';

/**
 * One applied revision. `knative` is the KServe (Knative) revision serving it, recorded when the next revision is
 * applied; the last entry's is always `status.components.predictor.latestCreatedRevision`, since only the deployer
 * changes the predictor's template and each change makes exactly one Knative revision.
 */
export interface RevisionEntry {
  number: number;
  ref: string;
  digest: string;
  knative?: string;
  /** Why it failed, recorded when a later revision superseded it while FAILED. */
  failed?: string;
  /** The resource's metadata.generation once this entry's predictor was written (KServe has seen it when observed). */
  generation?: number;
  /** KServe revisions of earlier attempts at this entry (FAILED ones, started afresh). */
  replaced?: string[];
}

export interface PredictorSettings {
  storageUri: string;
  modelFormat: string;
  runtime?: string;
}

export function readEntries(isvc: InferenceService): RevisionEntry[] {
  try {
    const entries = JSON.parse(isvc.metadata?.annotations?.[REVISIONS_ANNOTATION] ?? '[]');
    return Array.isArray(entries) ? entries : [];
  } catch {
    return [];
  }
}

/** A label value for a deployment id (63 characters of [A-Za-z0-9-_.], alphanumeric at both ends), stable. */
export function labelValue(id: string, hash: (s: string) => string): string {
  return /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/.test(id) ? id : `h-${hash(id).slice(0, 40)}`;
}

/** Fills `{ref}`, `{digest}`, `{number}` and `{deployment}` in a storage URI template (the ref and digest URI-safe). */
export function storageUriFor(template: string, revision: Revision, deploymentName: string): string {
  return template
    .replaceAll('{ref}', revision.modelVersion.ref.split('/').map(encodeURIComponent).join('/'))
    .replaceAll('{digest}', revision.modelVersion.digest.replace(/^sha256:/, ''))
    .replaceAll('{number}', String(revision.number))
    .replaceAll('{deployment}', deploymentName);
}

/**
 * Why a deployment's own storage URI is refused, or null: it must start with an operator's prefix at a `/`, and
 * hold no dot segment, backslash or percent-escape that could lead out of it once a client normalises the path.
 */
export function storageUriProblem(uri: string, prefixes: readonly string[]): string | null {
  if (!prefixes.length)
    return 'settings.storageUri is not allowed on this deployer: the operator sets the storage URI template (ATELIER_KSERVE_STORAGE_URI), or lists prefixes a deployment may use in ATELIER_KSERVE_STORAGE_URI_PREFIXES';
  const dotted = /(^|\/)\.{1,2}(\/|$)|\\|%/.test(uri.replace(/^[a-z][a-z0-9+.-]*:\/\//i, ''));
  const under = prefixes.some((p) => uri.startsWith(p) && (p.endsWith('/') || uri.length === p.length || uri[p.length] === '/'));
  if (dotted || !under)
    return `settings.storageUri ${JSON.stringify(uri)} is not under a prefix this deployer allows (${prefixes.join(', ')}), without "."/".." segments, backslashes or %-escapes; an operator adds prefixes to ATELIER_KSERVE_STORAGE_URI_PREFIXES`;
  return null;
}

/** `spec.predictor` for a revision (without `canaryTrafficPercent`): the model, its runtime, resources and env. */
export function predictorFor(revision: Revision, settings: PredictorSettings): InferenceService {
  const r = revision.resources ?? {};
  const quantities: Record<string, string> = {};
  if (r.cpu !== undefined) quantities.cpu = String(r.cpu);
  if (r.memoryMb !== undefined) quantities.memory = `${Math.ceil(r.memoryMb)}Mi`;
  const limits: Record<string, string> = { ...quantities };
  // KServe's GPU examples put nvidia.com/gpu in limits (an extended resource's request defaults to its limit).
  if (r.gpus) limits['nvidia.com/gpu'] = String(r.gpus);
  const env = [
    { name: REVISION_ENV, value: String(revision.number) },
    { name: 'ATELIER_MODEL_VERSION', value: revision.modelVersion.ref },
    { name: 'ATELIER_SERVE_COMMAND', value: JSON.stringify(revision.serve?.command ?? []) },
    ...(revision.serve?.healthPath ? [{ name: 'ATELIER_HEALTH_PATH', value: revision.serve.healthPath }] : []),
    ...Object.entries(revision.env ?? {})
      .filter(([k]) => k !== 'STORAGE_URI')
      .map(([name, value]) => ({ name, value })),
  ];
  return {
    model: {
      modelFormat: { name: settings.modelFormat },
      ...(settings.runtime ? { runtime: settings.runtime } : {}),
      storageUri: settings.storageUri,
      env,
      ...(Object.keys(limits).length ? { resources: { ...(Object.keys(quantities).length ? { requests: quantities } : {}), limits } } : {}),
    },
  };
}

export function newInferenceService(
  name: string,
  deploymentId: string,
  label: string,
  predictor: InferenceService,
  entries: RevisionEntry[],
  installation?: string,
): InferenceService {
  return {
    apiVersion: GROUP_VERSION,
    kind: 'InferenceService',
    metadata: {
      name,
      labels: { [DEPLOYMENT_LABEL]: label, 'app.kubernetes.io/managed-by': 'atelier', ...(installation ? { [INSTALLATION_LABEL]: installation } : {}) },
      annotations: { [DEPLOYMENT_ANNOTATION]: deploymentId, [REVISIONS_ANNOTATION]: JSON.stringify(entries) },
    },
    spec: { predictor },
  };
}

/**
 * `isvc` labelled with the installation (selector-safe), or 'unchanged' where it has an installation label already:
 * a label alone, which changes no revision where KServe's serviceLabelDisallowedList holds INSTALLATION_LABEL
 * (docs/deployers.md "kserve").
 */
export function labelledFor(isvc: InferenceService, installation: string): InferenceService | 'unchanged' {
  if (isvc.metadata.labels?.[INSTALLATION_LABEL]) return 'unchanged';
  isvc.metadata.labels = { ...isvc.metadata.labels, [INSTALLATION_LABEL]: installation };
  return isvc;
}

// biome-ignore lint/suspicious/noExplicitAny: conditions as the API server sends them.
const condition = (isvc: InferenceService, type: string): Record<string, any> | undefined =>
  // biome-ignore lint/suspicious/noExplicitAny: see above.
  (isvc.status?.conditions ?? []).find((c: any) => c.type === type);

/** Whether the controller has seen the latest spec (so latestCreatedRevision belongs to the last entry). */
export const caughtUp = (isvc: InferenceService) => (isvc.status?.observedGeneration ?? 0) >= (isvc.metadata?.generation ?? 1);

/**
 * The last entry's Knative revision: `latestCreatedRevision` once the controller has seen the latest spec and it is
 * not an earlier entry's (Knative may report the new revision a little after KServe's observedGeneration moved).
 */
export function lastKnative(isvc: InferenceService, entries: RevisionEntry[]): string | undefined {
  const created: string | undefined = isvc.status?.components?.predictor?.latestCreatedRevision;
  const last = entries.at(-1);
  if (!created || !last) return undefined;
  const seen = last.generation === undefined ? caughtUp(isvc) : (isvc.status?.observedGeneration ?? 0) >= last.generation;
  if (!seen || entries.slice(0, -1).some((e) => e.knative === created) || last.replaced?.includes(created)) return undefined;
  return created;
}

/** Each entry's Knative revision: recorded ones, and the last one's from the status. */
export function knativeNames(isvc: InferenceService, entries: RevisionEntry[]): Map<string, number> {
  const names = new Map<string, number>();
  entries.forEach((e, i) => {
    const kn = i === entries.length - 1 ? lastKnative(isvc, entries) : e.knative;
    if (kn) names.set(kn, e.number);
  });
  return names;
}

export function revisionStatuses(isvc: InferenceService, entries: RevisionEntry[]): RevisionStatus[] {
  const p = isvc.status?.components?.predictor ?? {};
  const configuration = condition(isvc, 'PredictorConfigurationReady');
  return entries.map((e, i) => {
    const base = { number: e.number, modelVersion: e.ref, restarts: 0 };
    if (i < entries.length - 1) return e.failed ? { ...base, health: 'FAILED', message: e.failed } : { ...base, health: 'READY', message: null };
    if (!lastKnative(isvc, entries)) return { ...base, health: 'STARTING', message: 'KServe has not yet created its revision' };
    if (p.latestReadyRevision === p.latestCreatedRevision) return { ...base, health: 'READY', message: null };
    if (configuration?.status === 'False') {
      const why = isvc.status?.modelStatus?.lastFailureInfo?.message;
      return {
        ...base,
        health: 'FAILED',
        message: `${configuration.reason}: ${configuration.message}${why && !configuration.message?.includes(why) ? ` (${why})` : ''}`,
      };
    }
    return {
      ...base,
      health: 'STARTING',
      message: `revision ${p.latestCreatedRevision} is not ready yet${configuration?.reason ? ` (${configuration.reason})` : ''}`,
    };
  });
}

/** The deployment's status, from the InferenceService alone. */
export function statusOf(deploymentId: string, isvc: InferenceService): DeploymentStatus {
  const entries = readEntries(isvc);
  const revisions = revisionStatuses(isvc, entries);
  const names = knativeNames(isvc, entries);
  const traffic: TrafficSplit = {};
  const unknown: string[] = [];
  for (const t of isvc.status?.components?.predictor?.traffic ?? []) {
    if (!(t.percent > 0)) continue;
    const n = names.get(t.revisionName);
    if (n === undefined) unknown.push(`${t.revisionName} ${t.percent}%`);
    else traffic[n] = (traffic[n] ?? 0) + t.percent;
  }
  const url: string | null = isvc.status?.url ?? null;
  const served = Object.keys(traffic).map(Number);
  const ready =
    url !== null &&
    condition(isvc, 'IngressReady')?.status === 'True' &&
    served.length > 0 &&
    unknown.length === 0 &&
    served.every((n) => revisions.find((r) => r.number === n)?.health === 'READY');
  const where = `InferenceService ${isvc.metadata.namespace}/${isvc.metadata.name}`;
  const trouble = ['PredictorConfigurationReady', 'PredictorRouteReady', 'IngressReady', 'Ready']
    .map((type) => condition(isvc, type))
    .find((c) => c && c.status !== 'True');
  const split = Object.entries(traffic)
    .map(([n, pct]) => `revision ${n} ${pct}%`)
    .join(', ');
  let message = trouble
    ? `${where}: ${trouble.type} is ${trouble.status}${trouble.reason ? ` (${trouble.reason})` : ''}${trouble.message ? `: ${trouble.message}` : ''}`
    : `${where} is Ready${split ? `: ${split}` : ''}`;
  if (unknown.length) message += `; traffic to revisions Atelier did not make (${unknown.join(', ')}): the predictor was changed outside Atelier`;
  return { deploymentId, ready, url, traffic, message, revisions };
}

/**
 * The `canaryTrafficPercent` that gives `split` (already checked by `checkSplit`, zeros dropped), or a sentence saying
 * why KServe cannot. KServe routes between two revisions only: the latest ready one (`latestRevision: true`) gets the
 * canary percent and the last rolled-out one (tag `prev`) the rest; after a promotion to 100%, a percent below 100
 * routes the rest to the previously rolled-out one (ksvc_reconciler.go).
 */
export function canaryFor(isvc: InferenceService, split: TrafficSplit): { percent: number } | { refusal: string } {
  const entries = readEntries(isvc);
  const names = knativeNames(isvc, entries);
  const p = isvc.status?.components?.predictor ?? {};
  const latest = names.get(p.latestReadyRevision);
  const prevFor = (percent: number): number | undefined => {
    const rolled = p.latestRolledoutRevision === p.latestReadyRevision && percent < 100 ? p.previousRolledoutRevision : p.latestRolledoutRevision;
    const n = names.get(rolled);
    return n === latest ? undefined : n;
  };
  const wanted = Object.entries(split).map(([n, pct]) => [Number(n), pct] as const);
  if (latest !== undefined) {
    const percent = split[latest] ?? 0;
    const prev = prevFor(percent);
    if (wanted.every(([n]) => n === latest || n === prev) && (percent === 100 || prev !== undefined)) return { percent };
  }
  const prev = latest === undefined ? undefined : prevFor(0);
  return {
    refusal: `KServe splits traffic between two revisions only, the last rolled-out one (${prev ?? 'none'}) and the latest ready one (${latest ?? 'none'}), by canaryTrafficPercent; ${JSON.stringify(split)} needs others: move traffic within those two, or apply the revision you want as a new one`,
  };
}
