// `POST /hooks/git` against a real local bare repository: signed and token-authenticated pushes build the
// modules at that commit with the commit recorded; bad signatures, foreign repositories, unknown commits,
// bad manifests and foreign namespaces are refused with nothing published.
import { execFileSync } from 'node:child_process';
import { createHmac, randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../harness/app';

const SECRET = 'hook-secret-for-tests-0123456789';
let t: TestApp;
let scratch: string;
let bare: string;
let work: string;

const git = (cwd: string, ...args: string[]) =>
  execFileSync('git', args, {
    cwd,
    env: { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@example.com', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@example.com' },
  })
    .toString()
    .trim();

async function writeModule(dir: string, ns: string, name: string, body = 'console.log("hi");\n', manifestExtra = '') {
  await mkdir(path.join(work, dir), { recursive: true });
  await writeFile(path.join(work, dir, 'atelier.module.yaml'), `namespace: ${ns}\nname: ${name}\nentrypoint: main.mjs\nruntime: node\n${manifestExtra}`);
  await writeFile(path.join(work, dir, 'main.mjs'), body);
}

/** Commits the work tree, pushes it to the bare repository, and returns the commit. */
function commitAndPush(message: string): string {
  git(work, 'add', '-A');
  git(work, 'commit', '-qm', message);
  git(work, 'push', '-q', 'origin', 'HEAD:main');
  return git(work, 'rev-parse', 'HEAD');
}

/** Posts a delivery: a new id and the current time, signed as HMAC-SHA256 of `TIMESTAMP.DELIVERY.BODY` when `sign`. */
async function post(body: unknown, headers: Record<string, string> = {}, sign = true) {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  const timestamp = String(Math.floor(Date.now() / 1000));
  const delivery = randomUUID();
  const signature = `sha256=${createHmac('sha256', SECRET).update(`${timestamp}.${delivery}.${text}`).digest('hex')}`;
  const res = await fetch(`${t.url}/hooks/git`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'x-atelier-delivery': delivery,
      'x-atelier-timestamp': timestamp,
      ...(sign ? { 'x-atelier-signature': signature } : {}),
      ...headers,
    },
    body: text,
  });
  return { status: res.status, body: (await res.json()) as any };
}

const moduleCount = async () => (await t.api.gql(`{ modules { id } }`)).modules.length;

beforeAll(async () => {
  scratch = await mkdtemp(path.join(os.tmpdir(), 'atelier-git-'));
  bare = path.join(scratch, 'repo.git');
  work = path.join(scratch, 'work');
  git(scratch, 'init', '-q', '--bare', bare);
  git(scratch, 'clone', '-q', bare, work);
  t = await startTestApp({ ATELIER_GIT_HOOK_SECRET: SECRET, ATELIER_GIT_REPOSITORIES: bare });
  // The hook's account publishes like anyone else: it needs a team owning the namespaces.
  await t.api.gql(`mutation { createTeam(name: "ml") { id } }`);
  await t.api.gql(`mutation { createServiceAccount(name: "git-hook") { token } }`);
  await t.api.gql(`mutation { setTeamMember(team: "ml", identity: "git-hook") { id } }`);
  await t.api.gql(`mutation { assignNamespace(namespace: "ml", team: "ml") { id } }`);
});
afterAll(async () => {
  await t?.stop();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

describe('POST /hooks/git', () => {
  let commit = '';

  it('refuses a bad signature, a missing one and a wrong token with 401, building nothing', async () => {
    await writeModule('train', 'ml', 'train');
    await writeModule('pipelines/score', 'ml', 'score');
    commit = commitAndPush('two modules');
    const event = { repository: bare, ref: 'refs/heads/main', commit };
    const forged = await post(event, { 'x-atelier-signature': `sha256=${'0'.repeat(64)}` });
    expect(forged.status).toBe(401);
    expect(forged.body.error.code).toBe('UNAUTHENTICATED');
    expect((await post(event, {}, false)).status).toBe(401);
    expect((await post(event, { authorization: 'Bearer atl_wrong' }, false)).status).toBe(401);
    // a signature over a different body does not carry over
    const tampered = await post(JSON.stringify({ ...event, ref: 'refs/heads/evil' }), {
      'x-atelier-signature': `sha256=${createHmac('sha256', SECRET).update(JSON.stringify(event)).digest('hex')}`,
    });
    expect(tampered.status).toBe(401);
    expect(await moduleCount()).toBe(0);
  });

  it('builds every module at a signed commit and records the commit, branch and repository', async () => {
    const r = await post({ repository: bare, ref: 'refs/heads/main', commit });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.modules.map((m: any) => [m.path, m.ref, m.created])).toEqual([
      ['pipelines/score', 'ml/score@1', true],
      ['train', 'ml/train@1', true],
    ]);
    const { moduleVersion } = await t.api.gql(`{ moduleVersion(ref: "ml/train@1") { source publishedBy { name } tags } }`);
    expect(moduleVersion.source).toEqual({ repository: bare, commit, branch: 'main', dirty: false });
    expect(moduleVersion.publishedBy.name).toBe('git-hook');
    expect(moduleVersion.tags.sort()).toEqual(['latest', 'latestAlpha']);
  });

  it('is idempotent: the same event again creates nothing new', async () => {
    const r = await post({ repository: bare, ref: 'refs/heads/main', commit });
    expect(r.status).toBe(200);
    expect(r.body.modules.every((m: any) => !m.created)).toBe(true);
  });

  it('accepts a webhook-style payload and a service token instead of a signature', async () => {
    await writeModule('train', 'ml', 'train', 'console.log("v2");\n');
    const next = commitAndPush('train v2');
    const { createServiceAccount } = await t.api.gql(`mutation { createServiceAccount(name: "ml-ci") { token } }`);
    await t.api.gql(`mutation { setTeamMember(team: "ml", identity: "ml-ci") { id } }`);
    const r = await post(
      { repository: { clone_url: bare }, ref: 'refs/heads/main', after: next, tags: ['candidate'] },
      { authorization: `Bearer ${createServiceAccount.token}` },
      false,
    );
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.modules.find((m: any) => m.path === 'train')).toMatchObject({ ref: 'ml/train@2', created: true, movedTags: ['candidate'] });
  });

  it('publishes nothing when any manifest at the commit is invalid, naming the file and field', async () => {
    const before = await moduleCount();
    await writeModule('broken', 'ml', 'broken', 'x', 'runtime2: nope\n');
    await writeModule('fine', 'ml', 'fine');
    const bad = commitAndPush('a broken module');
    const r = await post({ repository: bare, ref: 'refs/heads/main', commit: bad });
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('INVALID_MANIFEST');
    expect(r.body.error.details[0].path).toBe('broken/atelier.module.yaml');
    expect(r.body.error.message).toMatch(/unknown field "runtime2"/);
    expect(await moduleCount()).toBe(before);
    await rm(path.join(work, 'broken'), { recursive: true });
  });

  it('publishes nothing into a namespace the account’s teams do not own', async () => {
    const before = await moduleCount();
    await writeModule('other', 'finance', 'ledger');
    const foreign = commitAndPush('a module in another namespace');
    const r = await post({ repository: bare, ref: 'refs/heads/main', commit: foreign });
    expect(r.status).toBe(403);
    expect(r.body.error.message).toMatch(/Namespace "finance" is not owned/);
    expect(await moduleCount()).toBe(before);
  });

  it('refuses repositories not allowed, unknown commits, malformed events and oversized bodies', async () => {
    const elsewhere = await post({ repository: path.join(scratch, 'work'), commit: 'a'.repeat(40) });
    expect(elsewhere.status).toBe(403);
    expect(elsewhere.body.error.message).toMatch(/ATELIER_GIT_REPOSITORIES/);
    const unknown = await post({ repository: bare, commit: 'b'.repeat(40) });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error.message).toMatch(/is not in/);
    const malformed = await post({ repository: '--upload-pack=touch /tmp/pwned', commit: 'short' });
    expect(malformed.status).toBe(400);
    expect(malformed.body.error.details.map((d: any) => d.path)).toEqual(['repository', 'commit']);
    expect((await post('{not json')).status).toBe(400);
    expect((await post({ repository: bare, commit, padding: 'x'.repeat(1024 * 1024 + 10) })).status).toBe(413);
  });
});
