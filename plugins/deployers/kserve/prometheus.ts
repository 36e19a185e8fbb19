// What each KServe revision served, read from Prometheus: Knative's queue-proxy in every predictor pod counts the
// requests it hands the model server in the histogram `revision_app_request_latencies` (ms; labels namespace_name,
// revision_name, pod_name, response_code, response_code_class, le), which Prometheus scrapes. The deployer reads the
// histogram's `_bucket` series of the deployment's Knative revisions with one instant query (HTTP API
// `/api/v1/query`), and turns them into the SDK's ServingStats, so a kserve canary is gated on its error rate and
// latency as a local one is (server/deployments/serving.ts records them).
//
// Counters are per pod and start again from 0 when a pod restarts; a pod that goes away takes its series with it.
// The reader keeps each series' last value: a value lower than the last is a reset (what came before is carried),
// and a series that is gone keeps what it counted. Totals count from the reader's first sight of a deployment (its
// epoch), so a control plane started again starts a new epoch rather than count a pod's whole life as one window.
import { randomUUID } from 'node:crypto';
import type { ServingStats } from '../../deployer-sdk';

export interface PrometheusOptions {
  /**
   * Prometheus' base URL, e.g. `http://prometheus.monitoring:9090` (the HTTP API is under `/api/v1`). Credentials in
   * it (`https://user:password@…`) are sent as basic authentication, and never shown in messages.
   */
  url: string;
  /** Sent as `Authorization: Bearer …` (a Prometheus behind an authenticating proxy). */
  bearerToken?: string;
  /** The queue-proxy's latency histogram (default `revision_app_request_latencies`; its `_bucket` series are read). */
  latencyMetric?: string;
  /** Per-query limit (default 5 s). */
  timeoutMs?: number;
  /** Figures younger than this are answered again without a query (default 2 s; Prometheus scrapes every 15–30 s). */
  cacheMs?: number;
}

interface Series {
  revision: string;
  errors: boolean;
  le: number;
  /** The counter's last value, and what it counted before its resets. */
  last: number;
  carried: number;
  /** Its value at the reader's first sight of the deployment (counted before the epoch). */
  baseline: number;
}

interface Tracked {
  epoch: string;
  /** Whether a read succeeded: the series it found then had counted before the epoch. */
  primed: boolean;
  series: Map<string, Series>;
  /** The last figures and when they were read. */
  cached?: { at: number; key: string; stats: ServingStats };
}

interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

/** A PromQL string literal (double-quoted, with `\` and `"` escaped). */
const literal = (s: string) => `"${s.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`;
/** A regex alternative matching exactly `s` (RE2 syntax, as Prometheus anchors `=~` at both ends). */
const exactly = (s: string) => s.replace(/[\\^$.|?*+()[\]{}]/g, '\\$&');

/** Where Prometheus is, for messages: never its credentials or query. */
export function describeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname === '/' ? '' : u.pathname}`;
  } catch {
    return 'the configured Prometheus URL';
  }
}

export function createServingReader(options: PrometheusOptions) {
  const where = describeUrl(options.url);
  const parsed = new URL(options.url);
  const basic = parsed.username ? Buffer.from(`${decodeURIComponent(parsed.username)}:${decodeURIComponent(parsed.password)}`).toString('base64') : null;
  parsed.username = '';
  parsed.password = '';
  const base = parsed.href.replace(/\/+$/, '');
  const authorization = options.bearerToken ? `Bearer ${options.bearerToken}` : basic ? `Basic ${basic}` : null;
  const metric = `${options.latencyMetric ?? 'revision_app_request_latencies'}_bucket`;
  const tracked = new Map<string, Tracked>();

  async function query(promql: string): Promise<Sample[]> {
    const url = `${base}/api/v1/query?${new URLSearchParams({ query: promql })}`;
    let response: Response;
    try {
      response = await fetch(url, {
        headers: { accept: 'application/json', ...(authorization ? { authorization } : {}) },
        signal: AbortSignal.timeout(options.timeoutMs ?? 5_000),
      });
    } catch (err) {
      throw new Error(`Prometheus at ${where} did not answer (${(err as Error).message})`);
    }
    const body = (await response.json().catch(() => null)) as { status?: string; error?: string; data?: { resultType?: string; result?: Sample[] } } | null;
    if (!response.ok || body?.status !== 'success')
      throw new Error(`Prometheus at ${where} refused the query (${response.status}${body?.error ? `: ${body.error}` : ''})`);
    if (body.data?.resultType !== 'vector' || !Array.isArray(body.data.result))
      throw new Error(`Prometheus at ${where} answered something other than a vector`);
    return body.data.result;
  }

  /**
   * The figures of a deployment's revisions: `knative` maps each Knative revision name to Atelier's revision number.
   * Throws (with a message for people) when Prometheus cannot be read.
   */
  async function read(deploymentId: string, namespace: string, knative: ReadonlyMap<string, number>): Promise<ServingStats> {
    let t = tracked.get(deploymentId);
    if (!t) tracked.set(deploymentId, (t = { epoch: `prometheus-${randomUUID()}`, primed: false, series: new Map() }));
    const key = JSON.stringify([namespace, [...knative]]);
    const now = Date.now();
    if (t.cached && t.cached.key === key && now - t.cached.at < (options.cacheMs ?? 2_000)) return t.cached.stats;
    const names = [...knative.keys()];
    const samples = names.length ? await query(`${metric}{namespace_name=${literal(namespace)},revision_name=~${literal(names.map(exactly).join('|'))}}`) : [];
    for (const s of samples) {
      const revision = s.metric.revision_name ?? '';
      const le = s.metric.le === '+Inf' ? Number.POSITIVE_INFINITY : Number(s.metric.le);
      const value = Number(s.value?.[1]);
      if (!knative.has(revision) || Number.isNaN(le) || !Number.isFinite(value) || value < 0) continue;
      const id = JSON.stringify(
        Object.entries(s.metric)
          .filter(([k]) => k !== '__name__')
          .sort(([a], [b]) => (a < b ? -1 : 1)),
      );
      const seen = t.series.get(id);
      if (!seen) {
        t.series.set(id, { revision, errors: s.metric.response_code_class === '5xx', le, last: value, carried: 0, baseline: t.primed ? 0 : value });
        continue;
      }
      if (value < seen.last) seen.carried += seen.last; // the pod's counter started again
      seen.last = value;
    }
    t.primed = true;
    // Revisions the deployment no longer holds are forgotten.
    for (const [id, s] of t.series) if (!knative.has(s.revision)) t.series.delete(id);
    const stats = figures(t, knative);
    t.cached = { at: now, key, stats };
    return stats;
  }

  return {
    read,
    forget: (deploymentId: string) => void tracked.delete(deploymentId),
  };
}

/** Each revision's histogram (summed over pods and response codes) as the SDK's non-cumulative buckets. */
function figures(t: Tracked, knative: ReadonlyMap<string, number>): ServingStats {
  const bounds = [...new Set([...t.series.values()].map((s) => s.le).filter(Number.isFinite))].sort((a, b) => a - b);
  const revisions: ServingStats['revisions'] = {};
  for (const [name, number] of knative) {
    const mine = [...t.series.values()].filter((s) => s.revision === name);
    const counted = (s: Series) => s.carried + s.last - s.baseline;
    const cumulative = (le: number) => mine.filter((s) => s.le === le).reduce((sum, s) => sum + counted(s), 0);
    const requests = Math.round(cumulative(Number.POSITIVE_INFINITY));
    if (!mine.length) continue;
    const errors = Math.round(mine.filter((s) => s.errors && s.le === Number.POSITIVE_INFINITY).reduce((sum, s) => sum + counted(s), 0));
    // Cumulative counts at each bound, made monotone (series scraped a moment apart may disagree by a request).
    let below = 0;
    const buckets: number[] = [];
    for (const le of bounds) {
      const upTo = Math.min(requests, Math.max(below, Math.round(cumulative(le))));
      buckets.push(upTo - below);
      below = upTo;
    }
    buckets.push(requests - below);
    revisions[number] = { requests, errors: Math.min(errors, requests), buckets };
  }
  return { epoch: t.epoch, boundsMs: bounds, revisions };
}
