// Serving observations as an attacker sees them: `serving.*` figures are what a deployment's router measured, and a
// rollout's gates judge a canary by them. A writer of the model's namespace (who may lack the deployment's domain
// grant) cannot record one through the API, and a gate reads only what its own deployment's router measured of the
// revision: the same version served by another deployment (another domain's, whose traffic anyone may send) or a
// figure somebody recorded counts for nothing.
import { eq, like } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deployments } from '../../server/db/tables/deployments';
import { identities } from '../../server/db/tables/identities';
import { observations } from '../../server/db/tables/monitoring';
import { registeredModels } from '../../server/db/tables/registry';
import { measureGates } from '../../server/deployments/gates';
import { lastServingWindow } from '../../server/deployments/serving';
import { checkPolicy } from '../../server/deployments/spec';
import { irisVersion } from '../deployments/setup';
import { startTestApp, type TestApp } from '../harness/app';
import type { ApiClient } from '../harness/client';

let t: TestApp;
let alice: ApiClient & { token: string };
let v1: string;
let v2: string;
const RECORD = `mutation ($o: [ObservationInput!]!) { recordObservations(observations: $o) { recorded } }`;

beforeAll(async () => {
  t = await startTestApp();
  alice = await t.user('alice');
  await t.team('ml', ['alice'], ['ml']);
  v1 = await irisVersion(t, 1);
  v2 = await irisVersion(t, 2);
}, 60_000);
afterAll(async () => t?.stop());

const servingRows = () => t.app.services.db.select().from(observations).where(like(observations.metric, 'serving.%'));

describe('serving observations', () => {
  it('are recorded by nobody through the API (mutation or POST /api/observations, a writer or an admin), writing nothing', async () => {
    const forged = (metric: string) => ({
      target: { kind: 'MODEL_VERSION', ref: 'ml/iris@2' },
      metric,
      value: 0,
      dimensions: { deployment: 'iris', revision: 3 },
    });
    for (const client of [alice, t.api]) {
      const r = await client.raw(RECORD, { o: [forged('serving.error_rate')] });
      expect(r.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
      expect(r.errors?.[0]?.message).toContain('observations.0.metric "serving.error_rate": serving.* metrics are measured by deployments\' routers');
    }
    const alias = await alice.raw(RECORD, { o: [{ ...forged('serving.requests'), target: { kind: 'ALIAS', ref: 'ml/iris@champion' } }] });
    expect(alias.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    const res = await fetch(`${t.url}/api/observations`, {
      method: 'POST',
      headers: { authorization: `Bearer ${alice.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ observations: [forged('app.error_rate'), forged('serving.latency_p99_ms')] }),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as any).error).toMatchObject({ code: 'BAD_USER_INPUT', message: expect.stringContaining('observations.1.metric') });
    expect(await servingRows()).toEqual([]);
    // Figures of one's own under another name are taken as before.
    expect((await alice.gql(RECORD, { o: [forged('app.error_rate')] })).recordObservations.recorded).toBe(1);
  });

  it("count in a rollout's gate only as its own deployment's router measured them for that revision", async () => {
    const db = t.app.services.db;
    const [me] = await db.select().from(identities).where(eq(identities.name, 'alice'));
    const now = new Date();
    const since = new Date(now.getTime() - 60_000);
    const at = new Date(now.getTime() - 1_000);
    const row = (versionId: string, deployment: string, revision: number, value: number, recordedBy: string | null = null) => ({
      targetKind: 'MODEL_VERSION' as const,
      targetId: versionId,
      versionId,
      metric: 'serving.error_rate',
      value,
      at,
      dimensions: { deployment, revision: String(revision) },
      recordedBy,
    });
    await db.insert(observations).values([
      // What the canary's own router measured: no errors.
      row(v2, 'iris', 3, 0),
      // The same version in another deployment (say experimentation, where the attacker sends failing requests).
      row(v2, 'iris-lab', 1, 1),
      row(v2, 'iris-lab', 1, 1),
      // A figure a person recorded before such names were refused, dressed as the canary's.
      row(v2, 'iris', 3, 1, me!.id),
      // The revision it replaces, measured by the same router.
      row(v1, 'iris', 2, 0),
    ]);
    const { gates } = checkPolicy({
      steps: [{ percent: 50 }, { percent: 100 }],
      gates: [
        { metric: 'serving.error_rate', rule: { kind: 'THRESHOLD', above: 0.5 } },
        { metric: 'serving.error_rate', rule: { kind: 'REGRESSION', baseline: 'TRAILING', maxDrop: 0.2, higherIsBetter: false } },
      ],
    });
    const input = { deployment: 'iris', newRevision: 3, oldRevision: 2, newVersionId: v2, oldVersionId: v1, since, now, step: 0 };
    const verdict = await measureGates(db, gates, input);
    expect(verdict.breach).toBeNull();
    expect(verdict.results).toMatchObject([
      { status: 'PASS', value: 0 },
      { status: 'PASS', value: 0, baseline: 0 },
    ]);
    // Another deployment's revision of the same version has no data of the canary's own.
    const elsewhere = await measureGates(db, gates, { ...input, deployment: 'iris-prod' });
    expect(elsewhere.missing).toEqual(['serving.error_rate', 'serving.error_rate']);
    // The revision's figures shown beside it (DeploymentRevision.serving) leave the recorded one out as well.
    await db.insert(observations).values([{ ...row(v2, 'iris', 3, 5), metric: 'serving.requests' }]);
    await db.insert(observations).values([{ ...row(v2, 'iris', 3, 999, me!.id), metric: 'serving.requests', at: now }]);
    const [model] = await db.select().from(registeredModels).where(eq(registeredModels.name, 'iris'));
    const [deployment] = await db
      .insert(deployments)
      .values({
        name: 'iris',
        modelId: model!.id,
        pinnedVersionId: v2,
        domain: 'production',
        deployer: 'elsewhere',
        policy: checkPolicy({}),
        fallback: { kind: 'PREVIOUS' },
      })
      .returning();
    expect(await lastServingWindow(db, deployment!.id, 3, v2)).toMatchObject({ requests: 5, errorRate: 0 });
  });
});
