// The model registry end to end on the real server and local executor: a version registered from a real run's task
// output, idempotent re-registration (and a cache-hit retrain registering nothing new), lineage both ways, labels
// that follow the current column labels, aliases with history, rollback and deprecation, and a production promotion
// asked by one person and approved by another holding the production grant.
import { asc } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { registryEvents } from '../../server/db/tables/registry';
import { startTestApp, type TestApp } from '../harness/app';
import { runCli } from '../harness/cli';
import type { ApiClient } from '../harness/client';
import { type Receiver, readmeVerifier, startReceiver, until } from '../webhooks/receiver';
import { REGISTER, runToEnd, setUpRegistryWorld } from './setup';

let t: TestApp;
let alice: ApiClient & { token: string };
let bob: ApiClient;
let first: Awaited<ReturnType<typeof runToEnd>>;
let v1 = '';
const code = (r: any) => r.errors?.[0]?.extensions?.code;
const VERSION = `query ($r: String!) { modelVersion(ref: $r) { version digest label { level categories } aliases { alias } deprecated
  lineage { task { node } run { id } moduleVersions { ref } datasets { name version columns { name label { level } } } parameters metrics { name value } cacheKey } } }`;

let receiver: Receiver;
let hook: { secret: string };

beforeAll(async () => {
  receiver = await startReceiver();
  t = await startTestApp({ ATELIER_WEBHOOK_ALLOWLIST: 'http://127.0.0.1:*', ATELIER_WEBHOOK_POLL_MS: '100' });
  ({ alice, bob } = await setUpRegistryWorld(t));
  // The owning team's webhook hears of every registry change; lab's (another team) of none of ml's.
  const CREATE = `mutation ($team: String!, $url: String!) { createWebhook(team: $team, url: $url, events: ["model.*"]) { secret } }`;
  hook = (await alice.gql(CREATE, { team: 'ml', url: `${receiver.url}/ml` })).createWebhook;
  await t.api.gql(CREATE, { team: 'lab', url: `${receiver.url}/lab` });
  first = await runToEnd(t, 'train', { seed: 1 });
}, 120_000);

afterAll(async () => {
  await t?.stop();
  await receiver?.close();
});

it('registers a version from a task output, and the same content again is the same version', async () => {
  const reg = await alice.gql(REGISTER, {
    m: 'ml/churn',
    t: first.task.train!.id,
    o: 'model',
    f: 'sklearn',
    s: { inputs: [{ name: 'x', type: 'double' }] },
    md: { note: 'first' },
  });
  expect(reg.registerModelVersion).toMatchObject({ created: true, version: { version: 1, ref: 'ml/churn@1' } });
  v1 = reg.registerModelVersion.version.digest;
  expect(v1).toMatch(/^sha256:/);
  const again = await alice.gql(REGISTER, { m: 'ml/churn', t: first.task.train!.id, o: 'model' });
  expect(again.registerModelVersion).toMatchObject({ created: false, version: { version: 1 } });
  // Retraining with identical inputs is a cache hit: its output is the same content, so nothing new is registered.
  const retrain = await runToEnd(t, 'train', { seed: 1 });
  expect(retrain.task.train!.cacheHit).toBeTruthy();
  const cached = await alice.gql(REGISTER, { m: 'ml/churn', t: retrain.task.train!.id, o: 'model' });
  expect(cached.registerModelVersion).toMatchObject({ created: false, version: { version: 1 } });
  const other = await runToEnd(t, 'train', { seed: 2 });
  const v2 = await alice.gql(REGISTER, { m: 'ml/churn', t: other.task.train!.id, o: 'model' });
  expect(v2.registerModelVersion).toMatchObject({ created: true, version: { version: 2 } });
  const missing = await alice.raw(REGISTER, { m: 'ml/churn', t: first.task.train!.id, o: 'nope' });
  expect(code(missing)).toBe('NOT_FOUND');
  expect(missing.errors?.[0]?.message).toMatch(/its outputs: model/);
  const { model } = await alice.gql(
    `{ model(name: "ml/churn") { fullName owner { name } versions { version flavor files { path size } signature metadata } } }`,
  );
  expect(model.owner.name).toBe('ml');
  expect(model.versions.map((v: any) => v.version)).toEqual([2, 1]);
  expect(model.versions[1]).toMatchObject({ flavor: 'sklearn', files: [{ path: 'model.json' }], metadata: { note: 'first' } });
});

it('answers lineage both ways: version to task, run, modules, datasets and columns (through upstream tasks), params, metrics, cache key', async () => {
  const { modelVersion } = await alice.gql(VERSION, { r: 'ml/churn@1' });
  const l = modelVersion.lineage;
  expect(l.task.node).toBe('train');
  expect(l.run.id).toBe(first.id);
  expect(l.moduleVersions.map((m: any) => m.ref.split('@')[0]).sort()).toEqual(['ml/prep', 'ml/train']);
  expect(l.datasets).toEqual([
    {
      name: 'crm/users',
      version: 1,
      columns: [
        { name: 'country', label: { level: 'PUBLIC' } },
        { name: 'id', label: { level: 'INTERNAL' } },
      ],
    },
  ]);
  expect(l.parameters).toMatchObject({ seed: 1 });
  expect(l.metrics).toEqual([{ name: 'accuracy', value: 0.95 }]);
  expect(l.cacheKey).toBeTruthy();
  const { dataset } = await alice.gql(`{ dataset(name: "crm/users") { versions { version models { ref } } } }`);
  expect(dataset.versions[0].models.map((m: any) => m.ref)).toEqual(['ml/churn@1', 'ml/churn@2']);
});

it('labels a version with the join of its columns’ current labels: raising a source column raises the model (it stays raised: lowering is a declassification)', async () => {
  expect((await alice.gql(VERSION, { r: 'ml/churn@1' })).modelVersion.label).toEqual({ level: 'INTERNAL', categories: [] });
  await t.api.gql(
    `mutation { setColumnLabel(dataset: "crm/users", column: "country", label: { level: CONFIDENTIAL, categories: ["CUSTOMER_DATA"] }) { level } }`,
  );
  expect((await alice.gql(VERSION, { r: 'ml/churn@1' })).modelVersion.label).toEqual({ level: 'CONFIDENTIAL', categories: ['CUSTOMER_DATA'] });
});

it('moves aliases with history, rolls back as a stack, and keeps aliases off deprecated versions', async () => {
  const set = (alias: string, version: string) =>
    alice.gql(
      `mutation ($a: String!, $v: String!) { setModelAlias(model: "ml/churn", alias: $a, version: $v, reason: "eval") { version { version } previous { version } } }`,
      {
        a: alias,
        v: version,
      },
    );
  expect((await set('challenger', '1')).setModelAlias).toEqual({ version: { version: 1 }, previous: null });
  expect((await set('challenger', '2')).setModelAlias).toEqual({ version: { version: 2 }, previous: { version: 1 } });
  const rollback = () => alice.raw(`mutation { rollbackModelAlias(model: "ml/churn", alias: "challenger") { version { version } } }`);
  expect((await rollback()).data.rollbackModelAlias.version.version).toBe(1);
  expect(code(await rollback())).toBe('CONFLICT'); // the stack is empty: the first move had no earlier version
  const { model } = await alice.gql(
    `{ model(name: "ml/churn") { aliases { alias domain version { version } } aliasHistory { alias action from { version } to { version } movedBy { name } reason } } }`,
  );
  expect(model.aliases).toEqual([{ alias: 'challenger', domain: 'experimentation', version: { version: 1 } }]);
  expect(model.aliasHistory.map((e: any) => [e.action, e.from?.version ?? null, e.to.version, e.movedBy.name])).toEqual([
    ['rollback', 2, 1, 'alice'],
    ['move', 1, 2, 'alice'],
    ['move', null, 1, 'alice'],
  ]);
  await alice.gql(`mutation { deprecateModelVersion(ref: "ml/churn@2", reason: "leaky") { deprecated } }`);
  const refused = await alice.raw(`mutation { setModelAlias(model: "ml/churn", alias: "challenger", version: "2") { version { version } } }`);
  expect(code(refused)).toBe('CONFLICT');
  expect(refused.errors?.[0]?.message).toMatch(/deprecated \(leaky\)/);
  await alice.gql(`mutation { deprecateModelVersion(ref: "ml/churn@2", deprecated: false) { deprecated } }`);
  // a promotion of an experimentation alias is refused, saying how to move it instead (API and CLI alike)
  const promoted = await alice.raw(`mutation { requestModelPromotion(model: "ml/churn", version: "2", alias: "challenger", reason: "r") { id } }`);
  expect(code(promoted)).toBe('BAD_USER_INPUT');
  expect(promoted.errors?.[0]?.message).toContain('move this one directly (setModelAlias; `atelier model alias ml/churn challenger 2`)');
});

it('promotes to production only through a request approved by another person holding the grant', async () => {
  await alice.gql(`mutation { saveModel(name: "ml/churn", requirements: [{ metric: "accuracy", min: 0.9 }]) { requirements { metric min } } }`);
  const direct = await alice.raw(`mutation { setModelAlias(model: "ml/churn", alias: "champion", version: "1", domain: production) { alias } }`);
  expect(code(direct)).toBe('FORBIDDEN');
  const { requestModelPromotion: request } = await alice.gql(
    `mutation { requestModelPromotion(model: "ml/churn", version: "1", alias: "champion", reason: "beats baseline") { id state requestedBy { name } } }`,
  );
  expect(request).toMatchObject({ state: 'PENDING', requestedBy: { name: 'alice' } });
  const pending = await bob.gql(`{ modelPromotions { id alias version { ref } } }`);
  expect(pending.modelPromotions).toEqual([{ id: request.id, alias: 'champion', version: { ref: 'ml/churn@1' } }]);
  const decided = await bob.gql(`mutation ($id: ID!) { decideModelPromotion(id: $id, approve: true, reason: "ok") { state decidedBy { name } } }`, {
    id: request.id,
  });
  expect(decided.decideModelPromotion).toEqual({ state: 'APPROVED', decidedBy: { name: 'bob' } });
  const { modelVersion } = await alice.gql(`{ modelVersion(ref: "ml/churn@champion") { version aliases { alias domain } } }`);
  expect(modelVersion).toEqual({
    version: 1,
    aliases: [
      { alias: 'challenger', domain: 'experimentation' },
      { alias: 'champion', domain: 'production' },
    ],
  });
  // A rejected request moves nothing.
  const { requestModelPromotion: second } = await alice.gql(
    `mutation { requestModelPromotion(model: "ml/churn", version: "2", alias: "champion", reason: "newer") { id } }`,
  );
  await bob.gql(`mutation ($id: ID!) { decideModelPromotion(id: $id, approve: false, reason: "not yet") { state } }`, { id: second.id });
  expect((await alice.gql(`{ modelVersion(ref: "ml/churn@champion") { version } }`)).modelVersion.version).toBe(1);
  // Requirements the model declares hold the version back.
  await alice.gql(`mutation { saveModel(name: "ml/churn", requirements: [{ metric: "accuracy", min: 0.99 }]) { id } }`);
  const low = await alice.raw(`mutation { requestModelPromotion(model: "ml/churn", version: "2", alias: "champion", reason: "try") { id } }`);
  expect(code(low)).toBe('FORBIDDEN');
  expect(low.errors?.[0]?.message).toMatch(
    /accuracy is 0.95, below 0.99\. Promote a version that does, or .*`atelier model save ml\/churn --require METRIC>=MIN`/,
  );
  // Every change wrote its event in its own transaction.
  const events = await t.app.services.db.select({ type: registryEvents.type }).from(registryEvents).orderBy(asc(registryEvents.seq));
  expect(new Set(events.map((e) => e.type))).toEqual(
    new Set(['model.created', 'model.updated', 'version.registered', 'version.deprecated', 'alias.moved', 'promotion.requested', 'promotion.decided']),
  );
});

it("announces each registry change to the model's team's webhooks, signed, with ids and names only", async () => {
  const verify = await readmeVerifier();
  const types = ['model.created', 'model.version.registered', 'model.alias.moved', 'model.promotion.requested', 'model.promotion.decided'];
  const posts = await until(
    () => receiver.at('/ml'),
    (r) => types.every((type) => r.some((p) => JSON.parse(p.body).type === type)),
    'the registry events at the team webhook',
  );
  const events = posts.map((p) => verify(hook.secret, p.headers, p.body));
  expect(events.every(Boolean)).toBe(true);
  const registered = events.find((e) => e!.type === 'model.version.registered')!;
  expect(registered.data).toMatchObject({ model: { name: 'ml/churn' }, actor: { name: 'alice' }, ref: 'ml/churn@1' });
  expect(JSON.stringify(registered.data)).not.toMatch(/accuracy|weights|email/); // no metrics, outputs or columns
  expect(events.find((e) => e!.type === 'model.promotion.decided')!.data).toMatchObject({ approved: true, actor: { name: 'bob' } });
  expect(receiver.at('/lab')).toEqual([]);
});

it('answers from the CLI: list, lineage, and a refused promotion with its reason and a non-zero exit', async () => {
  const target = { url: t.url, token: alice.token };
  const list = await runCli(target, ['model', 'list']);
  expect(list.stdout).toMatch(/ml\/churn\s+ml\s+2\s+challenger=1 champion=1/);
  const lineage = await runCli(target, ['model', 'lineage', 'ml/churn@champion']);
  expect(lineage.code).toBe(0);
  expect(lineage.stdout).toMatch(/dataset crm\/users@1: country CONFIDENTIAL\{CUSTOMER_DATA\}, id INTERNAL/);
  expect(lineage.stdout).toMatch(/metrics train: accuracy=0\.95/);
  const promote = await runCli(target, ['model', 'promote', 'ml/churn@2', 'champion', '--reason', 'try again']);
  expect(promote.code).not.toBe(0);
  expect(promote.stderr).toMatch(/accuracy is 0.95, below 0.99/);
}, 60_000);
