// The deployer plugin SDK: the one interface a deployer implements to serve model versions, and the types the control
// plane drives it with. A deployer is a plain object made by a `createX(options)` factory (no base class), like an
// executor. The control plane owns the decisions (which revision, what split, when to roll back); a deployer only
// makes its backend match them and reports what it sees. Every method is async, and everything the control plane
// needs to resume after a crash is answered by `status`, so no state lives only in the control plane's memory.

/** A deployment: one serving endpoint for a model in a domain, which serves one or more revisions. */
export interface Deployment {
  /** Stable id chosen by the control plane; the deployer's key for everything it keeps. */
  id: string;
  /** Human-readable name (lowercase letters, digits and dashes): used in URLs, resource and process names. */
  name: string;
  /** What it serves, as the registry names it: `ns/model@alias` or `ns/model/3`. */
  model: string;
  /** Governance domain (e.g. `production`), for deployers that place domains apart. */
  domain: string;
  /** Deployer-specific settings, under the deployer's own keys (the local deployer: `port`). */
  settings: Record<string, unknown>;
  /**
   * The control plane's installation id (a uuid, kept in its database): a deployer tags what it creates with it, so
   * that `list` answers this control plane's deployments only, and two control planes sharing a backend (a cluster's
   * namespace, a serving team) never list or stop each other's. The control plane always sets it.
   */
  installation?: string;
}

/** A deployment a deployer holds, as `list` answers it. */
export interface HeldDeployment {
  id: string;
  /** Its name, where the backend keeps it (for logs and the audit trail). */
  name?: string;
}

/** How to start a model version's server: an argv run in the version's files, given `PORT` (and `HOST`). */
export interface ServeEntrypoint {
  /** e.g. `['python3', 'serve.py']` or `['node', 'serve.mjs']`; run with the version's files as working directory. */
  command: string[];
  /** Path answering 200 once the server is ready (default `/health`); null: ready once its port accepts a TCP connection. */
  healthPath?: string | null;
}

/** A model version as a revision serves it. */
export interface ModelVersionRef {
  /** Registry reference of the version, e.g. `iris/classifier/3`. */
  ref: string;
  /** Content digest of its files: two revisions with one number and different digests are a conflict. */
  digest: string;
  /** The version's files: a local directory, or a function fetching them (from the object store) into one. */
  files: string | (() => Promise<string>);
}

/** One revision of a deployment: a model version with how to serve it. Numbers only grow within a deployment. */
export interface Revision {
  /** 1, 2, 3, … per deployment; the idempotency key of `apply` together with the deployment id. */
  number: number;
  modelVersion: ModelVersionRef;
  /** Null when the version has no `serve` entrypoint: `apply` then refuses with `NO_SERVE_ENTRYPOINT`. */
  serve: ServeEntrypoint | null;
  /** Extra environment for the server (never secrets in plain text: the control plane resolves those). */
  env?: Record<string, string>;
  /** Requested resources; deployers that cannot place them say so in `status().message`. */
  resources?: { cpu?: number; memoryMb?: number; gpus?: number };
}

/** Per-revision health as the deployer sees it. */
export type RevisionHealth = 'STARTING' | 'READY' | 'RESTARTING' | 'FAILED';

export interface RevisionStatus {
  number: number;
  modelVersion: string;
  health: RevisionHealth;
  /** Restarts after crashes so far (reset when the revision is applied afresh). */
  restarts: number;
  /** Why it is not READY (for FAILED: the end of its stderr). */
  message: string | null;
}

/** Traffic per revision number, in whole percents summing to 100: `{ 1: 90, 2: 10 }`. */
export type TrafficSplit = Record<number, number>;

export interface DeploymentStatus {
  deploymentId: string;
  /** True when the URL answers and every revision with traffic is READY. */
  ready: boolean;
  /** Where the deployment is served (null while it has none). */
  url: string | null;
  /** The split in force; revisions without traffic are omitted. Empty before the first revision. */
  traffic: TrafficSplit;
  /** One line for people: what is happening or wrong. */
  message: string;
  /** Every revision the deployer holds, by number. */
  revisions: RevisionStatus[];
  /**
   * What its router measured of each revision's traffic, where the deployer has one (the local deployer does): the
   * control plane records it as observations of the revisions' model versions, which rollouts' gates and monitors
   * read (docs/deployments.md). Absent where the backend does not say (kserve reads Knative's from Prometheus, when
   * it is given one).
   */
  serving?: ServingStats;
}

/**
 * Counters of each revision's traffic since `epoch` (a router started again starts a new epoch and counts from 0):
 * requests answered, errors among them (a 5xx, or no whole answer), and latencies in a histogram whose bucket i holds
 * those up to `boundsMs[i]` ms where the deployer gives bounds (as Prometheus' `le` does), else up to
 * `firstMs × growth^i` ms; the last bucket holds everything above.
 */
export interface ServingStats {
  epoch: string;
  firstMs?: number;
  growth?: number;
  /** The buckets' upper bounds in ms, ascending: one fewer than the buckets (the last has none). */
  boundsMs?: number[];
  revisions: Record<number, { requests: number; errors: number; buckets: number[] }>;
}

/** The upper bound (ms) of bucket `i` of a ServingStats histogram with `count` buckets; the last one's is the one before. */
export function bucketBoundMs(stats: Pick<ServingStats, 'firstMs' | 'growth' | 'boundsMs'>, i: number, count: number): number {
  const at = Math.max(0, Math.min(i, count - 2));
  if (stats.boundsMs) return stats.boundsMs[Math.min(at, stats.boundsMs.length - 1)] ?? 0;
  return (stats.firstMs ?? 1) * (stats.growth ?? 2) ** at;
}

/**
 * The response header a serving deployer's router sets on every proxied response: the revision number that answered
 * it. The testkit counts the split by it, and monitors use it to attribute requests to revisions.
 */
export const REVISION_HEADER = 'x-atelier-revision';
/** A request header pinning a request to one revision (for shadow checks and per-revision monitors). */
export const PIN_REVISION_HEADER = 'x-atelier-pin-revision';

export type DeployerErrorCode =
  | 'NO_SERVE_ENTRYPOINT'
  | 'BAD_SPLIT'
  | 'UNKNOWN_REVISION'
  | 'UNKNOWN_DEPLOYMENT'
  | 'REVISION_CONFLICT'
  | 'REVISION_FAILED'
  | 'PORT_IN_USE'
  | 'BAD_SETTINGS'
  /** `list` only: the backend cannot say what it holds (a webhook service without the list call). */
  | 'CANNOT_LIST';

/**
 * A refusal the control plane maps to its own typed error (bad input → BAD_USER_INPUT, unknown → NOT_FOUND). Thrown
 * before anything changes: a refused call leaves the deployment exactly as it was.
 */
export class DeployerError extends Error {
  constructor(
    readonly code: DeployerErrorCode,
    message: string,
    readonly deployer?: string,
  ) {
    super(deployer ? `${deployer}: ${message}` : message);
    this.name = 'DeployerError';
  }
}

/**
 * A deployer plugin. The control plane calls `apply` for each new revision, then moves traffic with `setTraffic` or
 * `rollback`, reads `status` as often as it likes, and `delete`s the deployment at the end. Calls for one
 * deployment may overlap; a deployer serialises them. Failures of the served model (a crashing server) are reported
 * through `status`, never thrown; throws are `DeployerError`s for bad input, or errors of the backend itself.
 */
export interface Deployer {
  /** Unique name, used in a deployment's `deployer` field and in settings (`settings[name]`). */
  readonly name: string;

  /**
   * Make the revision exist and start serving it. Idempotent per (deployment id, revision number): applying a
   * revision already applied changes nothing and answers the current status (a FAILED revision is started afresh).
   * Never moves traffic, except that a deployment's first revision takes 100%. Resolves once the revision is READY
   * or FAILED (or its startup deadline passed: then STARTING). Refuses a revision with no serve entrypoint
   * (`NO_SERVE_ENTRYPOINT`) and one whose number was applied with another digest (`REVISION_CONFLICT`).
   */
  apply(deployment: Deployment, revision: Revision): Promise<DeploymentStatus>;

  /** The deployment as it is now; cheap (no backend round trip a control loop could not afford each second). */
  status(deploymentId: string): Promise<DeploymentStatus>;

  /**
   * Route traffic by the split, switching in this one call: once it resolves, new requests follow it. Refuses a split
   * whose percents are not whole numbers in 0..100 summing to 100 (`BAD_SPLIT`), naming a revision not applied
   * (`UNKNOWN_REVISION`) or giving traffic to a FAILED one (`REVISION_FAILED`).
   */
  setTraffic(deploymentId: string, split: TrafficSplit): Promise<DeploymentStatus>;

  /**
   * All traffic to `toRevision` at once (the instant fallback). Newer revisions keep running with no traffic, so
   * rolling forward again is one `setTraffic`. Refuses an unknown revision (`UNKNOWN_REVISION`).
   */
  rollback(deploymentId: string, toRevision: number): Promise<DeploymentStatus>;

  /** Stop serving and remove everything the deployment holds. Idempotent: deleting a deployment that is gone is fine. */
  delete(deploymentId: string): Promise<void>;

  /**
   * Optional. Every deployment this deployer holds that was applied with installation id `installation`
   * (`Deployment.installation`), and nothing else: not another installation's, nor one applied without an id. The
   * control plane calls it every few minutes and `delete`s, after a grace, a deployment no row of its database names
   * (one created after the backup its database was restored from); it never deletes one whose row exists. A deployer
   * without it, or one whose backend cannot say (`CANNOT_LIST`), is reported as unable to clean up: nothing fails.
   */
  list?(installation: string): Promise<HeldDeployment[]>;

  /**
   * Release this instance (timers, watchers) when the control plane stops. Deployments keep serving; a new
   * instance over the same state re-attaches to them instead of starting them again.
   */
  close?(): Promise<void>;
}

/** Type helper for deployer factories: `export const createX = (o: XOptions) => defineDeployer({...})`. */
export function defineDeployer(deployer: Deployer): Deployer {
  return deployer;
}

/** Checks a split against the revisions a deployment holds; throws the typed error, changes nothing. */
export function checkSplit(split: TrafficSplit, revisions: RevisionStatus[], deployer?: string): void {
  const entries = Object.entries(split);
  const total = entries.reduce((sum, [, pct]) => sum + pct, 0);
  for (const [rev, pct] of entries) {
    if (!Number.isInteger(pct) || pct < 0 || pct > 100)
      throw new DeployerError('BAD_SPLIT', `revision ${rev} gets ${pct}%: percents are whole numbers from 0 to 100`, deployer);
  }
  if (entries.length === 0 || total !== 100)
    throw new DeployerError('BAD_SPLIT', `the split sums to ${total}%, not 100%: give every percent to some revision`, deployer);
  for (const [rev, pct] of entries) {
    const known = revisions.find((r) => r.number === Number(rev));
    if (!known)
      throw new DeployerError(
        'UNKNOWN_REVISION',
        `revision ${rev} was never applied to this deployment (it holds ${revisions.map((r) => r.number).join(', ') || 'none'}): apply it first`,
        deployer,
      );
    if (pct > 0 && known.health === 'FAILED')
      throw new DeployerError(
        'REVISION_FAILED',
        `revision ${rev} has FAILED (${known.message ?? 'no message'}): apply it again or send its traffic elsewhere`,
        deployer,
      );
  }
}

/** A split without its zero entries, keys as numbers (for equality checks and status). */
export function normaliseSplit(split: TrafficSplit): TrafficSplit {
  const out: TrafficSplit = {};
  for (const [rev, pct] of Object.entries(split)) if (pct > 0) out[Number(rev)] = pct;
  return out;
}
