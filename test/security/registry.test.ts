// The model registry under attack: self-approval, approval without the production grant, a PII-derived model to
// production, an alias on a deprecated version, registering from a task the caller may not read, and writing into
// another team’s namespace, and reading the lineage (run data) of a version without its run’s domain. Each is refused with a typed error, writes nothing, and is audited.
import { count } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { modelAliasEvents, modelPromotions, modelVersions, registeredModels, registryEvents } from '../../server/db/tables/registry';
import { startTestApp, type TestApp } from '../harness/app';
import type { ApiClient } from '../harness/client';
import { REGISTER, runToEnd, setUpRegistryWorld } from '../registry/setup';

let t: TestApp;
let alice: ApiClient;
let bob: ApiClient;
let carol: ApiClient;
let lab: Awaited<ReturnType<typeof runToEnd>>;
let pii: Awaited<ReturnType<typeof runToEnd>>;
let pending = '';
const code = (r: any) => r.errors?.[0]?.extensions?.code;

/** Rows of every registry table: a refusal leaves them all as they were. */
async function written() {
  const db = t.app.services.db;
  const n = async (table: any) => (await db.select({ n: count() }).from(table))[0]!.n;
  return [await n(registeredModels), await n(modelVersions), await n(modelAliasEvents), await n(modelPromotions), await n(registryEvents)];
}

async function denials(name: string, action: string) {
  const { auditEvents } = await t.api.gql(`{ auditEvents(limit: 1000) { action decision subject rule identity { name } } }`);
  return auditEvents.filter((e: any) => e.decision === 'deny' && e.identity?.name === name && e.action === action);
}

/** Runs `attempt`, expects `errorCode`, nothing written, and one more audited denial of `action` by `who`. */
async function refused(who: string, action: string, errorCode: string, attempt: () => Promise<any>) {
  const before = await written();
  const audited = (await denials(who, action)).length;
  const result = await attempt();
  expect(code(result)).toBe(errorCode);
  expect(await written()).toEqual(before);
  expect((await denials(who, action)).length).toBe(audited + 1);
  return result.errors[0].message as string;
}

beforeAll(async () => {
  t = await startTestApp();
  ({ alice, bob, carol } = await setUpRegistryWorld(t));
  lab = await runToEnd(t, 'train', { seed: 1 });
  pii = await runToEnd(t, 'train-pii', { seed: 1 });
  await alice.gql(REGISTER, { m: 'ml/churn', t: lab.task.train!.id, o: 'model' });
  await alice.gql(REGISTER, { m: 'ml/churn-pii', t: pii.task.train!.id, o: 'model' });
  const { requestModelPromotion } = await alice.gql(
    `mutation { requestModelPromotion(model: "ml/churn", version: "1", alias: "champion", reason: "ready") { id } }`,
  );
  pending = requestModelPromotion.id;
}, 120_000);

afterAll(() => t?.stop());

describe('promotion', () => {
  const decide = (who: ApiClient) => who.raw(`mutation ($id: ID!) { decideModelPromotion(id: $id, approve: true) { state } }`, { id: pending });

  it('refuses self-approval', async () => {
    const message = await refused('alice', 'model.promotion.decide', 'FORBIDDEN', () => decide(alice));
    expect(message).toMatch(/someone else must decide/);
  });

  it('refuses an approver without the production grant', async () => {
    const message = await refused('carol', 'model.promotion.decide', 'FORBIDDEN', () => decide(carol));
    expect(message).toMatch(/needs the production grant/);
    expect((await bob.gql(`{ modelPromotions { id state } }`)).modelPromotions).toEqual([{ id: pending, state: 'PENDING' }]);
  });

  it('refuses a PII-derived model to production, naming the columns', async () => {
    const { modelVersion } = await alice.gql(`{ modelVersion(ref: "ml/churn-pii@1") { label { level categories } } }`);
    expect(modelVersion.label).toEqual({ level: 'RESTRICTED', categories: ['PII'] });
    const message = await refused('alice', 'model.promotion.request', 'FORBIDDEN', () =>
      alice.raw(`mutation { requestModelPromotion(model: "ml/churn-pii", version: "1", alias: "champion", reason: "ship") { id } }`),
    );
    expect(message).toMatch(/crm\/users\.email \(RESTRICTED\{PII\}\)/);
    expect(message).not.toMatch(/crm\/users\.id/);
  });
});

describe('aliases and registration', () => {
  it('refuses an alias on a deprecated version', async () => {
    await alice.gql(`mutation { deprecateModelVersion(ref: "ml/churn@1", reason: "bad split") { deprecated } }`);
    const message = await refused('alice', 'model.alias.move', 'CONFLICT', () =>
      alice.raw(`mutation { setModelAlias(model: "ml/churn", alias: "challenger", version: "1") { alias } }`),
    );
    expect(message).toMatch(/deprecated \(bad split\)/);
    // The pending promotion of that version cannot be approved either.
    await refused('bob', 'model.promotion.decide', 'CONFLICT', () =>
      bob.raw(`mutation ($id: ID!) { decideModelPromotion(id: $id, approve: true) { state } }`, { id: pending }),
    );
  });

  it('answers a task the caller may not read exactly like a missing one', async () => {
    const unreadable = await refused('carol', 'model.register', 'NOT_FOUND', () => carol.raw(REGISTER, { m: 'lab/copy', t: pii.task.train!.id, o: 'model' }));
    const missing = await carol.raw(REGISTER, { m: 'lab/copy', t: '00000000-0000-4000-8000-000000000001', o: 'model' });
    expect(missing.errors?.[0]?.message.replace(/[0-9a-f-]{36}/, 'ID')).toBe(unreadable.replace(/[0-9a-f-]{36}/, 'ID'));
  });

  it('refuses registering into another team’s namespace', async () => {
    const message = await refused('carol', 'model.register', 'FORBIDDEN', () => carol.raw(REGISTER, { m: 'ml/stolen', t: lab.task.train!.id, o: 'model' }));
    expect(message).toMatch(/team "ml"/);
    await refused('carol', 'model.alias.move', 'FORBIDDEN', () =>
      carol.raw(`mutation { setModelAlias(model: "ml/churn", alias: "mine", version: "1") { alias } }`),
    );
  });

  it('keeps a version’s lineage (run data) from a caller without its run’s domain, and audits the read', async () => {
    const before = (await t.api.gql(`{ auditEvents(limit: 1000) { action decision identity { name } } }`)).auditEvents.filter(
      (e: any) => e.action === 'data.read' && e.identity?.name === 'carol',
    ).length;
    const r = await carol.raw(`{ modelVersion(ref: "ml/churn-pii@1") { version lineage { cacheKey parameters } metrics { name } } }`);
    expect(r.data?.modelVersion).toEqual({ version: 1, lineage: null, metrics: null });
    expect(code(r)).toBe('FORBIDDEN');
    const after = (await t.api.gql(`{ auditEvents(limit: 1000) { action decision identity { name } } }`)).auditEvents.filter(
      (e: any) => e.action === 'data.read' && e.identity?.name === 'carol',
    ).length;
    expect(after).toBeGreaterThan(before);
  });
});
