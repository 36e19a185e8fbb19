// Serving observations: the local deployer's router measures each revision's traffic (requests, errors, latency) and
// the reconciler records it as observations of the revisions' model versions (server/deployments/serving.ts), so a
// canary gated on serving.error_rate rolls a broken model back with no observation sent by anyone, and a healthy one
// through; the figures are there for monitors and charts too.
import { and, eq, like } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { observations } from '../../server/db/tables/monitoring';
import type { TestApp } from '../harness/app';
import type { ApiClient } from '../harness/client';
import { CREATE_DEPLOYMENT, deploymentSteps, deploymentWorld, endDeploymentWorld, IRIS_SERVE, irisVersion, splitOf, until } from './setup';

let t: TestApp;
let alice: ApiClient;
const { alias, serving, atSplit } = deploymentSteps(() => alice);

beforeAll(async () => {
  ({ t, alice } = await deploymentWorld(undefined, { ATELIER_DEPLOYMENT_STATS_MS: '300' }));
  // Version 9: healthy, but every prediction fails.
  await irisVersion(t, 9, { command: [...IRIS_SERVE.command, '--fail-predictions'] });
  await alias('canary', 1);
}, 60_000);

afterAll(async () => {
  if (t) await endDeploymentWorld(t);
});

/** Predictions sent one after another until `stop` is called. */
function traffic(url: string) {
  let on = true;
  const sent = (async () => {
    let n = 0;
    while (on) {
      await fetch(`${url}/predict`, { method: 'POST', body: JSON.stringify({ features: [5.1, 3.5, 1.4, 0.2] }) })
        .then((r) => r.arrayBuffer())
        .catch(() => undefined);
      n++;
    }
    return n;
  })();
  return async () => {
    on = false;
    return sent;
  };
}

const servingRows = (version: number) =>
  t.app.services.db
    .select()
    .from(observations)
    .where(and(like(observations.metric, 'serving.%'), eq(observations.versionId, versionIds.get(version)!)));
const versionIds = new Map<number, string>();

describe('a canary gated on what its router measured', () => {
  it('records each revision’s requests, error rate and latency as observations of its model version', async () => {
    await alice.gql(CREATE_DEPLOYMENT, {
      i: {
        name: 'iris-canary',
        model: 'ml/iris@canary',
        domain: 'experimentation',
        rollout: {
          steps: [
            { percent: 50, dwellSeconds: 2 },
            { percent: 100, dwellSeconds: 0 },
          ],
          gates: [{ metric: 'serving.error_rate', rule: { kind: 'THRESHOLD', above: 0.2 } }],
          readyTimeoutSeconds: 10,
        },
      },
    });
    const first = await serving('iris-canary', 1);
    const { model } = await alice.gql(`{ model(name: "ml/iris") { versions { id version } } }`);
    for (const v of model.versions) versionIds.set(v.version, v.id);
    const stop = traffic(first.url);
    const rows = await until('serving observations of version 1', async () => {
      const found = await servingRows(1);
      return new Set(found.map((o) => o.metric)).size === 4 && found;
    });
    await stop();
    const byMetric = Object.fromEntries(rows.map((o) => [o.metric, o]));
    expect(byMetric['serving.requests']!.value).toBeGreaterThan(0);
    expect(byMetric['serving.error_rate']!.value).toBe(0);
    expect(byMetric['serving.latency_p50_ms']!.value).toBeGreaterThan(0);
    expect(byMetric['serving.latency_p99_ms']!.value).toBeGreaterThanOrEqual(byMetric['serving.latency_p50_ms']!.value);
    // The deployment follows ml/iris@canary: what it served is the alias's, as its monitors read it (gates: the version).
    expect(byMetric['serving.requests']).toMatchObject({ targetKind: 'ALIAS', alias: 'canary', dimensions: { deployment: 'iris-canary', revision: '1' } });
    const { metricSeries } = await alice.gql(
      `{ metricSeries(target: { kind: ALIAS, ref: "ml/iris@canary" }, metric: "serving.requests", groupBy: ["revision"]) { key buckets { count } } }`,
    );
    expect(metricSeries).toEqual([{ key: { revision: '1' }, buckets: expect.arrayContaining([expect.objectContaining({ count: expect.any(Number) })]) }]);
  });

  it('rolls back by itself a version whose predictions fail, with no observation sent by anyone', async () => {
    await alias('canary', 9);
    const half = await atSplit('iris-canary', { 1: 50, 2: 50 });
    const stop = traffic(half.url);
    const back = await serving('iris-canary', 1, 'ROLLED_BACK');
    await stop();
    expect(back.rollout).toMatchObject({ revision: 2, state: 'ROLLED_BACK', reason: expect.stringContaining('serving.error_rate') });
    expect(back.rollout.gates).toMatchObject([{ metric: 'serving.error_rate', status: 'BREACH', value: 1 }]);
    expect(splitOf(back)).toEqual({ 1: 100 });
    expect((await servingRows(9)).some((o) => o.metric === 'serving.error_rate' && o.value === 1)).toBe(true);
  });

  it('takes a healthy version through every step', async () => {
    await alias('canary', 2);
    const half = await atSplit('iris-canary', { 1: 50, 3: 50 });
    const stop = traffic(half.url);
    const done = await serving('iris-canary', 3, 'COMPLETE');
    await stop();
    expect(done.rollout.gates).toMatchObject([{ metric: 'serving.error_rate', status: 'PASS', value: 0 }]);
  });
});
