// Deployments' refusals: a viewer is refused every deployment mutation, audited, before anything is looked up; a
// member of another team is told another team's deployment does not exist (queries and mutations alike), and a member
// without the production grant is refused a production deployment.
import { and, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deployments } from '../../server/db/tables/deployments';
import { auditEvents } from '../../server/db/tables/governance';
import { identities } from '../../server/db/tables/identities';
import { irisVersion, startDeploymentApp, until } from '../deployments/setup';
import type { TestApp } from '../harness/app';
import type { ApiClient } from '../harness/client';

let t: TestApp;
let alice: ApiClient;
let carol: ApiClient;
let vera: ApiClient;
const CREATE = `mutation ($i: CreateDeploymentInput!) { createDeployment(input: $i) { id name } }`;

beforeAll(async () => {
  t = await startDeploymentApp();
  alice = await t.user('alice');
  carol = await t.user('carol');
  vera = await t.user('vera', 'viewer');
  await t.team('ml', ['alice'], ['ml']);
  await t.team('lab', ['carol'], ['lab']);
  await irisVersion(t, 1);
  await alice.gql(CREATE, { i: { name: 'iris-ml', model: 'ml/iris/1', domain: 'experimentation' } });
}, 60_000);

afterAll(async () => {
  await t.api.gql(`mutation { deleteDeployment(id: "iris-ml") }`);
  await until('the deployment deleted', async () => (await t.app.services.db.select().from(deployments)).length === 0);
  await t.stop();
});

const MUTATIONS: [string, string][] = [
  ['createDeployment', `mutation { createDeployment(input: { name: "x", model: "ml/iris/1", domain: "experimentation" }) { id } }`],
  ['deleteDeployment', `mutation { deleteDeployment(id: "iris-ml") }`],
  ['promoteDeployment', `mutation { promoteDeployment(id: "iris-ml") { id } }`],
  ['rollbackDeployment', `mutation { rollbackDeployment(id: "iris-ml") { id } }`],
  ['failoverDeployment', `mutation { failoverDeployment(id: "iris-ml", reason: "x") { id } }`],
  ['restoreDeployment', `mutation { restoreDeployment(id: "iris-ml") { id } }`],
];

describe('deployment refusals', () => {
  it('a viewer is refused every mutation, each audited', async () => {
    const [who] = await t.app.services.db.select().from(identities).where(eq(identities.name, 'vera'));
    for (const [name, mutation] of MUTATIONS) {
      const before = await t.app.services.db
        .select()
        .from(auditEvents)
        .where(and(eq(auditEvents.identityId, who!.id), eq(auditEvents.decision, 'deny')));
      const r = await vera.raw(mutation);
      expect(r.errors?.[0]?.extensions?.code, name).toBe('FORBIDDEN');
      const after = await t.app.services.db
        .select()
        .from(auditEvents)
        .where(and(eq(auditEvents.identityId, who!.id), eq(auditEvents.decision, 'deny')));
      expect(after.length, name).toBe(before.length + 1);
    }
  });

  it('another team’s deployment answers as missing', async () => {
    expect((await carol.gql(`{ deployment(name: "iris-ml") { id } }`)).deployment).toBeNull();
    expect((await carol.gql(`{ deployments(first: 10) { name } }`)).deployments).toEqual([]);
    expect((await alice.gql(`{ deployments(first: 10) { name } }`)).deployments).toEqual([{ name: 'iris-ml' }]);
    for (const [name, mutation] of MUTATIONS.slice(1)) {
      const r = await carol.raw(mutation);
      expect(r.errors?.[0]?.extensions?.code, name).toBe('NOT_FOUND');
      expect(r.errors?.[0]?.message, name).toContain('No deployment "iris-ml"');
    }
  });

  it('a production deployment needs the production grant', async () => {
    const r = await alice.raw(CREATE, { i: { name: 'iris-prod', model: 'ml/iris/1', domain: 'production' } });
    expect(r.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(r.errors?.[0]?.message).toContain('production grant');
  });
});
