// Deployment faults and refusals on the embedded app with the real local deployer: a server never healthy never takes
// traffic (the old revision serves on); production without an approved version is refused, audited, nothing written.
import { and, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditEvents } from '../../server/db/tables/governance';
import type { TestApp } from '../harness/app';
import { runCli, showCli } from '../harness/cli';
import type { ApiClient } from '../harness/client';
import { CREATE_DEPLOYMENT, DEPLOYMENT, deploymentSteps, deploymentWorld, endDeploymentWorld, predict, splitOf, until } from './setup';

let t: TestApp;
let alice: ApiClient;
const { alias: ALIAS, show, serving } = deploymentSteps(() => alice);
const CREATE = CREATE_DEPLOYMENT;
const split = splitOf;

beforeAll(async () => {
  ({ t, alice } = await deploymentWorld(1000));
}, 60_000);

afterAll(async () => {
  if (t) await endDeploymentWorld(t);
});

describe('faults and refusals', () => {
  it('a server never healthy never takes traffic: FAILED by the deployer’s startup check, the old revision serving', async () => {
    await alice.gql(CREATE, {
      i: { name: 'iris-stuck', model: 'ml/iris@stuck', domain: 'experimentation', rollout: { steps: [{ percent: 100 }], readyTimeoutSeconds: 1 } },
    });
    await serving('iris-stuck', 1);
    await ALIAS('stuck', 4);
    const d = await until('the stuck revision ended', async () => {
      const x = await show('iris-stuck');
      return ['FAILED', 'ROLLED_BACK'].includes(x.revisions.find((r: any) => r.number === 2)?.state) && x;
    });
    expect(d.revisions[1].message).toMatch(/did not answer GET \/health|not ready within 1 s/);
    expect(split(d)).toEqual({ 1: 100 });
    expect(await predict(d.url)).toEqual({ revision: '1', version: 'ml/iris/1' });
  });

  it('production without an approved version is refused, audited, and nothing is written', async () => {
    await t.api.gql(`mutation { grantDomain(team: "ml", domain: production) { id } }`);
    const r = await alice.raw(CREATE, { i: { name: 'iris-prod', model: 'ml/iris@champion', domain: 'production' } });
    expect(r.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(r.errors?.[0]?.message).toContain('no approved promotion');
    expect((await alice.gql(DEPLOYMENT, { n: 'iris-prod' })).deployment).toBeNull();
    const denied = await t.app.services.db
      .select()
      .from(auditEvents)
      .where(and(eq(auditEvents.action, 'deployment.create'), eq(auditEvents.decision, 'deny')));
    expect(denied.map((e) => e.subject)).toContain('deployment:iris-prod');
  });

  it('the CLI lists and shows deployments as tables, and fails over by name', async () => {
    const target = { url: t.url, token: t.app.adminToken };
    const list = await runCli(target, ['deploy', 'list']);
    expect(list.code, showCli(list)).toBe(0);
    expect(list.stdout).toMatch(/NAME\s+MODEL\s+DOMAIN/);
    expect(list.stdout).toMatch(/iris-stuck\s+ml\/iris@stuck\s+experimentation\s+local\s+yes\s+r1 100%/);
    const show = await runCli(target, ['deploy', 'show', 'iris-stuck']);
    expect(show.stdout).toContain('traffic  r1 100%');
    expect(show.stdout).toMatch(/2\s+4\s+FAILED/);
    const refused = await runCli(target, ['deploy', 'failover', 'iris-stuck']);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('--reason');
  });
});
