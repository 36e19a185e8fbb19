// The task cache end to end on the embedded stack: hits that never reach an executor, misses for every key
// component that changed, outputs gone from the object store, identical tasks in flight, a crashed owner's
// reservation, read access, explain, preview, savings and invalidation.
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packDirectory } from '../../server/artifacts/archive';
import { cacheEntries, cacheReservations } from '../../server/db/tables/cache';
import { tasks } from '../../server/db/tables/runs';
import { fixturesDir, startTestApp, type TestApp } from '../harness/app';
import { apiClient, PUBLISH, RUN_EVENTS } from '../harness/client';

const START = `mutation ($w: String!, $p: JSON, $d: Domain, $r: Boolean, $ns: String) { startRun(workflow: $w, parameters: $p, domain: $d, refreshCache: $r, cacheNamespace: $ns) { id } }`;
const RUN = `query ($id: ID!) { run(id: $id) { id status domain tasks { id node status attempt reason outputs cacheKey cacheHit { sourceTask { id } sourceRun { id } savedMs } } } }`;
const EXPLAIN = `query ($id: ID!) { cacheExplain(taskId: $id) { hit message differences { component name } nearest { sourceTaskId } } }`;
const terminal = (e: any) => e.runEvents.__typename === 'RunStatusEvent' && ['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(e.runEvents.runStatus);

describe('task cache', () => {
  let t: TestApp;
  let memberToken: string;
  beforeAll(async () => {
    // A stand-in for governance: members may reuse only results of runs they started themselves.
    t = await startTestApp({}, { mayReuse: (identity, source) => !identity || identity.role === 'admin' || source.createdBy === identity.id });
    for (const m of ['keyed', 'uncached']) await t.publishFixture(m);
    await t.createWorkflow({
      name: 'pipeline',
      parameters: { x: { default: 1 }, opts: { default: { a: 1, b: [1, 2] } } },
      tasks: [
        { name: 'first', module: 'test/keyed', parameters: { x: '${params.x}', opts: '${params.opts}' } },
        { name: 'second', module: 'test/keyed', parameters: { y: 'fixed' }, dependsOn: ['first'] },
      ],
    });
    const created = await t.api.gql(`mutation { createServiceAccount(name: "member-bot", role: member) { token } }`);
    memberToken = created.createServiceAccount.token;
  });
  afterAll(() => t?.stop());

  const api = (token?: string) => (token ? apiClient(t.url, token) : t.api);
  async function runToEnd(workflow: string, parameters: object | null = null, extra: { d?: string; r?: boolean; ns?: string; token?: string } = {}) {
    const client = api(extra.token);
    const { startRun } = await client.gql(START, { w: workflow, p: parameters, d: extra.d ?? null, r: extra.r ?? null, ns: extra.ns ?? null });
    const events = (await client.subscribe<any>(RUN_EVENTS, { runId: startRun.id }, terminal)).map((e) => e.runEvents);
    const run = (await t.api.gql(RUN, { id: startRun.id })).run;
    return { run, events, n: Object.fromEntries(run.tasks.map((x: any) => [x.node, x])) as Record<string, any> };
  }

  it('completes a repeated task from cache without an executor, records its source and the time saved, and reports the hit live', async () => {
    const first = await runToEnd('pipeline', { x: 1 });
    expect(first.run.status).toBe('SUCCEEDED');
    expect(first.n.first.cacheHit).toBeNull();
    expect(first.n.first.cacheKey).toMatch(/^[0-9a-f]{64}$/);

    const second = await runToEnd('pipeline', { x: 1 });
    expect(second.run.status).toBe('SUCCEEDED');
    for (const node of ['first', 'second']) {
      const task = second.n[node];
      expect(task).toMatchObject({ status: 'SUCCEEDED', attempt: 0, reason: 'cache-hit', outputs: first.n[node].outputs });
      expect(task.cacheHit.sourceTask.id).toBe(first.n[node].id);
      expect(task.cacheHit.sourceRun.id).toBe(first.run.id);
      expect(task.cacheHit.savedMs).toBeGreaterThan(0);
    }
    const hitEvent = second.events.find((e) => e.__typename === 'TaskStatusEvent' && e.node === 'first' && e.status === 'SUCCEEDED');
    expect(hitEvent).toMatchObject({ reason: 'cache-hit' });
    expect(hitEvent.message).toContain(first.run.id);
    expect(second.events.some((e) => e.__typename === 'TaskStatusEvent' && e.status === 'QUEUED')).toBe(false);
    expect((await t.api.gql(EXPLAIN, { id: second.n.first.id })).cacheExplain.hit).toBe(true);
  });

  it('hits for a reordered parameter object, and misses, naming the difference, for a changed parameter or input content', async () => {
    const base = await runToEnd('pipeline', { x: 5, opts: { a: 1, b: [1, 2] } });
    const reordered = await runToEnd('pipeline', { opts: { b: [1, 2], a: 1.0 }, x: 5 });
    expect(reordered.n.first.cacheHit.sourceTask.id).toBe(base.n.first.id);

    const changed = await runToEnd('pipeline', { x: 6, opts: { a: 1, b: [1, 2] } });
    expect(changed.n.first.cacheHit).toBeNull();
    expect(changed.n.first.attempt).toBe(1);
    // `second` has the same parameters but receives different upstream outputs: a miss on its input.
    expect(changed.n.second.cacheHit).toBeNull();
    const first = (await t.api.gql(EXPLAIN, { id: changed.n.first.id })).cacheExplain;
    expect(first.hit).toBe(false);
    expect(first.differences).toEqual([{ component: 'parameter', name: 'x' }]);
    const second = (await t.api.gql(EXPLAIN, { id: changed.n.second.id })).cacheExplain;
    expect(second.differences).toEqual([{ component: 'input', name: 'first' }]);
    expect(second.message).toContain('input first has a different content digest');
  });

  it('misses on a new module version, and never reuses across domains', async () => {
    await t.createWorkflow({ name: 'single', tasks: [{ name: 'only', module: 'test/keyed@latest', parameters: { v: 'same' } }] });
    const before = await runToEnd('single');
    expect((await runToEnd('single')).n.only.cacheHit).not.toBeNull();
    expect((await runToEnd('single', null, { d: 'production' })).n.only.cacheHit).toBeNull();

    const dir = await mkdtemp(path.join(t.dataDir, 'keyed-v2-'));
    await cp(path.join(fixturesDir, 'modules', 'keyed'), dir, { recursive: true });
    await writeFile(path.join(dir, 'atelier.module.yaml'), `namespace: test\nname: keyed\nentrypoint: main.mjs\nruntime: node\ncache: { version: "2" }\n`);
    const published = await t.api.upload(PUBLISH, { tags: ['latest'] }, 'artifact', await packDirectory(dir));
    expect(published.data.publishModuleVersion.created).toBe(true);
    const after = await runToEnd('single');
    expect(after.n.only.cacheHit).toBeNull();
    const explained = (await t.api.gql(EXPLAIN, { id: after.n.only.id })).cacheExplain;
    expect(explained.nearest.sourceTaskId).toBe(before.n.only.id);
    expect(explained.differences.map((d: any) => d.component)).toEqual(['module', 'cacheVersion']);
  });

  it('gives an experimentation run a private namespace that neither uses nor feeds the shared entries', async () => {
    await t.createWorkflow({ name: 'trial', domain: 'experimentation', tasks: [{ name: 'only', module: 'test/keyed', parameters: { v: 'trial' } }] });
    expect((await runToEnd('trial')).n.only.cacheHit).toBeNull();
    const mine = await runToEnd('trial', null, { ns: 'alice-sweep' });
    expect(mine.run.status).toBe('SUCCEEDED');
    expect(mine.n.only.cacheHit).toBeNull(); // the shared entry is not used
    expect((await runToEnd('trial', null, { ns: 'alice-sweep' })).n.only.cacheHit).not.toBeNull(); // its own is
    const shared = await runToEnd('trial');
    expect(shared.n.only.cacheHit.sourceRun.id).not.toBe(mine.run.id); // and it fed nothing shared
    const refused = await api().raw(START, { w: 'trial', d: 'production', ns: 'alice-sweep' });
    expect(refused.errors?.[0]?.message).toMatch(/Only experimentation runs may use a private cache namespace/);
    const badName = await api().raw(START, { w: 'trial', ns: 'Alice Sweep!' });
    expect(badName.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(badName.errors?.[0]?.message).toMatch(/cacheNamespace is 1–63 lowercase letters/);
  });

  it('misses, and drops the entry, when an output the entry references is gone from the object store', async () => {
    const digest = await t.app.services.store.put(new TextEncoder().encode(`model ${Date.now()}`));
    await t.createWorkflow({ name: 'with-object', tasks: [{ name: 'train', module: 'test/keyed', parameters: { ref: digest } }] });
    const first = await runToEnd('with-object');
    expect(first.n.train.outputs.ref).toBe(digest);
    expect((await runToEnd('with-object')).n.train.cacheHit).not.toBeNull();

    await rm(path.join(t.dataDir, 'objects', 'sha256', digest.slice(7, 9), digest.slice(7)));
    const after = await runToEnd('with-object');
    expect(after.run.status).toBe('SUCCEEDED');
    expect(after.n.train.cacheHit).toBeNull();
    expect(after.n.train.attempt).toBe(1);
  });

  it('runs two identical tasks in flight at once only once: the second waits for the first and hits', async () => {
    await t.createWorkflow({
      name: 'twins',
      tasks: [
        { name: 'a', module: 'test/keyed', parameters: { ms: 400, tag: 'twins' } },
        { name: 'b', module: 'test/keyed', parameters: { ms: 400, tag: 'twins' } },
      ],
    });
    const [one, two] = await Promise.all([runToEnd('twins'), runToEnd('twins')]);
    const all = [...one.run.tasks, ...two.run.tasks];
    expect(all.every((x: any) => x.status === 'SUCCEEDED')).toBe(true);
    expect(all.filter((x: any) => x.cacheHit === null)).toHaveLength(1);
    expect(all.filter((x: any) => x.attempt > 0)).toHaveLength(1);
  });

  it('lets another task take over the reservation of an owner that crashed', async () => {
    await t.createWorkflow({ name: 'orphaned', tasks: [{ name: 'work', module: 'test/keyed', parameters: { tag: 'orphaned' } }] });
    const [preview] = (await t.api.gql(`query { cachePreview(workflow: "orphaned") { node hit key } }`)).cachePreview;
    expect(preview.hit).toBe(false);
    // An owner that reserved the key and then died: it never renews, so its reservation runs out. (Its components
    // are only what its entry would be written with; any will do.)
    const { db } = t.app.database;
    const owner = '00000000-0000-4000-8000-000000000001';
    const [anyTask] = await db.select().from(tasks).limit(1);
    await db.insert(cacheReservations).values({
      key: preview.key,
      taskId: owner,
      runId: anyTask!.runId,
      components: (await db.select().from(cacheEntries).limit(1))[0]!.components,
      module: 'test/keyed',
      moduleVersionId: anyTask!.moduleVersionId!,
      heartbeatAt: new Date(),
      expiresAt: new Date(Date.now() + 120_000),
    });
    const { startRun } = await t.api.gql(START, { w: 'orphaned' });
    // The new task waits on the reservation, however long the machine takes to get it there.
    const taskOf = async () => (await t.api.gql(`query ($id: ID!) { run(id: $id) { tasks { status message } } }`, { id: startRun.id })).run.tasks[0];
    let waiting = await taskOf();
    for (const deadline = Date.now() + 30_000; !waiting.message?.includes(owner) && Date.now() < deadline; waiting = await taskOf()) {
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(waiting.status).toBe('READY');
    expect(waiting.message).toContain(owner);
    // Its owner never renews: the reservation runs out (set here rather than waited for), and the task takes it over.
    await db.update(cacheReservations).set({ expiresAt: new Date() }).where(eq(cacheReservations.key, preview.key));
    await t.api.subscribe<any>(RUN_EVENTS, { runId: startRun.id }, terminal);
    const done = (await t.api.gql(RUN, { id: startRun.id })).run.tasks[0];
    expect(done).toMatchObject({ status: 'SUCCEEDED', attempt: 1, cacheHit: null });
  });

  it('never gives a caller a result it may not read, and reuses its own', async () => {
    await t.createWorkflow({ name: 'private', tasks: [{ name: 'secret', module: 'test/keyed', parameters: { tag: 'private' } }] });
    const admin = await runToEnd('private');
    const [preview] = (await api(memberToken).gql(`query { cachePreview(workflow: "private") { hit reason } }`)).cachePreview;
    // Answered exactly like a key with no entry: a preview is no oracle for what others ran (issue 14).
    expect(preview).toEqual({ hit: false, reason: 'no usable entry of its key' });
    const member = await runToEnd('private', null, { token: memberToken });
    expect(member.n.secret.cacheHit).toBeNull();
    expect(member.n.secret.attempt).toBe(1);
    const again = await runToEnd('private', null, { token: memberToken });
    expect(again.n.secret.cacheHit.sourceRun.id).toBe(member.run.id);
    expect(again.n.secret.cacheHit.sourceRun.id).not.toBe(admin.run.id);
  });

  it('executes modules that opt out, and every task of a run that asks for a refresh', async () => {
    await t.createWorkflow({ name: 'opted-out', tasks: [{ name: 'fresh', module: 'test/uncached', parameters: { tag: 'out' } }] });
    await runToEnd('opted-out');
    const out = await runToEnd('opted-out');
    expect(out.n.fresh).toMatchObject({ cacheHit: null, cacheKey: null, attempt: 1 });

    await t.createWorkflow({ name: 'refreshed', tasks: [{ name: 'r', module: 'test/keyed', parameters: { tag: 'refresh' } }] });
    await runToEnd('refreshed');
    const refreshed = await runToEnd('refreshed', null, { r: true });
    expect(refreshed.n.r).toMatchObject({ cacheHit: null, attempt: 1 });
    // The refresh replaced the entry: the next run reuses the refreshed result.
    expect((await runToEnd('refreshed')).n.r.cacheHit.sourceRun.id).toBe(refreshed.run.id);
  });

  it('previews which tasks will hit, and reports the savings by module, workflow and team', async () => {
    await runToEnd('pipeline', { x: 42 });
    const preview = (
      await t.api.gql(`query ($p: JSON) { cachePreview(workflow: "pipeline", parameters: $p) { node hit reason sourceRunId } }`, { p: { x: 42 } })
    ).cachePreview;
    expect(preview.map((p: any) => [p.node, p.hit])).toEqual([
      ['first', true],
      ['second', true],
    ]);
    const miss = (await t.api.gql(`query ($p: JSON) { cachePreview(workflow: "pipeline", parameters: $p) { node hit reason } }`, { p: { x: 43 } }))
      .cachePreview;
    expect(miss.map((p: any) => [p.node, p.hit])).toEqual([
      ['first', false],
      ['second', false],
    ]);
    expect(miss[1].reason).toContain('upstream first executes');

    const since = new Date(Date.now() - 3_600_000).toISOString();
    const stats = async (groupBy: string) =>
      (
        await t.api.gql(`query ($s: DateTime!, $g: CacheGrouping) { cacheStats(since: $s, groupBy: $g) { group hits misses hitRate savedHours } }`, {
          s: since,
          g: groupBy,
        })
      ).cacheStats;
    const byModule = await stats('module');
    const keyed = byModule.find((r: any) => r.group === 'test/keyed');
    expect(keyed.hits).toBeGreaterThan(0);
    expect(keyed.misses).toBeGreaterThan(0);
    expect(keyed.hitRate).toBeCloseTo(keyed.hits / (keyed.hits + keyed.misses));
    expect(keyed.savedHours).toBeGreaterThan(0);
    expect((await stats('workflow')).map((r: any) => r.group)).toContain('pipeline');

    // By team: the team owning the run's workflow, the same teams the cost figures name (a module's namespace is no
    // team: the Savings page said "examples" where Costs said "(no team)" for the same runs).
    await t.team('ml', ['member-bot']);
    const member = api(memberToken);
    await member.gql(`mutation ($spec: String!) { createWorkflow(spec: $spec) { created } }`, {
      spec: JSON.stringify({ name: 'ml-pipeline', tasks: [{ name: 'k', module: 'test/keyed', parameters: { tag: 'ml-team' } }] }),
    });
    await runToEnd('ml-pipeline', null, { token: memberToken });
    expect((await runToEnd('ml-pipeline', null, { token: memberToken })).n.k.cacheHit).not.toBeNull();
    const byTeam = await stats('team');
    expect(byTeam.map((r: any) => r.group)).toEqual(['(no team)', 'ml']);
    expect(byTeam.find((r: any) => r.group === 'ml')).toMatchObject({ hits: 1, misses: 1 });
    const { costs } = await t.api.gql(`query ($s: DateTime!) { costs(since: $s, groupBy: team) { group tasks } }`, { s: since });
    expect(costs.map((r: any) => r.group)).toEqual(['(no team)', 'ml']);

    // Over time, in buckets between boundaries (the Savings page's chart, in one read): the hour before `since` saw
    // nothing, the bucket from `since` on holds every task counted above.
    const over = (boundaries: string[]) =>
      t.api.raw(`query ($b: [DateTime!]!) { cacheSavingsOverTime(boundaries: $b) { start end hits misses savedHours } }`, { b: boundaries });
    const edges = [new Date(Date.parse(since) - 3_600_000).toISOString(), since, new Date(Date.now() + 60_000).toISOString()];
    const { data } = await over(edges);
    expect(data.cacheSavingsOverTime.map((b: any) => [b.start, b.end])).toEqual(
      [edges.slice(0, 2), edges.slice(1)].map((pair) => pair.map((e) => new Date(e).toISOString())),
    );
    expect(data.cacheSavingsOverTime[0]).toMatchObject({ hits: 0, misses: 0, savedHours: 0 });
    const total = (key: 'hits' | 'misses' | 'savedHours') => byTeam.reduce((sum: number, r: any) => sum + r[key], 0);
    expect(data.cacheSavingsOverTime[1]).toMatchObject({ hits: total('hits'), misses: total('misses') });
    expect(data.cacheSavingsOverTime[1].savedHours).toBeCloseTo(total('savedHours'));
    for (const bad of [[since], [since, since], [edges[1]!, edges[0]!], Array.from({ length: 402 }, (_, i) => new Date(Date.now() + i * 1000).toISOString())]) {
      const refused = await over(bad);
      expect(refused.errors?.[0]?.extensions?.code, `${bad.length} boundaries`).toBe('BAD_USER_INPUT');
    }
  });

  it('keeps an entry for its module’s ttlSeconds, then misses', async () => {
    const dir = await mkdtemp(path.join(t.dataDir, 'keyed-ttl-'));
    await cp(path.join(fixturesDir, 'modules', 'keyed'), dir, { recursive: true });
    await writeFile(
      path.join(dir, 'atelier.module.yaml'),
      `namespace: test\nname: keyed-ttl\nentrypoint: main.mjs\nruntime: node\ncache: { ttlSeconds: 3600 }\n`,
    );
    expect((await t.api.upload(PUBLISH, {}, 'artifact', await packDirectory(dir))).errors).toBeUndefined();
    await t.createWorkflow({ name: 'ttl', tasks: [{ name: 'short-lived', module: 'test/keyed-ttl' }] });
    const first = await runToEnd('ttl');
    const { db } = t.app.database;
    const [entry] = await db.select().from(cacheEntries).where(eq(cacheEntries.key, first.n['short-lived'].cacheKey));
    expect(entry!.expiresAt!.getTime() - entry!.createdAt.getTime()).toBe(3_600_000);
    expect((await runToEnd('ttl')).n['short-lived'].cacheHit).not.toBeNull();
    await db
      .update(cacheEntries)
      .set({ expiresAt: new Date(Date.now() - 1000) })
      .where(eq(cacheEntries.key, entry!.key));
    expect((await runToEnd('ttl')).n['short-lived']).toMatchObject({ cacheHit: null, attempt: 1 });
  });

  it('invalidates by module, and evicts the least recently used entries beyond the size budget', async () => {
    await t.createWorkflow({ name: 'evict', tasks: [{ name: 'e', module: 'test/keyed', parameters: { tag: 'evict' } }] });
    const first = await runToEnd('evict');
    const version = (await t.api.gql(`query ($id: ID!) { run(id: $id) { tasks { moduleVersion { version } } } }`, { id: first.run.id })).run.tasks[0]
      .moduleVersion.version;
    expect((await t.api.gql(`mutation ($m: String) { invalidateCache(module: $m) }`, { m: `test/keyed@${version}` })).invalidateCache).toBeGreaterThan(0);
    expect((await runToEnd('evict')).n.e.cacheHit).toBeNull();
    const missing = await t.api.raw(`mutation { invalidateCache(module: "test/keyed@999") }`);
    expect(missing.errors?.[0]?.message).toContain('has no version 999');
    const removed = (await t.api.gql(`mutation { invalidateCache(module: "test/keyed") }`)).invalidateCache;
    expect(removed).toBeGreaterThan(0);
    expect((await runToEnd('evict')).n.e.cacheHit).toBeNull();
    const bad = await t.api.raw(`mutation { invalidateCache(module: "no-slash") }`);
    expect(bad.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');

    const { createTaskCache } = await import('../../server/cache/store');
    const { db } = t.app.database;
    const entries = await db.select().from(cacheEntries);
    const newest = entries.reduce((a, b) => (a.lastUsedAt > b.lastUsedAt ? a : b));
    const tight = createTaskCache({ objects: t.app.services.store, reservationTtlMs: 1000, maxBytes: newest.sizeBytes });
    expect(await tight.evict(db, new Date())).toBe(entries.length - 1);
    expect((await db.select({ key: cacheEntries.key }).from(cacheEntries)).map((e) => e.key)).toEqual([newest.key]);
  });
});
