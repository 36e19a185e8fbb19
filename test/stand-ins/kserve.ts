// The KServe part of the Kubernetes stand-in: what the KServe controller and Knative Serving do behind a
// `serving.kserve.io/v1beta1` InferenceService, simulated faithfully enough for a deployer to be tested against it.
//
// Followed (KServe 0.16 docs "Canary Rollout Strategy" and "Canary Rollout Example"; kserve/kserve
// pkg/controller/v1beta1/inferenceservice/reconcilers/knative/ksvc_reconciler.go and
// pkg/apis/serving/v1beta1/inference_service_status.go#PropagateStatus):
// - every change of the predictor's template (the predictor without `canaryTrafficPercent`, plus the metadata KServe
//   copies onto the revision template: every label but those of the inferenceservice-config's
//   serviceLabelDisallowedList, `labelsNotCopied` here) creates a Knative revision `<name>-predictor-0000N`;
// - traffic: with `canaryTrafficPercent` set and a last rolled-out revision, the latest ready revision gets that percent
//   and the last rolled-out one (tag `prev`) the rest; without it, the latest ready revision gets 100% (blue/green);
// - `latestRolledoutRevision` moves to the latest ready revision once it has 100%, the old one becoming
//   `previousRolledoutRevision`; when the latest ready revision was rolled out and gets less than 100% while the split
//   lands on it alone (a rollback after a promotion), `latestRolledoutRevision` goes back to the previous one; traffic
//   never goes to a revision that is not ready;
// - conditions PredictorConfigurationReady, PredictorRouteReady, PredictorReady, IngressReady, LatestDeploymentReady and
//   Ready, with Knative's reasons (`RevisionFailed` with `Revision "…" failed with message: …`, `RevisionMissing`);
//   `modelStatus` as KServe reports a model that failed to load (BlockedByFailedLoad, ModelLoadFailed).
// Simplification: there is no DNS here, so `status.url` is a loopback port of its own per InferenceService, where a
// tiny ingress splits requests over the revisions by the traffic percents (smooth weighted round robin, so counts are
// exact) and a stand-in model server answers each: 200 with the revision's name, tagged `x-atelier-revision` from its
// container's `ATELIER_REVISION` env as Atelier's serving runtime does. Each ready revision has one pod whose
// queue-proxy counts what it served in Knative's histogram `revision_app_request_latencies` (ms, Knative's buckets;
// labels as Knative's service-metrics docs list them), which `queueProxyMetrics()` hands a Prometheus stand-in to
// scrape; `restartPod` replaces a revision's pod (its series go, the new pod's count from 0).
import http, { type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ScrapedSeries } from './prometheus';

type Obj = Record<string, any>;

export interface KServeHost {
  now(): string;
  later(ms: number, fn: () => void): void;
  get(namespace: string, name: string): Obj | undefined;
  /** Stores a new status on the object (a MODIFIED event, a new resourceVersion). */
  commitStatus(object: Obj): void;
}

interface KnativeRevision {
  name: string;
  template: string;
  predictor: Obj;
  state: 'pending' | 'ready' | 'failed';
  message?: string;
  /** The pod serving it, and its queue-proxy's histogram: cumulative counts per bound (the last, +Inf), per response code. */
  pod: string;
  served: Map<number, number[]>;
}

/** The queue-proxy's latency buckets (ms), as Knative Serving defines them for revision_app_request_latencies. */
const LATENCY_BOUNDS_MS = [
  5, 10, 20, 40, 60, 80, 100, 150, 200, 250, 300, 350, 400, 450, 500, 600, 700, 800, 900, 1000, 2000, 5000, 10000, 20000, 50000, 100000,
];
let pods = 0;
const podName = (revision: string) => `${revision}-deployment-${(++pods).toString(36).padStart(5, '0')}`;

interface ServiceState {
  uid: string;
  namespace: string;
  name: string;
  revisions: KnativeRevision[];
  server: Server;
  listening: Promise<number>;
  port?: number;
  /** Smooth weighted round robin: current weights per revision name. */
  current: Map<string, number>;
}

const STORAGE_PREFIXES = ['gs://', 's3://', 'pvc://', 'file://', 'https://', 'http://', 'hdfs://', 'webhdfs://', 'oci://', 'hf://'];
const QUANTITY = /^[+]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+|[KMGTPE]i|[mkMGTPE]|n|u)?$/;
const pad5 = (n: number) => String(n).padStart(5, '0');

export function createKServeController(host: KServeHost, options: { readyMs?: number; labelsNotCopied?: string[] } = {}) {
  const readyMs = options.readyMs ?? 15;
  const services = new Map<string, ServiceState>(); // by uid
  const failing = new Map<string, string>(); // storageUri → why it fails to load
  const answering = new Map<string, number>(); // storageUri → the status its model server answers with
  let gpuCapacity = Number.POSITIVE_INFINITY; // nvidia.com/gpu on the largest node
  let paused: Set<string> | null = null; // "<ns>/<name>" waiting for the controller while it is stopped

  function templateOf(isvc: Obj): { key: string; predictor: Obj } {
    const { canaryTrafficPercent: _, ...predictor } = isvc.spec?.predictor ?? {};
    const annotations = { ...isvc.metadata.annotations };
    delete annotations['kubectl.kubernetes.io/last-applied-configuration'];
    const labels = { ...isvc.metadata.labels };
    for (const label of options.labelsNotCopied ?? []) delete labels[label];
    return { key: JSON.stringify({ predictor, annotations, labels }), predictor: structuredClone(predictor) };
  }

  function ingress(state: ServiceState): Server {
    return http.createServer((req, res) => {
      const began = performance.now();
      req.resume();
      req.on('end', () => {
        const isvc = host.get(state.namespace, state.name);
        const targets = ((isvc?.status?.components?.predictor?.traffic ?? []) as Obj[]).filter((t) => t.percent > 0);
        if (!isvc || targets.length === 0) {
          res.writeHead(503, { 'content-type': 'text/plain' }).end('no revision is ready to serve\n');
          return;
        }
        // Smooth weighted round robin (as nginx does): exact shares over any window of 100 requests.
        let best: Obj | undefined;
        for (const t of targets) {
          const w = (state.current.get(t.revisionName) ?? 0) + t.percent;
          state.current.set(t.revisionName, w);
          if (!best || w > state.current.get(best.revisionName)!) best = t;
        }
        state.current.set(best!.revisionName, state.current.get(best!.revisionName)! - 100);
        const revision = state.revisions.find((r) => r.name === best!.revisionName)!;
        const env = (revision.predictor.model?.env ?? []) as { name: string; value?: string }[];
        const tag = env.find((e) => e.name === 'ATELIER_REVISION')?.value;
        const code = answering.get(revision.predictor.model?.storageUri ?? '') ?? 200;
        res.once('finish', () => {
          const counts = revision.served.get(code) ?? new Array<number>(LATENCY_BOUNDS_MS.length + 1).fill(0);
          const ms = performance.now() - began;
          for (const [i, bound] of LATENCY_BOUNDS_MS.entries()) if (ms <= bound) counts[i]!++;
          counts[LATENCY_BOUNDS_MS.length]!++;
          revision.served.set(code, counts);
        });
        res.writeHead(code, { 'content-type': 'application/json', ...(tag ? { 'x-atelier-revision': tag } : {}) });
        res.end(
          JSON.stringify({ model_name: state.name, revision: revision.name, storageUri: revision.predictor.model?.storageUri ?? null, predictions: [0] }),
        );
      });
    });
  }

  function stateOf(isvc: Obj): ServiceState {
    let state = services.get(isvc.metadata.uid);
    if (!state) {
      state = {
        uid: isvc.metadata.uid,
        namespace: isvc.metadata.namespace,
        name: isvc.metadata.name,
        revisions: [],
        current: new Map(),
      } as unknown as ServiceState;
      const s = state;
      s.server = ingress(s);
      s.listening = new Promise((resolve) =>
        s.server.listen(0, '127.0.0.1', () => {
          s.port = (s.server.address() as AddressInfo).port;
          resolve(s.port);
        }),
      );
      services.set(s.uid, s);
    }
    return state;
  }

  /** What the controllers do after any write to the InferenceService. */
  function reconcile(namespace: string, name: string) {
    if (paused) return void paused.add(`${namespace}/${name}`);
    const isvc = host.get(namespace, name);
    if (!isvc) return;
    const state = stateOf(isvc);
    const { key, predictor } = templateOf(isvc);
    if (state.revisions.at(-1)?.template !== key) {
      const revisionName = `${name}-predictor-${pad5(state.revisions.length + 1)}`;
      const revision: KnativeRevision = { name: revisionName, template: key, predictor, state: 'pending', pod: podName(revisionName), served: new Map() };
      state.revisions.push(revision);
      const uid = isvc.metadata.uid;
      host.later(readyMs, () => {
        void state.listening.then(() => {
          if (services.get(uid) !== state) return;
          const gpus = Number(predictor.model?.resources?.limits?.['nvidia.com/gpu'] ?? 0);
          const why = failing.get(predictor.model?.storageUri ?? '');
          revision.state = why === undefined && gpus <= gpuCapacity ? 'ready' : 'failed';
          // Knative reports an unschedulable pod through the revision (ResourcesAvailable False, Unschedulable).
          if (gpus > gpuCapacity) revision.message = `0/1 nodes are available: 1 Insufficient nvidia.com/gpu`;
          else if (why !== undefined) revision.message = `Container failed with: ${why}`;
          reconcile(namespace, name);
        });
      });
    }
    // The controller reconciles again after its own status update, until nothing changes (a rollback after a
    // promotion takes two rounds: PropagateStatus moves latestRolledoutRevision back, then the route follows).
    let current = isvc;
    for (let round = 0; round < 5; round++) {
      const next = structuredClone(current);
      next.status = statusOf(current, state);
      if (JSON.stringify(next.status) === JSON.stringify(current.status)) return;
      host.commitStatus(next);
      current = host.get(namespace, name)!;
    }
  }

  function statusOf(isvc: Obj, state: ServiceState): Obj {
    const name = isvc.metadata.name;
    const before: Obj = isvc.status?.components?.predictor ?? {};
    const latestCreated = state.revisions.at(-1)!;
    const latestReady = state.revisions.filter((r) => r.state === 'ready').at(-1)?.name;
    const canary: number | undefined = isvc.spec.predictor?.canaryTrafficPercent ?? undefined;

    // ksvc_reconciler.go: the route KServe asks Knative for, from the status as it was.
    const lastRolledout: string | undefined = before.latestRolledoutRevision;
    const targets: Obj[] = [];
    if (canary !== undefined && lastRolledout) {
      targets.push({ latestRevision: true, percent: canary });
      if (canary < 100) targets.push({ tag: 'prev', revisionName: lastRolledout, latestRevision: false, percent: 100 - canary });
    } else {
      targets.push({ latestRevision: true, percent: 100 });
    }
    // Knative resolves `latestRevision: true` to its latest ready revision; no ready revision, no route.
    const port = state.port;
    const traffic = latestReady
      ? targets.map((t) => ({
          ...(t.tag ? { tag: t.tag, url: `http://prev-${name}-predictor.${state.namespace}.example.com` } : {}),
          revisionName: t.latestRevision ? latestReady : t.revisionName,
          latestRevision: t.latestRevision,
          percent: t.percent,
        }))
      : [];

    // PropagateStatus: track the revision rolled out with 100% and the one before it.
    let latestRolledoutRevision: string | undefined = before.latestRolledoutRevision;
    let previousRolledoutRevision: string | undefined = before.previousRolledoutRevision;
    const byRevision = new Map<string, number>();
    for (const t of traffic) byRevision.set(t.revisionName, (byRevision.get(t.revisionName) ?? 0) + t.percent);
    for (const t of traffic) {
      if (t.revisionName !== latestReady || !t.latestRevision) continue;
      if (latestRolledoutRevision !== latestReady) {
        if (t.percent === 100) {
          previousRolledoutRevision = latestRolledoutRevision;
          latestRolledoutRevision = latestReady;
        }
      } else if (latestReady === latestCreated.name && t.percent < 100 && byRevision.get(t.revisionName) === 100 && previousRolledoutRevision) {
        latestRolledoutRevision = previousRolledoutRevision;
      }
    }

    const was = new Map<string, Obj>(((isvc.status?.conditions ?? []) as Obj[]).map((c) => [c.type, c]));
    const cond = (type: string, status: 'True' | 'False' | 'Unknown', reason?: string, message?: string): Obj => {
      const old = was.get(type);
      const same = old && old.status === status && old.reason === reason && old.message === message;
      return {
        type,
        status,
        ...(reason ? { reason } : {}),
        ...(message ? { message } : {}),
        lastTransitionTime: same ? old.lastTransitionTime : host.now(),
        ...(type === 'PredictorConfigurationReady' || type === 'PredictorRouteReady' ? { severity: 'Info' } : {}),
      };
    };
    const configuration =
      latestCreated.state === 'ready'
        ? cond('PredictorConfigurationReady', 'True')
        : latestCreated.state === 'failed'
          ? cond('PredictorConfigurationReady', 'False', 'RevisionFailed', `Revision "${latestCreated.name}" failed with message: ${latestCreated.message}.`)
          : cond('PredictorConfigurationReady', 'Unknown', 'Deploying');
    const route = latestReady
      ? cond('PredictorRouteReady', 'True')
      : latestCreated.state === 'failed'
        ? cond('PredictorRouteReady', 'False', 'RevisionMissing', `Configuration "${name}-predictor" does not have any ready Revision.`)
        : cond('PredictorRouteReady', 'Unknown', 'RevisionMissing', `Configuration "${name}-predictor" is waiting for a Revision to become ready.`);
    const firstNot = (type: string, ...cs: Obj[]) => {
      const bad = cs.find((c) => c.status !== 'True');
      return bad ? cond(type, bad.status, bad.reason, bad.message) : cond(type, 'True');
    };
    const predictorReady = firstNot('PredictorReady', configuration, route);
    const ingressReady = latestReady ? cond('IngressReady', 'True') : firstNot('IngressReady', route);
    const conditions = [
      ingressReady,
      cond('LatestDeploymentReady', configuration.status, configuration.reason, configuration.message),
      configuration,
      predictorReady,
      route,
      firstNot('Ready', predictorReady, ingressReady),
    ];
    const url = latestReady && port ? `http://127.0.0.1:${port}` : undefined;

    const failed = latestCreated.state === 'failed';
    const modelStatus = failed
      ? {
          transitionStatus: 'BlockedByFailedLoad',
          states: { activeModelState: latestReady ? 'Loaded' : 'FailedToLoad', targetModelState: 'FailedToLoad' },
          lastFailureInfo: { reason: 'ModelLoadFailed', message: latestCreated.message, location: latestCreated.name },
        }
      : latestCreated.state === 'pending'
        ? { transitionStatus: 'InProgress', states: { activeModelState: latestReady ? 'Loaded' : 'Pending', targetModelState: 'Pending' } }
        : { transitionStatus: 'UpToDate', states: { activeModelState: 'Loaded', targetModelState: 'Loaded' }, copies: { failedCopies: 0, totalCopies: 1 } };

    return {
      observedGeneration: isvc.metadata.generation,
      ...(url ? { url, address: { url: `http://${name}-predictor.${state.namespace}.svc.cluster.local` } } : {}),
      conditions,
      components: {
        predictor: {
          latestCreatedRevision: latestCreated.name,
          ...(latestReady ? { latestReadyRevision: latestReady } : {}),
          ...(latestRolledoutRevision ? { latestRolledoutRevision } : {}),
          ...(previousRolledoutRevision ? { previousRolledoutRevision } : {}),
          ...(url ? { url } : {}),
          traffic,
        },
      },
      modelStatus,
      deploymentMode: 'Serverless',
    };
  }

  /** The KServe validating webhook and the CRD schema, for the fields the stand-in knows. */
  function validate(body: Obj): string | undefined {
    const name = body?.metadata?.name;
    if (typeof name !== 'string' || !/^[a-z]([-a-z0-9]*[a-z0-9])?$/.test(name) || name.length > 63) {
      return `metadata.name: Invalid value: ${JSON.stringify(name)}: a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character`;
    }
    if (body.apiVersion !== 'serving.kserve.io/v1beta1' || body.kind !== 'InferenceService')
      return 'apiVersion/kind: must be serving.kserve.io/v1beta1 InferenceService';
    const predictor = body.spec?.predictor;
    if (!predictor || typeof predictor !== 'object') return 'spec.predictor: Required value';
    const canary = predictor.canaryTrafficPercent;
    if (canary !== undefined && canary !== null && !(Number.isInteger(canary) && canary >= 0 && canary <= 100)) {
      return `spec.predictor.canaryTrafficPercent: Invalid value: ${JSON.stringify(canary)}: must be an integer from 0 to 100`;
    }
    const model = predictor.model;
    if (!model && !predictor.containers) return 'spec.predictor: Required value: exactly one of model or containers must be specified';
    if (model) {
      if (!model.modelFormat?.name) return 'spec.predictor.model.modelFormat.name: Required value';
      const uri = model.storageUri;
      if (uri !== undefined && (typeof uri !== 'string' || !(STORAGE_PREFIXES.some((p) => uri.startsWith(p)) || uri.startsWith('/')))) {
        return `spec.predictor.model.storageUri: Invalid value: ${JSON.stringify(uri)}: storage URI must start with one of ${STORAGE_PREFIXES.join(', ')} or be an absolute path`;
      }
      for (const [resource, value] of Object.entries({ ...model.resources?.limits, ...model.resources?.requests })) {
        if (!QUANTITY.test(String(value))) {
          return `spec.predictor.model.resources: Invalid value: "${value}" for ${resource}: quantities must match the regular expression`;
        }
      }
    }
    return undefined;
  }

  /** The CRD's additionalPrinterColumns as a meta.k8s.io/v1 Table, what `kubectl get isvc` prints. */
  function table(items: Obj[], resourceVersion: string): Obj {
    const age = (t: string) => {
      const s = Math.max(0, Math.round((Date.now() - Date.parse(t)) / 1000));
      return s < 120 ? `${s}s` : `${Math.round(s / 60)}m`;
    };
    const column = (name: string, type = 'string', format = '') => ({ name, type, format, description: '', priority: 0 });
    return {
      kind: 'Table',
      apiVersion: 'meta.k8s.io/v1',
      metadata: { resourceVersion },
      columnDefinitions: [
        column('Name', 'string', 'name'),
        column('URL'),
        column('Ready'),
        column('Prev', 'integer'),
        column('Latest', 'integer'),
        column('PrevRolledoutRevision'),
        column('LatestReadyRevision'),
        column('Age', 'date'),
      ],
      rows: items.map((o) => {
        const p = o.status?.components?.predictor ?? {};
        const traffic = (p.traffic ?? []) as Obj[];
        return {
          cells: [
            o.metadata.name,
            o.status?.url ?? null,
            (o.status?.conditions ?? []).find((c: Obj) => c.type === 'Ready')?.status ?? null,
            traffic.find((t) => t.tag === 'prev')?.percent ?? null,
            traffic.find((t) => t.latestRevision)?.percent ?? null,
            p.previousRolledoutRevision ?? null,
            p.latestReadyRevision ?? null,
            age(o.metadata.creationTimestamp),
          ],
          object: { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: o.metadata },
        };
      }),
    };
  }

  return {
    reconcile,
    validate,
    table,
    forget(uid: string) {
      const state = services.get(uid);
      if (!state) return;
      services.delete(uid);
      state.server.close();
      state.server.closeAllConnections();
    },
    /** Models stored at this URI fail to load: their revisions fail with this message. */
    failStorageUri(uri: string, message: string) {
      failing.set(uri, message);
    },
    /** Stops the controller (a KServe outage): writes are stored, nothing reconciles them until `resume`. */
    pause() {
      paused ??= new Set();
    },
    resume() {
      const waiting = [...(paused ?? [])];
      paused = null;
      for (const k of waiting) {
        const [namespace, name] = k.split('/') as [string, string];
        reconcile(namespace, name);
      }
    },
    /** The GPUs the largest node offers: revisions asking for more cannot be scheduled. */
    setGpuCapacity(gpus: number) {
      gpuCapacity = gpus;
    },
    /** The model servers of revisions whose model is at this URI answer every request with this status. */
    answerWith(uri: string, status: number) {
      answering.set(uri, status);
    },
    /** Replaces the pod of a Knative revision: the old pod's series are gone, the new one's count from 0. */
    restartPod(revisionName: string) {
      for (const s of services.values())
        for (const r of s.revisions)
          if (r.name === revisionName) {
            r.pod = podName(r.name);
            r.served = new Map();
          }
    },
    /** What every ready revision's queue-proxy exports now (its `/metrics`, as Prometheus scrapes it). */
    queueProxyMetrics(): ScrapedSeries[] {
      const out: ScrapedSeries[] = [];
      for (const s of services.values())
        for (const r of s.revisions) {
          if (r.state !== 'ready') continue;
          const base = {
            configuration_name: `${s.name}-predictor`,
            namespace_name: s.namespace,
            pod_name: r.pod,
            revision_name: r.name,
            service_name: `${s.name}-predictor`,
          };
          for (const [code, counts] of r.served) {
            const labels = { ...base, response_code: String(code), response_code_class: `${String(code)[0]}xx` };
            for (const [i, n] of counts.entries())
              out.push({
                labels: {
                  __name__: 'revision_app_request_latencies_bucket',
                  ...labels,
                  le: i < LATENCY_BOUNDS_MS.length ? String(LATENCY_BOUNDS_MS[i]) : '+Inf',
                },
                value: n,
              });
            out.push({ labels: { __name__: 'revision_app_request_latencies_count', ...labels }, value: counts.at(-1)! });
          }
        }
      return out;
    },
    /** Models at this URI load again (revisions made from now on become ready). */
    healStorageUri(uri: string) {
      failing.delete(uri);
    },
    /** Knative revisions alive (of InferenceServices that exist), in a namespace or all. */
    revisions(namespace?: string): number {
      return [...services.values()].filter((s) => namespace === undefined || s.namespace === namespace).reduce((n, s) => n + s.revisions.length, 0);
    },
    close() {
      for (const uid of [...services.keys()]) this.forget(uid);
    },
  };
}
