// Issue 22 items 5–8 against one real server: a private cache namespace belongs to whoever first used it (the
// human behind the caller); the two-person rule needs two humans (a service account carries its owner); every
// refused authorization decision leaves an audit record (table-driven over every mutation of the schema, and the
// eight refusals the probe found); a run's trigger is the platform's to set, never the caller's.

import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { type GraphQLInputType, getNamedType, getNullableType, isEnumType, isInputObjectType, isListType, isNonNullType, isScalarType } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { schema } from '../../schema';
import { packDirectory } from '../../server/artifacts/archive';
import { startTestApp, type TestApp } from '../harness/app';
import { runCli } from '../harness/cli';
import { type ApiClient, apiClient, type GqlResult, RUN_EVENTS } from '../harness/client';

let t: TestApp;
let alice: ApiClient & { token: string }; // team crm (owns namespace crm and test)
let bob: ApiClient & { token: string }; // team crm
let mallory: ApiClient & { token: string }; // a member in no team
let vera: ApiClient & { token: string }; // a viewer in no team
let aliceBot: ApiClient; // a service account owned by alice, in team crm
let adminBot: ApiClient; // the admin's own service account
let scratch: string;
let aliceRun = '';
let scheduleId = '';

const code = (r: GqlResult) => r.errors?.[0]?.extensions?.code;
const ended = (e: any) => e.runEvents.__typename === 'RunStatusEvent' && ['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(e.runEvents.runStatus);
const START = `mutation ($w: String!, $ns: String, $d: Domain) { startRun(workflow: $w, cacheNamespace: $ns, domain: $d) { id cacheNamespace } }`;
const PREVIEW = `query ($w: String!, $ns: String) { cachePreview(workflow: $w, cacheNamespace: $ns) { node hit } }`;
const COLUMNS = [
  { name: 'id', type: 'string', label: { level: 'INTERNAL' } },
  { name: 'email', type: 'string', label: { level: 'CONFIDENTIAL', categories: ['pii'] } },
];

/** Deny records of the audit log for one identity (the admin reads the log). */
async function denials(name: string): Promise<{ action: string; subject: string; rule: string }[]> {
  const { auditEvents } = await t.api.gql(`{ auditEvents(limit: 1000) { action decision subject rule identity { name } } }`);
  return auditEvents.filter((e: any) => e.decision === 'deny' && e.identity?.name === name);
}

/** Runs `request` and returns the refusal's code and the audit records it left for `name`. */
async function refusedAndAudited(name: string, request: () => Promise<GqlResult>) {
  const before = (await denials(name)).length;
  const result = await request();
  const after = await denials(name);
  return { code: code(result), data: result.data ?? null, recorded: after.slice(0, after.length - before), message: result.errors?.[0]?.message };
}

const runCount = async (filter: object) =>
  (await t.api.gql(`query ($f: RunFilter) { runs(filter: $f, first: 100) { edges { node { id } } } }`, { f: filter })).runs.edges.length;

beforeAll(async () => {
  t = await startTestApp();
  scratch = await mkdtemp(path.join(os.tmpdir(), 'refusals-'));
  await t.publishFixture('echo');
  alice = await t.user('alice');
  bob = await t.user('bob');
  mallory = await t.user('mallory');
  vera = await t.user('vera', 'viewer');
  const aliceSa = await t.api.gql(`mutation { createServiceAccount(name: "alice-bot", owner: "alice") { token identity { name owner { name } } } }`);
  expect(aliceSa.createServiceAccount.identity.owner.name).toBe('alice');
  aliceBot = apiClient(t.url, aliceSa.createServiceAccount.token);
  const adminSa = await t.api.gql(`mutation { createServiceAccount(name: "admin-bot") { token identity { owner { name } } } }`);
  expect(adminSa.createServiceAccount.identity.owner.name).toBe('admin'); // owned by the admin who created it
  adminBot = apiClient(t.url, adminSa.createServiceAccount.token);
  await t.team('crm', ['alice', 'bob', 'alice-bot', 'admin-bot'], ['crm', 'test']);
  await t.createWorkflow({ name: 'lab', domain: 'experimentation', tasks: [{ name: 'hello', module: 'test/echo' }] });
  await t.createWorkflow({ name: 'prod', domain: 'production', tasks: [{ name: 'hello', module: 'test/echo' }] });
  await alice.gql(
    `mutation ($c: [DatasetColumnInput!]!) { createDataset(name: "crm/users", domain: production, columns: $c, digest: "sha256:${'a'.repeat(64)}") { id } }`,
    {
      c: COLUMNS,
    },
  );
  // Alice's run in her private namespace, to its end: its results are cached in that namespace only.
  const { startRun } = await alice.gql(START, { w: 'lab', ns: 'nightly-lab' });
  aliceRun = startRun.id;
  await alice.subscribe(RUN_EVENTS, { runId: aliceRun }, ended);
  const { createSchedule } = await t.api.gql(`mutation { createSchedule(input: { workflow: "lab", cron: "0 3 * * *", paused: true }) { id } }`);
  scheduleId = createSchedule.id;
}, 180_000);
afterAll(async () => {
  await t?.stop();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

describe('5. a private cache namespace belongs to the human who first used it', () => {
  it('another member starting a run in it is FORBIDDEN, audited, and starts nothing (the probe’s example)', async () => {
    const runs = await runCount({ createdBy: 'mallory' });
    const r = await refusedAndAudited('mallory', () => mallory.raw(START, { w: 'lab', ns: 'nightly-lab' }));
    expect(r.code).toBe('FORBIDDEN');
    expect(r.data).toBeNull();
    expect(r.recorded).toContainEqual(expect.objectContaining({ action: 'cache.namespace', subject: 'cache-namespace:nightly-lab' }));
    expect(r.message).not.toMatch(/alice/); // the owner is not named
    expect(r.message).toMatch(/another name/);
    expect(await runCount({ createdBy: 'mallory' })).toBe(runs);
  });

  it('a member of the owner’s own team is refused too, and so is an admin: private means the owner', async () => {
    expect(code(await bob.raw(START, { w: 'lab', ns: 'nightly-lab' }))).toBe('FORBIDDEN');
    expect(code(await t.api.raw(START, { w: 'lab', ns: 'nightly-lab' }))).toBe('FORBIDDEN');
  });

  it('a cache preview in it is FORBIDDEN and audited', async () => {
    const r = await refusedAndAudited('mallory', () => mallory.raw(PREVIEW, { w: 'lab', ns: 'nightly-lab' }));
    expect(r.code).toBe('FORBIDDEN');
    expect(r.recorded.map((e) => e.action)).toContain('cache.namespace');
  });

  it('cloning or rerunning the owner’s run (which would run in her namespace) is FORBIDDEN and audited', async () => {
    for (const mutation of [`mutation ($id: ID!) { cloneRun(id: $id) { id } }`, `mutation ($id: ID!) { rerunRun(id: $id, from: ALL) { id } }`]) {
      const r = await refusedAndAudited('mallory', () => mallory.raw(mutation, { id: aliceRun }));
      expect(r.code).toBe('FORBIDDEN');
      expect(r.recorded.map((e) => e.action)).toContain('cache.namespace');
    }
  });

  it('the owner and her own service account use it (and hit her cache); anyone may claim a new one', async () => {
    const own = await alice.gql(PREVIEW, { w: 'lab', ns: 'nightly-lab' });
    expect(own.cachePreview[0].hit).toBe(true);
    const viaBot = await aliceBot.gql(START, { w: 'lab', ns: 'nightly-lab' });
    expect(viaBot.startRun.cacheNamespace).toBe('nightly-lab');
    const clone = await alice.gql(`mutation ($id: ID!) { cloneRun(id: $id) { id cacheNamespace } }`, { id: aliceRun });
    expect(clone.cloneRun.cacheNamespace).toBe('nightly-lab');
    const mine = await mallory.gql(START, { w: 'lab', ns: 'mallory-lab' });
    expect(mine.startRun.cacheNamespace).toBe('mallory-lab');
    // Mallory's own namespace starts empty: nothing of Alice's is served in it.
    expect((await mallory.gql(PREVIEW, { w: 'lab', ns: 'mallory-lab2' })).cachePreview[0].hit).toBe(false);
  });

  it('the CLI goes through the same check', async () => {
    const r = await runCli({ url: t.url, token: mallory.token }, ['run', 'start', 'lab', '--cache-namespace', 'nightly-lab']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/FORBIDDEN|cache namespace/i);
  });
});

describe('6. the second person is a different human', () => {
  const ASK = `mutation ($c: String!) { requestDeclassification(dataset: "crm/users", column: $c, label: { level: INTERNAL, categories: ["pii"] }, reason: "hashed now") { id state } }`;
  const DECIDE = `mutation ($id: ID!) { decideDeclassification(id: $id, approve: true) { state } }`;
  const state = async (id: string) =>
    (await t.api.gql(`{ declassifications { id state } }`)).declassifications.find((d: any) => d.id === id)?.state as string | undefined;

  it('a member’s own service account approving her declassification is FORBIDDEN, audited, and changes nothing (the probe’s example)', async () => {
    const { requestDeclassification } = await alice.gql(ASK, { c: 'email' });
    const r = await refusedAndAudited('alice-bot', () => aliceBot.raw(DECIDE, { id: requestDeclassification.id }));
    expect(r.code).toBe('FORBIDDEN');
    expect(r.recorded).toContainEqual(expect.objectContaining({ action: 'declassification.decide' }));
    expect(await state(requestDeclassification.id)).toBe('PENDING');
    // A different human of the owning team decides it.
    expect((await bob.gql(DECIDE, { id: requestDeclassification.id })).decideDeclassification.state).toBe('APPROVED');
  });

  it('the reverse: a service account’s request approved by its owner is FORBIDDEN', async () => {
    await t.api.gql(`mutation { setColumnLabel(dataset: "crm/users", column: "id", label: { level: CONFIDENTIAL }) { level } }`);
    const { requestDeclassification } = await aliceBot.gql(
      `mutation { requestDeclassification(dataset: "crm/users", column: "id", label: { level: INTERNAL }, reason: "ids are opaque") { id } }`,
    );
    expect(code(await alice.raw(DECIDE, { id: requestDeclassification.id }))).toBe('FORBIDDEN');
    expect(await state(requestDeclassification.id)).toBe('PENDING');
  });

  it('an admin’s own service account cannot approve the admin’s request either', async () => {
    await t.api.gql(
      `mutation ($c: [DatasetColumnInput!]!) { createDataset(name: "crm/orders", domain: production, columns: $c, digest: "sha256:${'b'.repeat(64)}") { id } }`,
      {
        c: [{ name: 'phone', type: 'string', label: { level: 'RESTRICTED', categories: ['pii'] } }],
      },
    );
    const { requestDeclassification } = await t.api.gql(
      `mutation { requestDeclassification(dataset: "crm/orders", column: "phone", label: { level: CONFIDENTIAL, categories: ["pii"] }, reason: "masked") { id } }`,
    );
    expect(code(await adminBot.raw(DECIDE, { id: requestDeclassification.id }))).toBe('FORBIDDEN');
    expect(await state(requestDeclassification.id)).toBe('PENDING');
  });
});

// --- 7. every refusal is audited ------------------------------------------------------------------------------

async function module(name: string, namespace: string) {
  const dir = path.join(scratch, `${namespace}-${name}`);
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'atelier.module.yaml'), `namespace: ${namespace}\nname: ${name}\nentrypoint: main.mjs\nruntime: node\n`);
  await writeFile(path.join(dir, 'main.mjs'), 'console.log("hi");\n');
  return packDirectory(dir);
}

describe('7. the eight refusals the probe found each leave an audit record', () => {
  const eight: [string, () => ApiClient, string, Record<string, unknown>][] = [
    ['publish into another namespace', () => mallory, 'upload', {}],
    ['pause a schedule', () => vera, `mutation ($id: ID!) { pauseSchedule(id: $id) { id } }`, { id: '$schedule' }],
    [
      'set a label',
      () => mallory,
      `mutation { setColumnLabel(dataset: "crm/users", column: "email", label: { level: RESTRICTED, categories: ["pii"] }) { level } }`,
      {},
    ],
    ['create a user', () => mallory, `mutation { createUser(name: "mallory2") { token } }`, {}],
    ['grant a domain', () => mallory, `mutation { grantDomain(team: "crm", domain: production) { id } }`, {}],
    ['start in production', () => mallory, START, { w: 'prod' }],
    ['change team membership', () => mallory, `mutation { setTeamMember(team: "crm", identity: "mallory", role: maintainer) { id } }`, {}],
    ['invalidate a cache', () => mallory, `mutation { invalidateCache(module: "test/echo") }`, {}],
  ];
  for (const [name, who, query, variables] of eight) {
    it(`${name}: FORBIDDEN, with a deny record`, async () => {
      const caller = who();
      const callerName = caller === vera ? 'vera' : 'mallory';
      const vars = Object.fromEntries(Object.entries(variables).map(([k, v]) => [k, v === '$schedule' ? scheduleId : v]));
      const r = await refusedAndAudited(callerName, async () =>
        query === 'upload'
          ? caller.upload(`mutation ($a: File!) { publishModuleVersion(artifact: $a) { created } }`, {}, 'a', await module('sneaky', 'crm'))
          : caller.raw(query, vars),
      );
      expect(r.code).toBe('FORBIDDEN');
      expect(r.data).toBeNull();
      expect(r.recorded.length).toBe(1); // recorded once, not once per layer that saw it
    });
  }
});

describe('7. refusals of the HTTP routes are audited too', () => {
  it('a viewer’s push to the git hook is FORBIDDEN and leaves a deny record', async () => {
    const before = (await denials('vera')).length;
    const res = await fetch(`${t.url}/hooks/git`, {
      method: 'POST',
      headers: { authorization: `Bearer ${vera.token}`, 'content-type': 'application/json', 'x-atelier-delivery': crypto.randomUUID() },
      body: JSON.stringify({ repository: 'https://git.example.test/crm/models.git', after: 'a'.repeat(40) }),
    });
    expect(res.status).toBe(403);
    const after = await denials('vera'); // newest first
    expect(after.slice(0, after.length - before)).toEqual([expect.objectContaining({ action: 'module.publish', subject: 'hook:git' })]);
  });
});

/** A value of an input type for a generated call: real names and ids where the argument names one. */
function sample(type: GraphQLInputType, arg: string, field: string): unknown {
  const inner = getNullableType(type);
  if (isListType(inner)) return [sample(inner.ofType as GraphQLInputType, arg, field)];
  const named = getNamedType(inner);
  if (isEnumType(named)) return named.getValues()[0]!.value;
  if (isInputObjectType(named)) {
    const fields = Object.values(named.getFields()).filter((f) => isNonNullType(f.type) && f.defaultValue === undefined);
    return Object.fromEntries(fields.map((f) => [f.name, sample(f.type, f.name, named.name)]));
  }
  if (!isScalarType(named)) throw new Error(`no sample for ${String(type)}`);
  const strings: Record<string, string> = {
    team: 'crm',
    identity: 'alice',
    namespace: 'crm',
    dataset: 'crm/users',
    column: 'email',
    module: 'test/echo',
    ref: 'test/echo@1',
    tag: 'latest',
    version: '1',
    workflow: 'lab',
    spec: JSON.stringify({ name: 'lab', domain: 'experimentation', tasks: [{ name: 'hello', module: 'test/echo' }] }),
    cron: '0 4 * * *',
    executor: 'local',
    digest: `sha256:${'a'.repeat(64)}`,
    name: field === 'DatasetColumnInput' ? 'c1' : field.includes('Dataset') ? 'crm/users' : field.includes('HotCluster') ? 'warm' : 'new-name',
  };
  switch (named.name) {
    case 'ID':
      return arg === 'id' && /Schedule/.test(field) ? scheduleId : arg === 'id' && /Declassification/.test(field) ? pendingDeclassification : aliceRun;
    case 'String':
      return strings[arg] ?? 'x';
    case 'Int':
      return 1;
    case 'Float':
      return 1;
    case 'Boolean':
      return true;
    case 'JSON':
      return arg === 'sample' ? [] : {};
    case 'DateTime':
      return new Date().toISOString();
    default:
      return 'x';
  }
}
let pendingDeclassification = '';

describe('7. every mutation of the schema, refused to a viewer, leaves an audit record', () => {
  const mutations = Object.values(schema.getMutationType()!.getFields());

  it('covers every mutation (a new one is in this table the moment it is added)', () => {
    expect(mutations.length).toBeGreaterThan(30);
  });

  for (const field of mutations) {
    it(`${field.name}`, async () => {
      if (!pendingDeclassification && field.name === 'decideDeclassification') {
        await t.api.gql(`mutation { setColumnLabel(dataset: "crm/users", column: "email", label: { level: RESTRICTED, categories: ["pii"] }) { level } }`);
        const { requestDeclassification } = await alice.gql(
          `mutation { requestDeclassification(dataset: "crm/users", column: "email", label: { level: CONFIDENTIAL, categories: ["pii"] }, reason: "masked") { id } }`,
        );
        pendingDeclassification = requestDeclassification.id;
      }
      // Required arguments, and the optional ones a mutation needs one of to say what it acts on.
      const needs: Record<string, string[]> = { invalidateCache: ['module'] };
      const args = field.args.filter((a) => (isNonNullType(a.type) && a.defaultValue === undefined) || needs[field.name]?.includes(a.name));
      const declared = args.map((a) => `$${a.name}: ${String(a.type)}`).join(', ');
      const passed = args.map((a) => `${a.name}: $${a.name}`).join(', ');
      const selection = isScalarType(getNamedType(field.type)) || isEnumType(getNamedType(field.type)) ? '' : '{ __typename }';
      const query = `mutation${declared ? ` (${declared})` : ''} { ${field.name}${passed ? `(${passed})` : ''} ${selection} }`;
      const variables = Object.fromEntries(args.map((a) => [a.name, sample(a.type, a.name, field.name)]));
      const r = await refusedAndAudited('vera', () => vera.raw(query, variables));
      expect({ code: r.code, message: r.message }).toMatchObject({ code: 'FORBIDDEN' });
      expect(r.data).toBeNull();
      expect(r.recorded.length).toBeGreaterThanOrEqual(1);
    });
  }
});

describe('8. a run’s trigger is set by the platform', () => {
  it('startRun(trigger: SCHEDULE) is refused and no run claims a schedule (the probe’s example), nor a clone, rerun or parent', async () => {
    const before = await runCount({ trigger: ['SCHEDULE', 'CLONE', 'RERUN', 'PARENT'] });
    for (const trigger of ['SCHEDULE', 'CLONE', 'RERUN', 'PARENT']) {
      const r = await t.api.raw(`mutation { startRun(workflow: "lab", trigger: ${trigger}) { id trigger } }`);
      expect(r.errors?.length).toBeGreaterThan(0);
      expect(r.data ?? null).toBeNull();
      const viaVariable = await t.api.raw(`mutation ($t: StartTrigger) { startRun(workflow: "lab", trigger: $t) { id } }`, { t: trigger });
      expect(viaVariable.errors?.length).toBeGreaterThan(0);
    }
    expect(await runCount({ trigger: ['SCHEDULE', 'CLONE', 'RERUN', 'PARENT'] })).toBe(before);
  });

  it('a caller still says how it started a run: API, CLI or DASHBOARD, recorded as such', async () => {
    for (const trigger of ['API', 'CLI', 'DASHBOARD']) {
      const { startRun } = await t.api.gql(`mutation { startRun(workflow: "lab", trigger: ${trigger}) { trigger } }`);
      expect(startRun.trigger).toBe(trigger);
    }
  });

  it('the CLI refuses --trigger schedule before sending anything', async () => {
    const r = await runCli({ url: t.url, token: t.app.adminToken }, ['run', 'start', 'lab', '--trigger', 'schedule']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/trigger/i);
  });
});
