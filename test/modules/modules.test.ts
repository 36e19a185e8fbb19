// Modules through the real API: default tags, digest-only republish, promotion, stacked rollback, deprecation,
// pinning at run start, the catalog's owners and usage, and namespaces that only their team may write.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packDirectory } from '../../server/artifacts/archive';
import { sha256 } from '../../server/artifacts/store';
import { startTestApp, type TestApp } from '../harness/app';
import { type ApiClient, apiClient, PUBLISH, RUN_EVENTS } from '../harness/client';

let t: TestApp;
let scratch: string;

const PUBLISH_FULL = `mutation ($artifact: File, $digest: String, $tags: [String!], $force: Boolean) {
  publishModuleVersion(artifact: $artifact, digest: $digest, tags: $tags, force: $force) { created movedTags version { version digest ref tags } } }`;
const SET_TAG = `mutation ($m: String!, $t: String!, $v: String!, $force: Boolean, $reason: String) {
  setModuleTag(module: $m, tag: $t, version: $v, force: $force, reason: $reason) { tag version { version } previous { version } } }`;
const ROLLBACK = `mutation ($m: String!, $t: String!) { rollbackModuleTag(module: $m, tag: $t) { version { version } previous { version } } }`;
const TAGS = `query ($n: String!) { module(name: $n) { tags { tag version { version } } } }`;

/** Writes a node module `ns/name` whose main prints `marker`; returns its directory. */
async function moduleDir(ns: string, name: string, marker: string, manifestExtra = ''): Promise<string> {
  const dir = path.join(scratch, `${ns}-${name}-${marker}`);
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'atelier.module.yaml'), `namespace: ${ns}\nname: ${name}\nentrypoint: main.mjs\nruntime: node\n${manifestExtra}`);
  await writeFile(path.join(dir, 'main.mjs'), `console.log(${JSON.stringify(marker)});\n`);
  return dir;
}

async function publish(api: ApiClient, dir: string, variables: Record<string, unknown> = {}) {
  return api.upload(PUBLISH_FULL, { tags: null, ...variables }, 'artifact', await packDirectory(dir));
}

const tagsOf = async (name: string) =>
  Object.fromEntries(
    ((await t.api.gql(TAGS, { n: name })).module.tags as { tag: string; version: { version: string } }[]).map((x) => [x.tag, x.version.version]),
  );

const ended = (e: any) => e.runEvents.__typename === 'RunStatusEvent' && ['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(e.runEvents.runStatus);

const codeOf = (r: { errors?: { extensions?: { code?: string } }[] }) => r.errors?.[0]?.extensions?.code;

async function userToken(name: string, role = 'member'): Promise<ApiClient> {
  const { createUser } = await t.api.gql(`mutation ($n: String!, $r: Role) { createUser(name: $n, role: $r) { token } }`, { n: name, r: role });
  return apiClient(t.url, createUser.token);
}

beforeAll(async () => {
  t = await startTestApp();
  scratch = await mkdtemp(path.join(os.tmpdir(), 'atelier-modules-'));
});
afterAll(async () => {
  await t?.stop();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

describe('publishing and tags', () => {
  it('moves latestAlpha by default, and latest only for a module’s first version', async () => {
    const first = await publish(t.api, await moduleDir('tags', 'a', 'v1'));
    expect(first.data.publishModuleVersion).toMatchObject({ created: true, movedTags: ['latestAlpha', 'latest'], version: { version: '1' } });
    const second = await publish(t.api, await moduleDir('tags', 'a', 'v2'));
    expect(second.data.publishModuleVersion).toMatchObject({ created: true, movedTags: ['latestAlpha'], version: { version: '2' } });
    expect(await tagsOf('tags/a')).toEqual({ latest: '1', latestAlpha: '2' });
  });

  it('republishes identical content by digest alone: nothing uploaded, the existing version returned', async () => {
    const archive = await packDirectory(await moduleDir('tags', 'a', 'v2'));
    const r = await t.api.gql(PUBLISH_FULL, { digest: sha256(archive), tags: ['stable'] });
    expect(r.publishModuleVersion).toMatchObject({ created: false, movedTags: ['stable'], version: { version: '2' } });
    const unknown = await t.api.raw(PUBLISH_FULL, { digest: `sha256:${'0'.repeat(64)}` });
    expect(codeOf(unknown)).toBe('NOT_FOUND');
    expect(unknown.errors?.[0]?.message).toMatch(/upload the archive/);
  });

  it('refuses an archive whose digest differs from the one the client computed, creating nothing', async () => {
    const r = await publish(t.api, await moduleDir('tags', 'corrupt', 'x'), { digest: `sha256:${'1'.repeat(64)}` });
    expect(codeOf(r)).toBe('DIGEST_MISMATCH');
    expect((await t.api.gql(`{ module(name: "tags/corrupt") { id } }`)).module).toBeNull();
  });

  it('promotes with setModuleTag and rolls back as an undo stack, recording every move', async () => {
    await publish(t.api, await moduleDir('tags', 'a', 'v3'));
    const promote = async (v: string) => (await t.api.gql(SET_TAG, { m: 'tags/a', t: 'latest', v, reason: `promote ${v}` })).setModuleTag;
    expect(await promote('2')).toMatchObject({ version: { version: '2' }, previous: { version: '1' } });
    expect(await promote('latestAlpha')).toMatchObject({ version: { version: '3' }, previous: { version: '2' } });
    const back = async () => (await t.api.gql(ROLLBACK, { m: 'tags/a', t: 'latest' })).rollbackModuleTag.version.version;
    expect(await back()).toBe('2');
    expect(await back()).toBe('1'); // a second rollback goes further back, not forward again
    const none = await t.api.raw(ROLLBACK, { m: 'tags/a', t: 'latest' });
    expect(codeOf(none)).toBe('CONFLICT');
    expect(none.errors?.[0]?.message).toMatch(/no earlier version/);
    const { module } = await t.api.gql(
      `{ module(name: "tags/a") { tagHistory(tag: "latest") { action reason from { version } to { version } movedBy { name } at } } }`,
    );
    expect(module.tagHistory.map((e: any) => `${e.action}:${e.from?.version ?? '-'}>${e.to.version}`)).toEqual([
      'rollback:2>1',
      'rollback:3>2',
      'move:2>3',
      'move:1>2',
      'move:->1',
    ]);
    expect(module.tagHistory[2]).toMatchObject({ reason: 'promote latestAlpha', movedBy: { name: 'admin' } });
  });

  it('answers a missing module, version or tag, and a bad tag name, with typed errors that change nothing', async () => {
    const before = await tagsOf('tags/a');
    expect(codeOf(await t.api.raw(SET_TAG, { m: 'tags/nope', t: 'latest', v: '1' }))).toBe('NOT_FOUND');
    const missing = await t.api.raw(SET_TAG, { m: 'tags/a', t: 'latest', v: '99' });
    expect(codeOf(missing)).toBe('NOT_FOUND');
    expect(missing.errors?.[0]?.message).toMatch(/no version or tag "99"/);
    expect(codeOf(await t.api.raw(SET_TAG, { m: 'tags/a', t: '9bad tag', v: '1' }))).toBe('BAD_USER_INPUT');
    expect(codeOf(await t.api.raw(ROLLBACK, { m: 'tags/a', t: 'never-set' }))).toBe('NOT_FOUND');
    expect(await tagsOf('tags/a')).toEqual(before);
  });

  it('deprecates a version: no tag moves to it without force, but a run that pins it still runs', async () => {
    const dep = await t.api.gql(`mutation { deprecateModuleVersion(ref: "tags/a@3", reason: "leaks memory") { deprecated deprecationReason } }`);
    expect(dep.deprecateModuleVersion).toEqual({ deprecated: true, deprecationReason: 'leaks memory' });
    const refused = await t.api.raw(SET_TAG, { m: 'tags/a', t: 'latest', v: '3' });
    expect(codeOf(refused)).toBe('CONFLICT');
    expect(refused.errors?.[0]?.message).toMatch(/deprecated \(leaks memory\).*--force/);
    expect((await t.api.gql(SET_TAG, { m: 'tags/a', t: 'pinned', v: '3', force: true })).setModuleTag.version.version).toBe('3');

    await t.createWorkflow({ name: 'uses-deprecated', tasks: [{ name: 'x', module: 'tags/a@3' }] });
    const { startRun } = await t.api.gql(`mutation { startRun(workflow: "uses-deprecated") { id } }`);
    await t.api.subscribe(RUN_EVENTS, { runId: startRun.id }, ended);
    const { run } = await t.api.gql(`query ($id: ID!) { run(id: $id) { status tasks { logs { line } } } }`, { id: startRun.id });
    expect(run.status).toBe('SUCCEEDED');
    expect(run.tasks[0].logs.map((l: any) => l.line)).toContain('v3');
  });
});

describe('runs pin what a tag pointed to when they started', () => {
  it('keeps a rerun on the pinned version after the tag moves, and counts usage per version', async () => {
    await publish(t.api, await moduleDir('pin', 'm', 'one'), { tags: ['latest'] });
    await t.createWorkflow({ name: 'pinning', tasks: [{ name: 'p', module: 'pin/m' }] });
    const runOnce = async (query: string, variables: Record<string, unknown> = {}) => {
      const data = await t.api.gql(query, variables);
      const id = (Object.values(data)[0] as { id: string }).id;
      await t.api.subscribe(RUN_EVENTS, { runId: id }, ended);
      return (await t.api.gql(`query ($id: ID!) { run(id: $id) { id status tasks { moduleRef moduleVersion { version } logs { line } } } }`, { id })).run;
    };
    const first = await runOnce(`mutation { startRun(workflow: "pinning") { id } }`);
    expect(first.tasks[0]).toMatchObject({ moduleRef: 'pin/m@latest', moduleVersion: { version: '1' } });
    await publish(t.api, await moduleDir('pin', 'm', 'two'), { tags: ['latest'] });
    const clone = await runOnce(`mutation ($id: ID!) { cloneRun(id: $id) { id } }`, { id: first.id });
    expect(clone.tasks[0]).toMatchObject({ moduleRef: 'pin/m@latest', moduleVersion: { version: '1' } });
    const fresh = await runOnce(`mutation { startRun(workflow: "pinning") { id } }`);
    expect(fresh.tasks[0].moduleVersion.version).toBe('2');
    expect(fresh.tasks[0].logs.map((l: any) => l.line)).toContain('two');

    // push --run: try a version without moving any tag
    await publish(t.api, await moduleDir('pin', 'm', 'three'), { tags: ['latestAlpha'] });
    const tried = await runOnce(`mutation { startRun(workflow: "pinning", useModules: ["pin/m@3"]) { id } }`);
    expect(tried.tasks[0].moduleVersion.version).toBe('3');
    for (const bad of ['pin/m', 'other/thing@1']) {
      expect(codeOf(await t.api.raw(`mutation ($u: [String!]) { startRun(workflow: "pinning", useModules: $u) { id } }`, { u: [bad] }))).toBe('BAD_USER_INPUT');
    }

    const { module } = await t.api.gql(`{ module(name: "pin/m") { usage { runs lastUsedAt } latestVersion { version } versions { version usage { runs } } } }`);
    expect(module.usage.runs).toBe(4);
    expect(module.latestVersion.version).toBe('3');
    expect(Object.fromEntries(module.versions.map((v: any) => [v.version, v.usage.runs]))).toEqual({ '1': 2, '2': 1, '3': 1 });
  });
});

describe('namespaces belong to teams', () => {
  it('lets only the owning team’s members and service accounts publish and move tags; anyone may read', async () => {
    const alice = await userToken('alice');
    const mallory = await userToken('mallory');
    const viewer = await userToken('vera', 'viewer');
    const dir = await moduleDir('vision', 'resnet', 'r1');

    const unowned = await publish(alice, dir);
    expect(codeOf(unowned)).toBe('FORBIDDEN');
    expect(unowned.errors?.[0]?.message).toMatch(/not owned by any team.*namespace create vision --team TEAM/);

    await t.api.gql(`mutation { createTeam(name: "vision-team") { id } }`);
    await t.api.gql(`mutation { setTeamMember(team: "vision-team", identity: "alice", role: maintainer) { id } }`);
    // a maintainer claims the namespace for the team; a non-member cannot claim it for them
    expect(codeOf(await mallory.raw(`mutation { assignNamespace(namespace: "vision", team: "vision-team") { id } }`))).toBe('FORBIDDEN');
    const claimed = await alice.gql(`mutation { assignNamespace(namespace: "vision", team: "vision-team") { name namespaces } }`);
    expect(claimed.assignNamespace.namespaces).toEqual(['vision']);

    expect((await publish(alice, dir)).data.publishModuleVersion.created).toBe(true);
    const foreign = await publish(mallory, await moduleDir('vision', 'resnet', 'evil'));
    expect(codeOf(foreign)).toBe('FORBIDDEN');
    expect(foreign.errors?.[0]?.message).toMatch(/Only members of team "vision-team"/);
    expect(codeOf(await mallory.raw(SET_TAG, { m: 'vision/resnet', t: 'latest', v: '1' }))).toBe('FORBIDDEN');
    expect(codeOf(await mallory.raw(`mutation { deprecateModuleVersion(ref: "vision/resnet@1") { id } }`))).toBe('FORBIDDEN');
    expect(codeOf(await mallory.raw(ROLLBACK, { m: 'vision/resnet', t: 'latest' }))).toBe('FORBIDDEN');
    expect((await t.api.gql(`{ module(name: "vision/resnet") { versions { version } } }`)).module.versions).toHaveLength(1);

    // CI: a service account joins the team and publishes
    const { createServiceAccount } = await t.api.gql(`mutation { createServiceAccount(name: "vision-ci") { token } }`);
    const ci = apiClient(t.url, createServiceAccount.token);
    expect(codeOf(await publish(ci, await moduleDir('vision', 'resnet', 'r2')))).toBe('FORBIDDEN');
    await alice.gql(`mutation { setTeamMember(team: "vision-team", identity: "vision-ci", role: member) { id } }`);
    expect((await publish(ci, await moduleDir('vision', 'resnet', 'r2'))).data.publishModuleVersion.version.version).toBe('2');

    // a viewer reads the catalog with owners, but cannot publish even into a team it belongs to
    await alice.gql(`mutation { setTeamMember(team: "vision-team", identity: "vera", role: member) { id } }`);
    const catalog = await viewer.gql(`{ modules(namespace: "vision") { fullName owner { name } tags { tag version { version } } } }`);
    expect(catalog.modules).toEqual([
      { fullName: 'vision/resnet', owner: { name: 'vision-team' }, tags: expect.arrayContaining([{ tag: 'latest', version: { version: '1' } }]) },
    ]);
    expect(codeOf(await publish(viewer, await moduleDir('vision', 'resnet', 'r3')))).toBe('FORBIDDEN');

    // removal takes effect on the next request
    await alice.gql(`mutation { removeTeamMember(team: "vision-team", identity: "vision-ci") { id } }`);
    expect(codeOf(await publish(ci, await moduleDir('vision', 'resnet', 'r4')))).toBe('FORBIDDEN');
  });

  it('refuses to create teams for non-admins, and bad team or namespace names', async () => {
    const bob = await userToken('bob');
    expect(codeOf(await bob.raw(`mutation { createTeam(name: "bobs") { id } }`))).toBe('FORBIDDEN');
    expect(codeOf(await t.api.raw(`mutation { createTeam(name: "Bad Name") { id } }`))).toBe('BAD_USER_INPUT');
    expect(codeOf(await t.api.raw(`mutation { createTeam(name: "vision-team") { id } }`))).toBe('CONFLICT');
    expect(codeOf(await t.api.raw(`mutation { assignNamespace(namespace: "../x", team: "vision-team") { id } }`))).toBe('BAD_USER_INPUT');
    expect(codeOf(await t.api.raw(`mutation { setTeamMember(team: "nope", identity: "bob") { id } }`))).toBe('NOT_FOUND');
    expect(codeOf(await t.api.raw(`mutation { setTeamMember(team: "vision-team", identity: "nobody") { id } }`))).toBe('NOT_FOUND');
  });
});

describe('catalog search', () => {
  it('finds modules by part of the name or description, with % and _ taken literally', async () => {
    const names = async (search: string) =>
      (await t.api.gql(`query ($s: String) { modules(search: $s) { fullName } }`, { s: search })).modules.map((m: any) => m.fullName);
    expect(await names('resn')).toEqual(['vision/resnet']);
    expect(await names('%')).toEqual([]);
  });
});

describe('the harness publish helper', () => {
  it('still publishes fixtures with PUBLISH', async () => {
    const r = await t.api.upload(PUBLISH, { tags: ['latest'] }, 'artifact', await packDirectory(await moduleDir('tags', 'h', 'x')));
    expect(r.data.publishModuleVersion.version.ref).toBe('tags/h@1');
  });
});
