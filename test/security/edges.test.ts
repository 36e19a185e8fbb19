// Issue 14, leaks 5, 6, 8, 9 and 10, each example with its siblings, against one real server:
// the git hook's repository allowlist (normalised paths and URLs, whole segments, symlinks), replayed and stale
// webhook deliveries and older commits moving tags, credentials in a module's source URL, `/artifacts` under a
// token's scopes without revealing the server's paths, and hot clusters ended only by their owners.
import { execFileSync } from 'node:child_process';
import { createHmac, randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { and, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packDirectory } from '../../server/artifacts/archive';
import { auditEvents } from '../../server/db/tables/governance';
import { moduleVersions } from '../../server/db/tables/modules';
import { resolveRepository } from '../../server/modules/git-hook';
import { scrubStoredSources } from '../../server/modules/source';
import { startTestApp, type TestApp } from '../harness/app';
import type { ApiClient } from '../harness/client';

const SECRET = 'edges-hook-secret-0123456789';
let t: TestApp;
let scratch: string;
let allowed: string; // the listed directory of repositories
let repo: string; // a bare repository inside it
let other: string; // a bare repository outside it
let work: string;
let alice: ApiClient & { token: string }; // team crm
let carol: ApiClient & { token: string }; // team crm
let bob: ApiClient & { token: string }; // team fin
let dave: ApiClient & { token: string }; // no team
let erin: ApiClient & { token: string }; // no team
let vic: ApiClient & { token: string }; // viewer
let multi: ApiClient & { token: string }; // teams crm and fin

const git = (cwd: string, ...args: string[]) =>
  execFileSync('git', args, {
    cwd,
    env: { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@example.com', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@example.com' },
  })
    .toString()
    .trim();

async function commit(body: string, remote = 'origin'): Promise<string> {
  await mkdir(path.join(work, 'train'), { recursive: true });
  await writeFile(path.join(work, 'train', 'atelier.module.yaml'), 'namespace: ml\nname: train\nentrypoint: main.mjs\nruntime: node\n');
  await writeFile(path.join(work, 'train', 'main.mjs'), body);
  git(work, 'add', '-A');
  git(work, 'commit', '-qm', body);
  git(work, 'push', '-q', remote, 'HEAD:main');
  return git(work, 'rev-parse', 'HEAD');
}

interface Delivery {
  body: string;
  headers: Record<string, string>;
}

/** A delivery signed as the README says: HMAC-SHA256 of `TIMESTAMP.DELIVERY.BODY`. */
function signed(event: unknown, options: { at?: number; id?: string; secret?: string } = {}): Delivery {
  const body = JSON.stringify(event);
  const at = String(options.at ?? Math.floor(Date.now() / 1000));
  const id = options.id ?? randomUUID();
  const mac = createHmac('sha256', options.secret ?? SECRET)
    .update(`${at}.${id}.${body}`)
    .digest('hex');
  return { body, headers: { 'x-atelier-timestamp': at, 'x-atelier-delivery': id, 'x-atelier-signature': `sha256=${mac}` } };
}

async function send(d: Delivery, extra: Record<string, string> = {}) {
  const res = await fetch(`${t.url}/hooks/git`, { method: 'POST', headers: { 'content-type': 'application/json', ...d.headers, ...extra }, body: d.body });
  return { status: res.status, body: (await res.json()) as any };
}

const tagsOf = async () =>
  Object.fromEntries(
    (await t.api.gql(`{ module(name: "ml/train") { tags { tag version { version } } } }`)).module.tags.map((x: any) => [x.tag, x.version.version]),
  );
const versionCount = async () => (await t.app.database.db.select().from(moduleVersions)).length;
const audits = (action: string, decision: 'allow' | 'deny') =>
  t.app.database.db
    .select()
    .from(auditEvents)
    .where(and(eq(auditEvents.action, action), eq(auditEvents.decision, decision)));

beforeAll(async () => {
  scratch = await mkdtemp(path.join(os.tmpdir(), 'atelier-edges-'));
  allowed = path.join(scratch, 'allowed');
  repo = path.join(allowed, 'repo.git');
  other = path.join(scratch, 'other', 'repo.git');
  work = path.join(scratch, 'work');
  for (const bare of [repo, other, path.join(scratch, 'allowed-evil', 'repo.git')]) {
    await mkdir(bare, { recursive: true });
    git(bare, 'init', '-q', '--bare');
  }
  git(scratch, 'clone', '-q', repo, work);
  git(work, 'remote', 'add', 'other', other);
  git(work, 'remote', 'add', 'evil', path.join(scratch, 'allowed-evil', 'repo.git'));
  await symlink(other, path.join(allowed, 'link.git'));
  t = await startTestApp({ ATELIER_GIT_HOOK_SECRET: SECRET, ATELIER_GIT_REPOSITORIES: `${allowed},https://git.example.com/ml/allowed` });
  await t.api.gql(`mutation { createServiceAccount(name: "git-hook") { token } }`);
  await t.team('ml', ['git-hook'], ['ml']);
  alice = await t.user('alice');
  carol = await t.user('carol');
  bob = await t.user('bob');
  dave = await t.user('dave');
  erin = await t.user('erin');
  multi = await t.user('multi');
  vic = await t.user('vic', 'viewer');
  await t.team('crm', ['alice', 'carol', 'multi']);
  await t.team('fin', ['bob', 'multi']);
});
afterAll(async () => {
  await t?.stop();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

describe('leak 5: the git allowlist matches normalised locations by whole segments', () => {
  it('refuses …/allowed/../other (the example) and publishes nothing', async () => {
    const sha = await commit('console.log("other");\n', 'other');
    const r = await send(signed({ repository: `${allowed}/../other/repo.git`, commit: sha }));
    expect(r.status, JSON.stringify(r.body)).toBe(403);
    expect(r.body.error.message).toMatch(/ATELIER_GIT_REPOSITORIES/);
    expect(await versionCount()).toBe(0);
  });

  it('refuses siblings: a prefix-sharing directory, %2e%2e in a file URL, a symlink out of the list', async () => {
    const sha = await commit('console.log("sibling");\n', 'other');
    git(work, 'push', '-q', 'evil', 'HEAD:main');
    for (const repository of [
      path.join(scratch, 'allowed-evil', 'repo.git'),
      `file://${allowed}/%2e%2e/other/repo.git`,
      `file://${allowed}/%2E%2E/other/repo.git`,
      `${allowed}/./../other/repo.git`,
      `${allowed}//..//other/repo.git`,
      path.join(allowed, 'link.git'),
      `file://${path.join(allowed, 'link.git')}`,
      `ext::sh -c touch% ${scratch}/pwned`,
    ]) {
      const r = await send(signed({ repository, commit: sha }));
      expect(r.status, `${repository}: ${JSON.stringify(r.body)}`).toBe(403);
    }
    expect(await versionCount()).toBe(0);
  });

  it('still builds from a listed repository however its path is spelled', async () => {
    const sha = await commit('console.log("v1");\n');
    for (const repository of [repo, `${allowed}/./repo.git/`, `file://${repo}`, `${allowed}/x/../repo.git`]) {
      const r = await send(signed({ repository, ref: 'refs/heads/main', commit: sha }));
      expect(r.status, `${repository}: ${JSON.stringify(r.body)}`).toBe(200);
    }
    expect(await versionCount()).toBe(1);
  });

  it('normalises remote URLs: scheme, host case, default port, dot segments, percent-encoding, .git, userinfo', async () => {
    const list = ['https://git.example.com/ml/allowed'];
    const ok = async (url: string) => (await resolveRepository(url, list)) !== null;
    for (const url of [
      'https://git.example.com/ml/allowed',
      'https://GIT.Example.com:443/ml/allowed.git',
      'https://user:pw@git.example.com/ml/allowed/',
      'https://git.example.com/ml/./allowed',
      'https://git.example.com/ml/allowed/sub/repo.git',
      'HTTPS://git.example.com/ml/%61llowed',
    ])
      expect(await ok(url), url).toBe(true);
    for (const url of [
      'https://git.example.com/ml/allowed/../other',
      'https://git.example.com/ml/allowed/%2e%2e/other',
      'https://git.example.com/ml/allowed/%2E%2E/other',
      'https://git.example.com/ml/allowed%2F..%2Fother',
      'https://git.example.com/ml/allowed-evil',
      'https://git.example.com/ml/allowedx.git',
      'https://git.example.com.evil.org/ml/allowed',
      'https://git.example.com@evil.org/ml/allowed',
      'http://git.example.com/ml/allowed',
      'https://git.example.com:8443/ml/allowed',
      'ssh://git@git.example.com/ml/allowed',
      'git.example.com:ml/allowed',
      'https://git.example.com/ml/allowed?x=1',
      'ext::sh -c touch% /tmp/pwned',
      'https://git.example.com/ml',
    ])
      expect(await ok(url), url).toBe(false);
    // with no list, remote URLs are allowed and local ones never
    expect(await resolveRepository('https://host.example/a/b.git', [])).not.toBeNull();
    for (const local of [repo, `file://${repo}`, 'ext::sh -c x']) expect(await resolveRepository(local, []), local).toBeNull();
  });
});

describe('leak 6: webhook deliveries are signed with a timestamp and an id, and remembered', () => {
  let v1 = '';
  let v2 = '';
  let first: Delivery;

  it('refuses the exact resend of a delivery, and an old commit cannot move a tag back (the example)', async () => {
    v1 = git(work, 'rev-parse', 'HEAD'); // built as ml/train@1 above
    expect(await tagsOf()).toEqual({ latest: '1', latestAlpha: '1' });
    first = signed({ repository: repo, ref: 'refs/heads/main', commit: v1 });
    expect((await send(first)).status).toBe(200);
    v2 = await commit('console.log("v2");\n');
    const r2 = await send(signed({ repository: repo, ref: 'refs/heads/main', commit: v2 }));
    expect(r2.status, JSON.stringify(r2.body)).toBe(200);
    expect(await tagsOf()).toEqual({ latest: '1', latestAlpha: '2' });
    const replay = await send(first);
    expect(replay.status).toBe(409);
    expect(replay.body.error.code).toBe('CONFLICT');
    expect(replay.body.error.message).toMatch(/already received/);
    expect(await tagsOf()).toEqual({ latest: '1', latestAlpha: '2' });
  });

  it('a new delivery naming an older commit keeps the tags, saying why; allowOlder moves them', async () => {
    const again = await send(signed({ repository: repo, ref: 'refs/heads/main', commit: v1 }));
    expect(again.status, JSON.stringify(again.body)).toBe(200);
    expect(again.body.modules[0].movedTags).toEqual([]);
    expect(again.body.modules[0].keptTags[0]).toMatchObject({ tag: 'latestAlpha' });
    expect(again.body.modules[0].keptTags[0].reason).toMatch(/newer commit/);
    expect(await tagsOf()).toEqual({ latest: '1', latestAlpha: '2' });
    // an explicit tag is guarded too
    const named = await send(signed({ repository: repo, commit: v1, tags: ['latestAlpha', 'stable'] }));
    expect(named.body.modules[0].movedTags).toEqual(['stable']);
    expect(await tagsOf()).toEqual({ latest: '1', latestAlpha: '2', stable: '1' });
    const explicit = await send(signed({ repository: repo, commit: v1, allowOlder: true }));
    expect(explicit.status, JSON.stringify(explicit.body)).toBe(200);
    expect(explicit.body.modules[0].movedTags).toEqual(['latestAlpha']);
    expect(await tagsOf()).toEqual({ latest: '1', latestAlpha: '1', stable: '1' });
    // forward again: a newer commit moves it
    expect((await send(signed({ repository: repo, commit: v2 }))).body.modules[0].movedTags).toEqual(['latestAlpha']);
  });

  it('refuses stale, future, unsigned-id, tampered and body-only signatures with 401, changing nothing', async () => {
    const before = await tagsOf();
    const event = { repository: repo, commit: v1, allowOlder: true };
    const now = Math.floor(Date.now() / 1000);
    const stale = await send(signed(event, { at: now - 6 * 60 }));
    expect(stale.status).toBe(401);
    expect(stale.body.error.message).toMatch(/timestamp/);
    expect((await send(signed(event, { at: now + 6 * 60 }))).status).toBe(401);
    const d = signed(event);
    expect((await send(d, { 'x-atelier-delivery': randomUUID() })).status).toBe(401); // the id is signed
    expect((await send(d, { 'x-atelier-timestamp': String(now + 1) })).status).toBe(401); // so is the time
    expect((await send({ body: d.body, headers: { 'x-atelier-signature': d.headers['x-atelier-signature']! } })).status).toBe(401);
    const bodyOnly = `sha256=${createHmac('sha256', SECRET).update(d.body).digest('hex')}`;
    expect((await send({ body: d.body, headers: { 'x-atelier-signature': bodyOnly } })).status).toBe(401);
    expect((await send({ body: d.body, headers: { 'x-hub-signature-256': bodyOnly } })).status).toBe(401);
    expect((await send(signed(event, { secret: 'wrong' }))).status).toBe(401);
    expect((await send(signed(event, { at: Number.NaN }))).status).toBe(401);
    expect(await tagsOf()).toEqual(before);
  });

  it('token-authenticated deliveries need a delivery id too, and it is remembered', async () => {
    const { createServiceAccount } = await t.api.gql(`mutation { createServiceAccount(name: "ml-ci") { token } }`);
    await t.api.gql(`mutation { setTeamMember(team: "ml", identity: "ml-ci") { id } }`);
    const body = JSON.stringify({ repository: repo, commit: v2 });
    const auth = { authorization: `Bearer ${createServiceAccount.token}` };
    const none = await send({ body, headers: auth });
    expect(none.status).toBe(400);
    expect(none.body.error.message).toMatch(/X-Atelier-Delivery/);
    const id = randomUUID();
    expect((await send({ body, headers: { ...auth, 'x-atelier-delivery': id } })).status).toBe(200);
    expect((await send({ body, headers: { ...auth, 'x-atelier-delivery': id } })).status).toBe(409);
  });
});

describe('leak 8: credentials never stay in a stored source URL', () => {
  const PUBLISH = `mutation ($a: File!, $s: ModuleSourceInput) { publishModuleVersion(artifact: $a, source: $s) { version { ref source } } }`;
  async function archive(name: string) {
    const dir = path.join(scratch, 'mods', name);
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, 'atelier.module.yaml'), `namespace: ml\nname: ${name}\nentrypoint: main.mjs\nruntime: node\n`);
    await writeFile(path.join(dir, 'main.mjs'), `console.log("${name}");\n`);
    return packDirectory(dir);
  }

  it('strips userinfo and credential-like query parameters published through the API (the example and siblings)', async () => {
    const cases: [string, string][] = [
      ['https://alice:s3cret@git.example.com/ml/a.git', 'https://git.example.com/ml/a.git'],
      ['https://ghp_TOKENVALUE@git.example.com/ml/b.git', 'https://git.example.com/ml/b.git'],
      ['https://git.example.com/ml/c.git?token=s3cret&ref=main', 'https://git.example.com/ml/c.git?ref=main'],
      ['https://git.example.com/ml/d.git?access_token=s3cret&Password=s3cret&private_token=s3cret&sig=s3cret', 'https://git.example.com/ml/d.git'],
      ['ssh://deploy:s3cret@git.example.com/ml/e.git', 'ssh://git.example.com/ml/e.git'],
      ['deploy:s3cret@git.example.com:ml/f.git', 'git.example.com:ml/f.git'],
      ['git@git.example.com:ml/g.git', 'git@git.example.com:ml/g.git'],
    ];
    for (const [i, [given, stored]] of cases.entries()) {
      const r = await t.api.upload(PUBLISH, { s: { repository: given, commit: 'a'.repeat(40) } }, 'a', await archive(`src${i}`));
      expect(r.errors, JSON.stringify(r.errors)).toBeUndefined();
      expect(r.data.publishModuleVersion.version.source.repository, given).toBe(stored);
      const seen = await vic.gql(`{ moduleVersion(ref: "ml/src${i}@1") { source } }`);
      expect(JSON.stringify(seen)).not.toMatch(/s3cret|TOKENVALUE/);
    }
  });

  it('a row stored before the fix is shown without its credentials', async () => {
    const [row] = await t.app.database.db.select().from(moduleVersions).limit(1);
    await t.app.database.db
      .update(moduleVersions)
      .set({ source: { repository: 'https://old:s3cret@git.example.com/x.git?token=s3cret' } })
      .where(eq(moduleVersions.id, row!.id));
    const { modules } = await vic.gql(`{ modules { versions { source } } }`);
    expect(JSON.stringify(modules)).not.toMatch(/s3cret/);
    expect(JSON.stringify(modules)).toContain('https://git.example.com/x.git');
  });

  it('a row stored before the fix loses its credentials in the database itself at the next start', async () => {
    const db = t.app.database.db;
    const [row] = await db.select().from(moduleVersions).limit(1);
    const given = 'https://old:s3cret@git.example.com/y.git?token=s3cret&ref=main';
    await db
      .update(moduleVersions)
      .set({ source: { repository: given, commit: 'b'.repeat(40) } })
      .where(eq(moduleVersions.id, row!.id));
    expect(await scrubStoredSources(db)).toBeGreaterThanOrEqual(1);
    const [after] = await db.select({ source: moduleVersions.source }).from(moduleVersions).where(eq(moduleVersions.id, row!.id));
    expect(after!.source).toEqual({ repository: 'https://git.example.com/y.git?ref=main', commit: 'b'.repeat(40) });
    const all = await db.select({ source: moduleVersions.source }).from(moduleVersions);
    expect(JSON.stringify(all)).not.toMatch(/s3cret/);
    expect(await scrubStoredSources(db)).toBe(0); // idempotent
  });
});

describe('leak 9: /artifacts applies the token’s scopes and never names server paths', () => {
  const get = (digest: string, token: string | null) =>
    fetch(`${t.url}/artifacts/${encodeURIComponent(digest)}`, { headers: token ? { authorization: `Bearer ${token}` } : {} }).then(async (r) => ({
      status: r.status,
      text: r.status === 200 ? '' : await r.text(),
    }));
  const token = async (name: string, scopes: string[]) =>
    (await t.api.gql(`mutation ($n: String!, $s: [String!]) { createServiceAccount(name: $n, scopes: $s) { token } }`, { n: name, s: scopes }))
      .createServiceAccount.token as string;

  it('a read:Run-only token cannot download a module archive, and the answer equals "no such object" (the example)', async () => {
    await t.publishFixture('echo');
    const [row] = await t.app.database.db.select().from(moduleVersions).limit(1);
    const runOnly = await token('runs-only', ['read:Run']);
    const forbidden = await get(row!.digest, runOnly);
    const missing = await get(`sha256:${'e'.repeat(64)}`, runOnly);
    expect(forbidden.status).toBe(404);
    expect(forbidden).toEqual(missing);
    // siblings: other scopes that do not cover module versions
    for (const scopes of [['start:Run'], ['read:Module'], ['publish:Module'], ['read:Task']]) {
      expect(await get(row!.digest, await token(`s-${scopes[0]!.replace(':', '-').toLowerCase()}`, scopes))).toEqual(missing);
    }
    const audited = await audits('artifact.read', 'deny');
    expect(audited.length).toBeGreaterThan(0);
    // allowed: read:ModuleVersion, read:*, unscoped
    expect((await get(row!.digest, await token('mv-reader', ['read:ModuleVersion']))).status).toBe(200);
    expect((await get(row!.digest, await token('all-reader', ['read:*']))).status).toBe(200);
    expect((await get(row!.digest, vic.token)).status).toBe(200);
    expect((await get(row!.digest, null)).status).toBe(401);
  });

  it('no answer names the data directory: missing, malformed, traversal, corrupt', async () => {
    const answers = [
      await get(`sha256:${'e'.repeat(64)}`, t.app.adminToken),
      await get('sha256:zz', t.app.adminToken),
      await get('../../etc/passwd', t.app.adminToken),
      await get('%2e%2e%2fadmin-token', t.app.adminToken),
    ];
    for (const a of answers) {
      expect(a.status).toBeGreaterThanOrEqual(400);
      expect(a.text).not.toContain(t.dataDir);
      expect(a.text).not.toMatch(/\/tmp\/|objects|sha256\/[0-9a-f]{2}\//);
    }
  });
});

describe('leak 10: a hot cluster belongs to its creator’s team', () => {
  const create = (api: ApiClient, name: string, team?: string) =>
    api.raw(`mutation ($n: String!, $t: String) { createHotCluster(name: $n, executor: "noop", pool: $n, team: $t) { name team { name } state } }`, {
      n: name,
      t: team ?? null,
    });
  const end = (api: ApiClient, name: string) => api.raw(`mutation ($n: String!) { endHotCluster(name: $n) { state } }`, { n: name });
  const state = async (name: string) =>
    (await t.api.gql(`{ hotClusters(includeEnded: true) { name state } }`)).hotClusters.filter((c: any) => c.name === name).map((c: any) => c.state);

  it('a member of another team cannot end it (the example): FORBIDDEN, audited, still live', async () => {
    const c = await create(alice, 'crm-warm');
    expect(c.errors, JSON.stringify(c.errors)).toBeUndefined();
    expect(c.data.createHotCluster).toMatchObject({ name: 'crm-warm', team: { name: 'crm' } });
    const r = await end(bob, 'crm-warm');
    expect(r.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(r.errors?.[0]?.message).toMatch(/team "crm"/);
    expect(await state('crm-warm')).toEqual(['STARTING']);
    expect((await audits('hotCluster.end', 'deny')).some((a) => a.subject === 'hotCluster:crm-warm')).toBe(true);
    for (const who of [dave, vic]) expect((await end(who, 'crm-warm')).errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(await state('crm-warm')).toEqual(['STARTING']);
    // a teammate may
    expect((await end(carol, 'crm-warm')).errors).toBeUndefined();
    expect(await state('crm-warm')).toEqual(['ENDED']);
  });

  it('admins end any; a teamless creator’s cluster is theirs alone; several teams must name one they belong to', async () => {
    await create(bob, 'fin-warm');
    expect((await end(t.api, 'fin-warm')).errors).toBeUndefined();
    const solo = await create(dave, 'dave-warm');
    expect(solo.data.createHotCluster.team).toBeNull();
    expect((await end(erin, 'dave-warm')).errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect((await end(dave, 'dave-warm')).errors).toBeUndefined();
    const ambiguous = await create(multi, 'multi-warm');
    expect(ambiguous.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(ambiguous.errors?.[0]?.message).toMatch(/crm, fin/);
    expect((await create(alice, 'sneaky', 'fin')).errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect((await create(multi, 'multi-warm', 'fin')).data.createHotCluster.team).toEqual({ name: 'fin' });
    expect((await end(alice, 'multi-warm')).errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect((await end(bob, 'multi-warm')).errors).toBeUndefined();
    // an unknown name is NOT_FOUND for anyone
    expect((await end(bob, 'nope')).errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
  });
});
