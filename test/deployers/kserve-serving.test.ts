// What a kserve deployment served, read from Prometheus (plugins/deployers/kserve/prometheus.ts): Knative's queue-proxy
// histogram of each revision, scraped from the stand-in's pods by a Prometheus stand-in, becomes the deployment
// status' serving figures, which canary gates and monitors read (server/deployments/serving.ts). Before, a kserve
// deployment had none: a canary gated on serving.error_rate or latency found no data, whatever its model did.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Deployer, Deployment, Revision } from '../../plugins/deployer-sdk';
import { createKServeDeployer } from '../../plugins/deployers/kserve';
import { percentile } from '../../server/deployments/serving';
import { createKubernetesStandIn, type KubernetesStandIn } from '../stand-ins/kubernetes';
import { createPrometheusStandIn, type PrometheusStandIn } from '../stand-ins/prometheus';

const revision = (number: number): Revision => ({
  number,
  modelVersion: { ref: `ml/iris/${number}`, digest: `sha256:iris-${number}`, files: '/nonexistent' },
  serve: { command: ['python3', 'serve.py'] },
});
const fast = { storageUri: 's3://models/{ref}', pollMs: 5, readyTimeoutMs: 10_000, trafficTimeoutMs: 10_000 };

let standIn: KubernetesStandIn;
let prometheus: PrometheusStandIn;
let n = 0;
const deployment = (): Deployment => ({ id: `served-${++n}`, name: `scorer-${n}`, model: 'ml/iris@champion', domain: 'production', settings: {} });
const make = (url = prometheus.url) =>
  createKServeDeployer({ kubeConfig: standIn.kubeConfig(), namespace: 'models', ...fast, prometheus: { url, cacheMs: 0 } });

/** Sends `count` predictions to the deployment's URL; resolves to the statuses answered. */
async function send(url: string, count: number): Promise<number[]> {
  const statuses: number[] = [];
  for (let i = 0; i < count; i++) {
    const r = await fetch(`${url}/v1/models/iris:predict`, { method: 'POST', body: '{"instances":[[5.1,3.5,1.4,0.2]]}' });
    await r.arrayBuffer();
    statuses.push(r.status);
  }
  return statuses;
}

beforeAll(async () => {
  standIn = await createKubernetesStandIn({ namespaces: ['default', 'models'] });
  // Scraped on demand (`scrape()`), as if each test waited one scrape interval.
  prometheus = await createPrometheusStandIn({ targets: () => standIn.kserve.queueProxyMetrics(), scrapeMs: 3_600_000 });
});
afterAll(async () => {
  await prometheus?.close();
  await standIn?.close();
});

describe('kserve serving figures from Prometheus', () => {
  let deployer: Deployer;
  beforeAll(() => {
    deployer = make();
  });
  afterAll(() => deployer.close?.());

  it('counts each revision’s requests, its 5xx answers and its latency in Knative’s buckets, from its first sight on', async () => {
    const d = deployment();
    const before = make();
    await before.apply(d, revision(1));
    await send((await before.status(d.id)).url!, 3);
    prometheus.scrape();
    const counted = (await before.status(d.id)).serving!;
    expect(counted.revisions[1]).toMatchObject({ requests: 3, errors: 0 });
    await before.close?.();
    // A new instance (a control plane started anew) counts from its first sight, in an epoch of its own: the pod's
    // earlier requests are not one window's.
    const first = (await deployer.status(d.id)).serving!;
    expect(first.epoch).not.toBe(counted.epoch);
    expect(first.revisions[1]).toMatchObject({ requests: 0, errors: 0 });

    standIn.kserve.answerWith('s3://models/ml/iris/2', 503);
    await deployer.apply(d, revision(2));
    const split = await deployer.setTraffic(d.id, { 1: 50, 2: 50 });
    const answered = await send(split.url!, 20);
    expect(answered.filter((s) => s === 503)).toHaveLength(10);
    prometheus.scrape();
    const serving = (await deployer.status(d.id)).serving!;
    expect(serving.epoch).toBe(first.epoch);
    expect(serving.revisions[1]).toMatchObject({ requests: 10, errors: 0 });
    expect(serving.revisions[2]).toMatchObject({ requests: 10, errors: 10 });
    expect(serving.boundsMs?.slice(0, 4)).toEqual([5, 10, 20, 40]);
    for (const r of [1, 2]) {
      const c = serving.revisions[r]!;
      expect(c.buckets).toHaveLength(serving.boundsMs!.length + 1);
      expect(c.buckets.reduce((a, b) => a + b, 0)).toBe(c.requests);
      // A percentile is the upper bound of Knative's bucket it falls in.
      expect(serving.boundsMs).toContain(percentile(c.buckets, 0.99, serving));
      expect(percentile(c.buckets, 0.5, serving)).toBeLessThanOrEqual(percentile(c.buckets, 0.99, serving));
    }
    // Only this deployment's namespace and Knative revisions are asked for.
    expect(prometheus.queries.at(-1)).toBe(
      `revision_app_request_latencies_bucket{namespace_name="models",revision_name=~"${d.name}-predictor-00001|${d.name}-predictor-00002"}`,
    );
    await deployer.delete(d.id);
  });

  it('keeps what a pod counted when it is replaced (its series gone, the new pod’s counting from 0)', async () => {
    const d = deployment();
    await deployer.apply(d, revision(1));
    const url = (await deployer.status(d.id)).url!;
    prometheus.scrape();
    await deployer.status(d.id); // first sight
    await send(url, 5);
    prometheus.scrape();
    expect((await deployer.status(d.id)).serving!.revisions[1]!.requests).toBe(5);
    standIn.kserve.restartPod(`${d.name}-predictor-00001`);
    await send(url, 3);
    prometheus.scrape();
    expect((await deployer.status(d.id)).serving!.revisions[1]!.requests).toBe(8);
    await deployer.delete(d.id);
  });
});

it('answers status without figures, saying why, while Prometheus cannot be read; never showing its credentials', async () => {
  const deployer = make(prometheus.url.replace('http://', 'http://ops:hunter2@'));
  const d = deployment();
  try {
    await deployer.apply(d, revision(1));
    prometheus.down();
    const status = await deployer.status(d.id);
    expect(status).toMatchObject({ ready: true, traffic: { 1: 100 } });
    expect(status.serving).toBeUndefined();
    expect(status.message).toMatch(/no serving figures: Prometheus at http:\/\/127\.0\.0\.1:\d+ refused the query \(503/);
    expect(status.message).not.toContain('hunter2');
    prometheus.up();
    const back = await deployer.status(d.id);
    // Figures again (a revision that has served nothing has no series yet, so none of its own).
    expect(back.serving, back.message).toMatchObject({ epoch: expect.any(String), revisions: {} });
  } finally {
    prometheus.up();
    await deployer.delete(d.id);
    await deployer.close?.();
  }
});

it('says so when nothing listens where Prometheus should be', async () => {
  const deployer = make('http://127.0.0.1:1');
  const d = deployment();
  try {
    const status = await deployer.apply(d, revision(1));
    expect(status.ready).toBe(true);
    expect(status.message).toContain('no serving figures: Prometheus at http://127.0.0.1:1 did not answer');
  } finally {
    await deployer.delete(d.id);
    await deployer.close?.();
  }
});
