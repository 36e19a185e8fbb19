// The cache and idempotency keys as an attacker sees them (issue 14, leaks 3, 4 and 7), against one real server:
// two teams (crm, granted production and owning the `test` namespace; lab, with no grant), a viewer and scoped
// tokens. Previews, explanations and statistics draw only on what the caller may read and answer "exists but
// unreadable" exactly like "does not exist"; only a namespace's writers (and admins) invalidate its entries;
// idempotency keys belong to the identity that used them. The last test prints how many cases ran.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findRunByKey } from '../../server/orchestrator/idempotency';
import { startTestApp, type TestApp } from '../harness/app';
import { type ApiClient, apiClient, RUN_EVENTS } from '../harness/client';

let t: TestApp;
let mia: ApiClient; // team crm: production granted, writes namespace `test`
let oscar: ApiClient; // team lab: no grant, writes namespace `lab`
let vera: ApiClient; // a viewer in team lab
let miaReadRunOnly: ApiClient; // a crm service account whose token may only read runs

const SECRET = 'hunter2-production';
let prod = { run: '', train: '', score: '', trainKey: '' };
let lab = { run: '', train: '', trainKey: '' };
let ran = 0;

const START = `mutation ($w: String!, $p: JSON, $k: String, $d: Domain) { startRun(workflow: $w, parameters: $p, idempotencyKey: $k, domain: $d) { id } }`;
const PREVIEW = `query ($w: String!, $p: JSON, $d: Domain) { cachePreview(workflow: $w, parameters: $p, domain: $d) { node hit key reason sourceTaskId sourceRunId savedMs } }`;
const EXPLAIN = `query ($id: ID!) { cacheExplain(taskId: $id) { taskId key hit message differences { component name message } nearest { key scope sourceTaskId sourceRunId } } }`;
const STATS = `query ($s: DateTime!, $g: CacheGrouping) { cacheStats(since: $s, groupBy: $g) { group hits misses } }`;
const INVALIDATE = `mutation ($m: String, $k: String) { invalidateCache(module: $m, key: $k) }`;
const ended = (e: any) => e.runEvents.__typename === 'RunStatusEvent' && ['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(e.runEvents.runStatus);
const since = new Date(Date.now() - 3_600_000).toISOString();

async function runToEnd(api: ApiClient, workflow: string, parameters: object) {
  const { startRun } = await api.gql(START, { w: workflow, p: parameters });
  await api.subscribe(RUN_EVENTS, { runId: startRun.id }, ended);
  const { run } = await t.api.gql(`query ($id: ID!) { run(id: $id) { id status tasks { id node cacheKey } } }`, { id: startRun.id });
  expect(run.status).toBe('SUCCEEDED');
  return { id: run.id as string, tasks: Object.fromEntries(run.tasks.map((x: any) => [x.node, x])) as Record<string, { id: string; cacheKey: string }> };
}

/** Everything a production entry could give away: its run's and tasks' ids, its key, its parameter. */
const revealsProduction = (r: unknown) => {
  const text = JSON.stringify(r);
  return [prod.run, prod.train, prod.score, prod.trainKey, SECRET].some((s) => text.includes(s));
};
/** A response with the ids it was asked about replaced, so two answers about different ids can be compared. */
const normalised = (r: unknown, ...ids: string[]) => {
  let text = JSON.stringify(r);
  for (const id of ids) text = text.replaceAll(id, '<id>');
  return JSON.parse(text);
};
const code = (r: { errors?: { extensions?: { code?: string } }[] }) => r.errors?.[0]?.extensions?.code;

async function auditedSince(at: Date, action: string) {
  const { auditEvents } = await t.api.gql(`query ($s: DateTime) { auditEvents(since: $s, limit: 1000) { action decision identity { name } } }`, {
    s: new Date(at.getTime() - 1000).toISOString(),
  });
  return auditEvents.filter((e: any) => e.action === action);
}

beforeAll(async () => {
  t = await startTestApp();
  await t.publishFixture('keyed');
  mia = await t.user('mia');
  oscar = await t.user('oscar');
  vera = await t.user('vera', 'viewer');
  await t.team('crm', ['mia'], ['test']);
  await t.team('lab', ['oscar', 'vera'], ['lab']);
  await t.api.gql(`mutation { grantDomain(team: "crm", domain: production) { id } }`);
  const bot = await t.api.gql(`mutation { createServiceAccount(name: "crm-reader", scopes: ["read:Run"]) { token } }`);
  await t.api.gql(`mutation { setTeamMember(team: "crm", identity: "crm-reader") { id } }`);
  miaReadRunOnly = apiClient(t.url, bot.createServiceAccount.token);
  const tasks = [
    { name: 'train', module: 'test/keyed', parameters: { secret: '${params.secret}' } },
    { name: 'score', module: 'test/keyed', parameters: { y: 'fixed' }, dependsOn: ['train'] },
  ];
  await t.createWorkflow({ name: 'prod-model', domain: 'production', parameters: { secret: { default: 'none' } }, tasks });
  await t.createWorkflow({ name: 'lab-model', domain: 'experimentation', parameters: { secret: { default: 'none' } }, tasks });
  await t.createWorkflow({ name: 'lab-other', domain: 'experimentation', tasks: [{ name: 'only', module: 'test/keyed', parameters: { v: 'other' } }] });
  const p = await runToEnd(t.api, 'prod-model', { secret: SECRET });
  prod = { run: p.id, train: p.tasks.train!.id, score: p.tasks.score!.id, trainKey: p.tasks.train!.cacheKey };
  // Oscar's own experimentation run with the same guess: its entries are in another scope than production's.
  const l = await runToEnd(oscar, 'lab-model', { secret: SECRET });
  lab = { run: l.id, train: l.tasks.train!.id, trainKey: l.tasks.train!.cacheKey };
  if (!/^[0-9a-f]{64}$/.test(prod.trainKey) || !/^[0-9a-f]{64}$/.test(lab.trainKey)) throw new Error('the runs were not cached: the cases would prove nothing');
});
afterAll(() => t?.stop());

describe('cachePreview answers a right and a wrong guess alike unless the caller may read the entry', () => {
  const guess = (api: ApiClient, secret: string, domain: string | null = null) =>
    api.raw(PREVIEW, { w: 'prod-model', p: { secret }, d: domain }).then((r) => {
      expect(r.errors).toBeUndefined();
      return r.data.cachePreview as any[];
    });

  it('a granted member’s right guess hits (the cases below would prove nothing otherwise)', async () => {
    ran++;
    const right = await guess(mia, SECRET);
    expect(right.map((x) => x.hit)).toEqual([true, true]);
    expect(right[0].sourceRunId).toBe(prod.run);
  });

  // Since a workflow's spec is its domain's data (the preview is computed from its defaults), a caller who may not
  // read the production spec is refused before any entry is looked at: a right and a wrong guess get the same
  // refusal, which names no run.
  const refusal = (api: ApiClient, secret: string, domain: string | null = null) =>
    api
      .raw(PREVIEW, { w: 'prod-model', p: { secret }, d: domain })
      .then((r) => ({ data: r.data?.cachePreview ?? null, errors: r.errors?.map((e: any) => ({ message: e.message, code: e.extensions?.code })) }));

  for (const [who, api, domain] of [
    ['a member without the production grant', () => oscar, null],
    ['a member without the grant, naming the domain', () => oscar, 'production'],
    ['a viewer without the grant', () => vera, null],
    ['a granted team’s token scoped to read:Run only', () => miaReadRunOnly, null],
  ] as const) {
    it(`${who}: right and wrong guesses answer the same, and nothing names the production run`, async () => {
      ran++;
      const [right, wrong] = [await refusal(api(), SECRET, domain), await refusal(api(), 'a-wrong-guess', domain)];
      expect(right).toEqual(wrong);
      expect(right.errors?.[0]?.code).toBe('FORBIDDEN');
      expect(JSON.stringify(right)).not.toContain(prod.run);
      expect(revealsProduction(right)).toBe(false);
    });
  }

  it('a refused preview is audited', async () => {
    ran++;
    const at = new Date();
    await refusal(oscar, SECRET);
    expect(await auditedSince(at, 'data.read')).toContainEqual({ action: 'data.read', decision: 'deny', identity: { name: 'oscar' } });
  });
});

describe('cacheExplain draws only on tasks and entries the caller may read', () => {
  for (const [who, api, expected] of [
    ['a member without the production grant', () => oscar, 'NOT_FOUND'],
    ['a viewer without the grant', () => vera, 'NOT_FOUND'],
    // (a token that may not read tasks at all is refused before any task is looked up)
    ['a granted team’s token scoped to read:Run only', () => miaReadRunOnly, 'FORBIDDEN'],
  ] as const) {
    it(`${who}: a production task answers exactly like a task that does not exist (${expected})`, async () => {
      ran++;
      const missing = randomUUID();
      const [real, none] = [await api().raw(EXPLAIN, { id: prod.train }), await api().raw(EXPLAIN, { id: missing })];
      expect(code(real)).toBe(expected);
      expect(normalised(real, prod.train)).toEqual(normalised(none, missing));
    });
  }

  it('a granted member explains the production task', async () => {
    ran++;
    const r = await mia.gql(EXPLAIN, { id: prod.train });
    expect(r.cacheExplain.key).toBe(prod.trainKey);
  });

  it('explaining one’s own experimentation task never compares it with a production entry, nor names one', async () => {
    ran++;
    const r = await oscar.raw(EXPLAIN, { id: lab.train });
    expect(r.errors).toBeUndefined();
    expect(r.data.cacheExplain.hit).toBe(false);
    expect(r.data.cacheExplain.nearest?.scope ?? 'experimentation').toBe('experimentation');
    expect(r.data.cacheExplain.differences.map((d: any) => d.component)).not.toContain('scope');
    expect(revealsProduction(r)).toBe(false);
  });

  it('a production task’s cache key (what a guess’s preview key would be compared with) is not readable without the grant', async () => {
    ran++;
    const r = await oscar.raw(`query ($id: ID!) { run(id: $id) { tasks { id cacheKey } } }`, { id: prod.run });
    expect(JSON.stringify(r)).not.toContain(prod.trainKey);
    const granted = await mia.gql(`query ($id: ID!) { run(id: $id) { tasks { cacheKey } } }`, { id: prod.run });
    expect(JSON.stringify(granted)).toContain(prod.trainKey);
  });
});

describe('cacheStats counts only runs the caller may read', () => {
  const stats = async (api: ApiClient, groupBy: string) => (await api.gql(STATS, { s: since, g: groupBy })).cacheStats as any[];

  it('a member without the grant sees no production workflow, and no count moves when a production run ends', async () => {
    ran++;
    expect((await stats(oscar, 'workflow')).map((r) => r.group)).not.toContain('prod-model');
    expect((await stats(mia, 'workflow')).map((r) => r.group)).toContain('prod-model');
    const before = await Promise.all(['team', 'workflow', 'module'].map((g) => stats(oscar, g)));
    const granted = await stats(mia, 'module');
    await runToEnd(t.api, 'prod-model', { secret: `${SECRET}-again` });
    expect(await Promise.all(['team', 'workflow', 'module'].map((g) => stats(oscar, g)))).toEqual(before);
    expect(await stats(vera, 'module')).toEqual(before[2]);
    expect(await stats(mia, 'module')).not.toEqual(granted);
  });
});

describe('invalidateCache: only the namespace’s writers and admins', () => {
  const invalidate = (api: ApiClient, v: { m?: string; k?: string }) => api.raw(INVALIDATE, { m: v.m ?? null, k: v.k ?? null });
  const stillHits = async () => (await mia.gql(PREVIEW, { w: 'prod-model', p: { secret: SECRET } })).cachePreview[0].hit;

  for (const [name, which] of [
    ['a module', { m: 'test/keyed' }],
    ['one version of a module', { m: 'test/keyed@1' }],
  ] as const) {
    it(`another team’s member invalidating ${name} is FORBIDDEN, audited, and drops nothing`, async () => {
      ran++;
      const at = new Date();
      const r = await invalidate(oscar, which);
      expect(code(r)).toBe('FORBIDDEN');
      expect(r.errors![0]!.message).toContain('crm');
      expect(await auditedSince(at, 'cache.invalidate')).toContainEqual({ action: 'cache.invalidate', decision: 'deny', identity: { name: 'oscar' } });
      expect(await stillHits()).toBe(true);
    });
  }

  it('a viewer invalidating is FORBIDDEN', async () => {
    ran++;
    expect(code(await invalidate(vera, { m: 'lab/anything' }))).toBe('FORBIDDEN');
  });

  it('a module of a namespace no team owns: only admins', async () => {
    ran++;
    expect(code(await invalidate(mia, { m: 'nobody/thing' }))).toBe('FORBIDDEN');
    expect((await t.api.gql(INVALIDATE, { m: 'nobody/thing', k: null })).invalidateCache).toBe(0);
  });

  it('by key, an entry the caller may read but whose namespace they may not write is FORBIDDEN and audited', async () => {
    ran++;
    const at = new Date();
    const r = await invalidate(oscar, { k: lab.trainKey });
    expect(code(r)).toBe('FORBIDDEN');
    expect(await auditedSince(at, 'cache.invalidate')).toContainEqual({ action: 'cache.invalidate', decision: 'deny', identity: { name: 'oscar' } });
  });

  it('by key, an entry the caller may not read answers exactly like a key that does not exist, and stays', async () => {
    ran++;
    const missing = 'f'.repeat(64);
    for (const api of [oscar, miaReadRunOnly]) {
      const [real, none] = [await invalidate(api, { k: prod.trainKey }), await invalidate(api, { k: missing })];
      expect(normalised(real, prod.trainKey)).toEqual(normalised(none, missing));
    }
    expect(await stillHits()).toBe(true);
  });

  it('the namespace’s writers invalidate by key and by module', async () => {
    ran++;
    expect((await mia.gql(INVALIDATE, { m: null, k: lab.trainKey })).invalidateCache).toBe(1);
    expect((await mia.gql(INVALIDATE, { m: 'test/keyed', k: null })).invalidateCache).toBeGreaterThan(0);
    expect(await stillHits()).toBe(false);
  });
});

describe('idempotency keys belong to the identity that used them', () => {
  const RUN = `query ($id: ID!) { run(id: $id) { id parameters idempotencyKey createdBy { name } } }`;

  it('another identity’s key starts a new run with the caller’s own parameters, and a retry returns it', async () => {
    ran++;
    const key = `deploy-${randomUUID()}`;
    const first = (await oscar.gql(START, { w: 'lab-model', p: { secret: 'oscars-choice' }, k: key })).startRun.id;
    const mine = (await mia.gql(START, { w: 'lab-model', p: { secret: 'mias-choice' }, k: key })).startRun.id;
    expect(mine).not.toBe(first);
    const run = (await mia.gql(RUN, { id: mine })).run;
    expect(run).toMatchObject({ parameters: { secret: 'mias-choice' }, idempotencyKey: key, createdBy: { name: 'mia' } });
    expect((await mia.gql(START, { w: 'lab-model', p: { secret: 'mias-choice' }, k: key })).startRun.id).toBe(mine);
    expect((await oscar.gql(START, { w: 'lab-model', k: key })).startRun.id).toBe(first);
  });

  it('a key another identity used for another workflow is no CONFLICT (which would name their workflow)', async () => {
    ran++;
    const key = `build-${randomUUID()}`;
    await oscar.gql(START, { w: 'lab-other', k: key });
    const r = await mia.raw(START, { w: 'lab-model', k: key });
    expect(r.errors).toBeUndefined();
    expect(JSON.stringify(r)).not.toContain('lab-other');
    // The caller's own key for another workflow is still a CONFLICT.
    expect(code(await mia.raw(START, { w: 'lab-other', k: key }))).toBe('CONFLICT');
  });

  it('Run.idempotencyKey is readable by the starter (and admins) only', async () => {
    ran++;
    const key = `secret-key-${randomUUID()}`;
    const id = (await mia.gql(START, { w: 'lab-model', k: key })).startRun.id;
    for (const api of [oscar, vera]) {
      const r = await api.raw(RUN, { id });
      expect(r.data?.run?.id).toBe(id);
      expect(JSON.stringify(r)).not.toContain(key);
      const listed = await api.raw(`{ runs(first: 50) { edges { node { id idempotencyKey } } } }`);
      expect(JSON.stringify(listed)).not.toContain(key);
    }
    expect((await t.api.gql(RUN, { id })).run.idempotencyKey).toBe(key);
  });

  it('the control plane’s keys (a schedule’s fire times) are not taken by a member’s run with the same key', async () => {
    ran++;
    const key = `schedule:${randomUUID()}:2030-01-01T00:00:00.000Z`;
    const members = (await mia.gql(START, { w: 'lab-model', p: { secret: 'planted' }, k: key })).startRun.id;
    const { db } = t.app.database;
    const workflowId = (await t.api.gql(`{ workflow(name: "lab-model") { id } }`)).workflow.id;
    expect(await findRunByKey(db, null, key)).toBeUndefined();
    const own = await t.app.services.orchestrator.startRun({ workflow: workflowId, trigger: 'SCHEDULE', idempotencyKey: key }, null);
    expect(own.id).not.toBe(members);
    expect(own.parameters).toEqual({ secret: 'none' });
    expect((await findRunByKey(db, null, key))?.id).toBe(own.id);
    expect((await t.app.services.orchestrator.startRun({ workflow: workflowId, trigger: 'SCHEDULE', idempotencyKey: key }, null)).id).toBe(own.id);
  });
});

describe('cache oracles suite', () => {
  it('ran every case, and none leaked', () => {
    console.log(`cache oracles suite: ${ran} cases (cachePreview, cacheExplain, Task.cacheKey, cacheStats, invalidateCache, idempotency keys); none leaked`);
    expect(ran).toBeGreaterThanOrEqual(20);
  });
});
