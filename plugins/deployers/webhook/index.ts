// The `webhook` deployer: hands each rollout to another team's serving service with a signed request and tracks the
// status it reports. Every call (apply, setTraffic, rollback, delete) is a POST to `<url>/deployments/<id>/<action>`
// signed like Atelier's outgoing webhooks, retried with backoff under one idempotency key; the service answers with
// its view of the deployment. `status` answers from a cache refreshed in the background (`GET <url>/deployments/<id>`),
// so it never waits on the network once a deployment is known, and says so in its message when the view goes stale.
// It keeps nothing of its own: a new instance re-attaches from the service's answers alone.
import { randomUUID } from 'node:crypto';
import {
  type Deployer,
  DeployerError,
  type DeployerErrorCode,
  type Deployment,
  type DeploymentStatus,
  defineDeployer,
  type Revision,
  type TrafficSplit,
} from '../../deployer-sdk';
import { redactUrl } from '../../redact-url';
import { type Answer, createSignedClient, type RetryPolicy, UnreachableError } from './http';
import { parseList, parseRefusal, parseStatus, type WebhookAction, type WebhookRequestBody, wireRevision } from './wire';

export type { RetryPolicy } from './http';
export type { WebhookAction, WebhookRequestBody, WireRevision } from './wire';

export interface WebhookDeployerOptions {
  /** The service's base URL (http or https, no credentials): calls go to `<url>/deployments/<id>[/<action>]`. */
  url: string;
  /** The shared signing secret (`whsec_…` or any string the two teams agreed on); the HMAC key is the whole string. */
  secret: string;
  /** The rotated-out secret while the service may still hold only it: requests then carry both signatures. */
  previousSecret?: string;
  /** Plugin name. Default `webhook`. */
  name?: string;
  /** How long one request may take. Default 10 s. */
  timeoutMs?: number;
  /** Retries on 5xx, 408, 429, timeouts and refused connections. Default 4 retries from 250 ms, at most 5 s apart. */
  retry?: Partial<RetryPolicy>;
  /** How often known deployments' status is refreshed in the background. Default 5 s. */
  refreshMs?: number;
  /** How long `apply` follows a revision the service reports STARTING before answering it as it is. Default 60 s. */
  startupMs?: number;
  /** How often `apply` asks while a revision starts. Default 250 ms. */
  startupPollMs?: number;
  /** The fetch to use (tests, proxies). Default the global one. */
  fetch?: typeof fetch;
}

interface Known {
  status: DeploymentStatus;
  /** When the service last answered with a valid view. */
  answeredAt: number;
  /** Why the last refresh failed (null while the view is fresh). */
  failure: string | null;
  /** Bumped by every change this instance makes: a refresh begun before it must not overwrite its answer. */
  generation: number;
}

/** Ids become a URL path segment: never `.`/`..` (which would climb out of `/deployments/`), never a slash. */
const idRe = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** Status requests in flight at once during a background refresh. */
const REFRESH_CONCURRENCY = 8;

const CODES: readonly DeployerErrorCode[] = [
  'NO_SERVE_ENTRYPOINT',
  'BAD_SPLIT',
  'UNKNOWN_REVISION',
  'UNKNOWN_DEPLOYMENT',
  'REVISION_CONFLICT',
  'REVISION_FAILED',
  'PORT_IN_USE',
  'BAD_SETTINGS',
];

/** Checks options once, at construction (the deployer registry builds deployers at start-up). */
function checkOptions(options: WebhookDeployerOptions, name: string): URL {
  let base: URL;
  try {
    base = new URL(options.url);
  } catch {
    throw new Error(`${name}: url "${redactUrl(options.url)}" is not a URL: give the service's base URL, e.g. https://serving.example/atelier`);
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new Error(`${name}: url must be http or https, not ${base.protocol}`);
  if (base.username || base.password) throw new Error(`${name}: url may not carry credentials: the service verifies the signature instead`);
  // A query (`?token=…`) is a credential in the URL, printed wherever the URL is, and calls append their path to the
  // URL's: `<url>/deployments/<id>` would land inside the query, never on the service's path.
  if (base.search || base.hash || options.url.includes('?') || options.url.includes('#'))
    throw new Error(
      `${name}: url may not carry a query or fragment (calls append /deployments/<id>/<action> to its path): give the base URL alone; the service verifies the signature`,
    );
  if (!options.secret) throw new Error(`${name}: a secret is required: the service verifies every request's signature with it`);
  return base;
}

export function createWebhookDeployer(options: WebhookDeployerOptions): Deployer {
  const name = options.name ?? 'webhook';
  const base = checkOptions(options, name);
  const root = base.href.replace(/\/+$/, '');
  /** The URL as messages show it (a secret in it, were one let through, left out). */
  const shown = redactUrl(root);
  const refreshMs = options.refreshMs ?? 5_000;
  const startupMs = options.startupMs ?? 60_000;
  const startupPollMs = options.startupPollMs ?? 250;
  const retry: RetryPolicy = { retries: 4, backoffMs: 250, maxBackoffMs: 5_000, ...options.retry };
  const secrets = options.previousSecret ? [options.secret, options.previousSecret] : [options.secret];
  const common = { secrets, timeoutMs: options.timeoutMs ?? 10_000, fetch: options.fetch ?? fetch };
  const client = createSignedClient({ ...common, retry });
  /** Background refreshes try once: the next tick is their retry. */
  const once = createSignedClient({ ...common, retry: { ...retry, retries: 0 } });
  const stopping = new AbortController();
  const known = new Map<string, Known>();
  const loading = new Map<string, Promise<DeploymentStatus>>();
  const locks = new Map<string, Promise<unknown>>();
  let generation = 0;

  const refuse = (code: DeployerErrorCode, message: string) => new DeployerError(code, message, name);
  const fail = (message: string) => new Error(`${name}: ${message}`);
  const deploymentUrl = (id: string, action?: WebhookAction) => `${root}/deployments/${encodeURIComponent(id)}${action ? `/${action}` : ''}`;

  function withLock<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const run = (locks.get(id) ?? Promise.resolve()).then(fn, fn);
    const settled = run.catch(() => undefined);
    locks.set(id, settled);
    void settled.then(() => locks.get(id) === settled && locks.delete(id));
    return run;
  }

  /** The status in a 2xx answer; a malformed one is an error naming the field. */
  function statusIn(id: string, what: string, answer: Answer): DeploymentStatus {
    let body: unknown;
    try {
      body = JSON.parse(answer.text);
    } catch {
      throw fail(`the service at ${shown} answered ${what} with something that is not JSON: it must answer its view of the deployment`);
    }
    const parsed = parseStatus(id, body);
    if ('problem' in parsed) throw fail(`the service at ${shown} answered ${what} with a malformed status: ${parsed.problem}`);
    return parsed.status;
  }

  /** A 4xx (or a redirect) as the typed refusal, with the service's own message. */
  function refusal(id: string, what: string, answer: Answer): Error {
    if (answer.status >= 300 && answer.status < 400)
      return fail(`the service answered ${what} with a redirect (HTTP ${answer.status}): set url to where it serves`);
    const { code, message } = parseRefusal(answer.text);
    const typed = CODES.find((c) => c === code);
    const fallback: DeployerErrorCode = answer.status === 404 ? 'UNKNOWN_DEPLOYMENT' : answer.status === 409 ? 'REVISION_CONFLICT' : 'BAD_SETTINGS';
    const hint = answer.status === 401 || answer.status === 403 ? ' (check the deployer’s secret, and previousSecret while the service rotates it)' : '';
    return refuse(typed ?? fallback, `the service refused ${what} of deployment ${id} (HTTP ${answer.status}): ${message}${hint}`);
  }

  function remember(id: string, status: DeploymentStatus) {
    known.set(id, { status, answeredAt: Date.now(), failure: null, generation: ++generation });
  }

  /** The service's view right now (one signed GET, retried); 404 is UNKNOWN_DEPLOYMENT. */
  async function fetchStatus(id: string): Promise<DeploymentStatus> {
    const answer = await client.send('GET', deploymentUrl(id), randomUUID(), '', stopping.signal).catch((err: Error) => {
      throw fail(err.message);
    });
    if (answer.status < 200 || answer.status >= 300) throw refusal(id, 'a status request', answer);
    return statusIn(id, 'a status request', answer);
  }

  /** An id that cannot name a deployment on the service is unknown there (apply refuses it as a bad setting). */
  function checkId(id: string) {
    if (!idRe.test(id))
      throw refuse(
        'UNKNOWN_DEPLOYMENT',
        `deployment id "${id}" is not one this deployer sends: letters, digits, dots, dashes and underscores, starting with a letter or digit`,
      );
  }

  /** One call: a signed POST under one request id, retried as the policy says; the service's view after it. */
  async function call(id: string, action: WebhookAction, fields: Omit<WebhookRequestBody, 'requestId' | 'sentAt' | 'deployment'>, deployment?: Deployment) {
    if (stopping.signal.aborted) throw fail(`${action} of deployment ${id}: this deployer instance is closed (the control plane is stopping)`);
    const body: WebhookRequestBody = { deployment: deployment ?? { id }, ...fields, requestId: randomUUID(), sentAt: new Date().toISOString() };
    const entry = known.get(id);
    if (entry) entry.generation = ++generation;
    let answer: Answer;
    try {
      answer = await client.send('POST', deploymentUrl(id, action), body.requestId, JSON.stringify(body), stopping.signal);
    } catch (err) {
      if (err instanceof UnreachableError) throw fail(`${action} of deployment ${id}: ${err.message}; nothing was confirmed, calling again is safe`);
      throw err;
    }
    return answer;
  }

  /** Follows a revision the service reports as starting until it is READY or FAILED, or the startup deadline passes. */
  async function untilStarted(id: string, number: number, status: DeploymentStatus): Promise<DeploymentStatus> {
    const deadline = Date.now() + startupMs;
    let current = status;
    const starting = (s: DeploymentStatus) => {
      const health = s.revisions.find((r) => r.number === number)?.health;
      return health === 'STARTING' || health === 'RESTARTING';
    };
    while (starting(current) && Date.now() < deadline && !stopping.signal.aborted) {
      await new Promise((resolve) => setTimeout(resolve, startupPollMs));
      try {
        current = await fetchStatus(id);
      } catch {
        break; // the apply was accepted: answer the last view; the background refresh follows it from here
      }
      remember(id, current);
    }
    return current;
  }

  function checkSplitShape(split: TrafficSplit) {
    const entries = Object.entries(split);
    for (const [rev, pct] of entries) {
      if (!Number.isInteger(pct) || pct < 0 || pct > 100) throw refuse('BAD_SPLIT', `revision ${rev} gets ${pct}%: percents are whole numbers from 0 to 100`);
      if (!/^[1-9][0-9]*$/.test(rev)) throw refuse('UNKNOWN_REVISION', `"${rev}" is not a revision number: revisions are numbered 1, 2, 3, …`);
    }
    const total = entries.reduce((sum, [, pct]) => sum + pct, 0);
    if (entries.length === 0 || total !== 100) throw refuse('BAD_SPLIT', `the split sums to ${total}%, not 100%: give every percent to some revision`);
  }

  /** A POST whose answer is the deployment's new view. */
  async function change(id: string, action: WebhookAction, what: string, fields: Parameters<typeof call>[2], deployment?: Deployment) {
    const answer = await call(id, action, fields, deployment);
    if (answer.status < 200 || answer.status >= 300) throw refusal(id, what, answer);
    const status = statusIn(id, what, answer);
    remember(id, status);
    return status;
  }

  /** One background pass: every known deployment's view, asked once; a failure marks the view stale. */
  let refreshing = false;
  async function refresh() {
    if (refreshing) return;
    refreshing = true;
    try {
      const queue = [...known.keys()];
      const one = async (id: string) => {
        const began = known.get(id)?.generation;
        let next: { status: DeploymentStatus } | { gone: true } | { failure: string };
        try {
          const answer = await once.send('GET', deploymentUrl(id), randomUUID(), '', stopping.signal);
          if (answer.status === 404) next = { gone: true };
          else if (answer.status < 200 || answer.status >= 300) next = { failure: refusal(id, 'a status request', answer).message };
          else next = { status: statusIn(id, 'a status request', answer) };
        } catch (err) {
          next = { failure: (err as Error).message };
        }
        const entry = known.get(id);
        if (!entry || entry.generation !== began) return; // a change answered meanwhile: its view is newer
        if ('gone' in next) known.delete(id);
        else if ('status' in next) Object.assign(entry, { status: next.status, answeredAt: Date.now(), failure: null });
        else entry.failure = next.failure;
      };
      // A few at a time: a control plane with many deployments must not open hundreds of requests each tick.
      await Promise.all(
        Array.from({ length: Math.min(REFRESH_CONCURRENCY, queue.length) }, async () => {
          for (let id = queue.shift(); id !== undefined; id = queue.shift()) await one(id);
        }),
      );
    } finally {
      refreshing = false;
    }
  }
  const timer = setInterval(() => void refresh(), refreshMs);
  timer.unref();

  function view(entry: Known): DeploymentStatus {
    if (!entry.failure) return entry.status;
    const age = Math.round((Date.now() - entry.answeredAt) / 1000);
    return { ...entry.status, message: `${entry.status.message} [stale: the service has not answered for ${age} s (${entry.failure}); this is its last view]` };
  }

  return defineDeployer({
    name,

    apply: (deployment: Deployment, revision: Revision) =>
      withLock(deployment.id, async () => {
        if (!idRe.test(deployment.id))
          throw refuse(
            'BAD_SETTINGS',
            `deployment id "${deployment.id}" must be letters, digits, dots, dashes and underscores, starting with a letter or digit`,
          );
        if (!revision.serve)
          throw refuse(
            'NO_SERVE_ENTRYPOINT',
            `${revision.modelVersion.ref} has no serve entrypoint: register the version with one (manifest "serve") before deploying it`,
          );
        if (!Number.isInteger(revision.number) || revision.number < 1) throw refuse('BAD_SETTINGS', `revision number ${revision.number} is not 1, 2, 3, …`);
        const applied = await change(deployment.id, 'apply', `apply of revision ${revision.number}`, { revision: wireRevision(revision) }, deployment);
        const status = await untilStarted(deployment.id, revision.number, applied);
        return status;
      }),

    async status(deploymentId: string) {
      const entry = known.get(deploymentId);
      if (entry) return view(entry);
      checkId(deploymentId);
      // A deployment this instance has not seen yet (a restart re-attaching): ask once, then keep it fresh in the background.
      let pending = loading.get(deploymentId);
      if (!pending) {
        pending = fetchStatus(deploymentId).finally(() => loading.delete(deploymentId));
        loading.set(deploymentId, pending);
      }
      const status = await pending;
      if (!known.has(deploymentId)) remember(deploymentId, status);
      return view(known.get(deploymentId)!);
    },

    setTraffic: (deploymentId: string, split: TrafficSplit) =>
      withLock(deploymentId, async () => {
        checkId(deploymentId);
        checkSplitShape(split);
        return change(deploymentId, 'traffic', 'a traffic split', { split });
      }),

    rollback: (deploymentId: string, toRevision: number) =>
      withLock(deploymentId, async () => {
        checkId(deploymentId);
        if (!Number.isInteger(toRevision) || toRevision < 1)
          throw refuse('UNKNOWN_REVISION', `${toRevision} is not a revision number: revisions are numbered 1, 2, 3, …`);
        return change(deploymentId, 'rollback', `a rollback to revision ${toRevision}`, { toRevision });
      }),

    delete: (deploymentId: string) =>
      withLock(deploymentId, async () => {
        if (!idRe.test(deploymentId)) return; // no such deployment can exist: deleting it is done
        const answer = await call(deploymentId, 'delete', {});
        if ((answer.status < 200 || answer.status >= 300) && answer.status !== 404) throw refusal(deploymentId, 'a delete', answer);
        known.delete(deploymentId);
      }),

    // A service without the list call (404, 405, 501) cannot say what it holds: the control plane reports that it
    // cannot clean up after this deployer, and nothing else changes.
    async list(installation: string) {
      const answer = await client
        .send('GET', `${root}/deployments?installation=${encodeURIComponent(installation)}`, randomUUID(), '', stopping.signal)
        .catch((err: Error) => {
          throw fail(err.message);
        });
      if (answer.status === 404 || answer.status === 405 || answer.status === 501)
        throw refuse(
          'CANNOT_LIST',
          `the service at ${shown} does not list deployments (HTTP ${answer.status}): it may answer GET /deployments?installation=<id>`,
        );
      if (answer.status < 200 || answer.status >= 300)
        throw fail(`the service at ${shown} refused a list request (HTTP ${answer.status}): ${parseRefusal(answer.text).message}`);
      let body: unknown;
      try {
        body = JSON.parse(answer.text);
      } catch {
        throw fail(`the service at ${shown} answered a list request with something that is not JSON`);
      }
      const parsed = parseList(body);
      if ('problem' in parsed) throw fail(`the service at ${shown} answered a list request with a malformed list: ${parsed.problem}`);
      return parsed.deployments;
    },

    async close() {
      clearInterval(timer);
      stopping.abort();
    },
  });
}
