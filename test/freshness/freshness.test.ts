// Data freshness end to end: a dataset declares how often a new version is expected; the check records it going
// late and back on time once (with dataset.late / dataset.fresh webhook deliveries); runs reading it fail at once
// under FAIL, and under WAIT wait for a fresh version (then run) or fail once their wait is over. Going late opens
// the owning team's alert (with its alert.opened trigger signal); the new version resolves it.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packDirectory } from '../../server/artifacts/archive';
import { queryRows } from '../../server/db/client';
import { checkFreshness } from '../../server/governance/freshness';
import { freshnessAlerts } from '../../server/monitoring/freshness-alerts';
import { startTestApp, type TestApp } from '../harness/app';
import { runCli, showCli } from '../harness/cli';
import type { ApiClient } from '../harness/client';

let t: TestApp;
let alice: ApiClient;
let mallory: ApiClient;
let scratch: string;
let digests = 0;
const codeOf = (r: any) => r.errors?.[0]?.extensions?.code;
const msgOf = (r: any) => r.errors?.[0]?.message ?? '';
const db = () => t.app.services.db;
const SET = `mutation ($e: String, $p: FreshnessPolicy, $w: String) { setDatasetFreshness(dataset: "fresh/daily", expectedEvery: $e, policy: $p, maxWait: $w) { freshness { expectedEvery policy maxWait late lateSince dueAt lastVersionAt } } }`;
const freshness = async () => (await alice.gql(`{ dataset(name: "fresh/daily") { freshness { late lateSince dueAt policy } } }`)).dataset.freshness;
/** Makes every version of the dataset `hours` old, so it is late for any shorter expectation. */
const age = (hours: number) =>
  db().execute(
    sql`update dataset_versions set created_at = now() - ${hours} * interval '1 hour' where dataset_id = (select id from datasets where namespace = 'fresh' and name = 'daily')`,
  );
const addVersion = () =>
  alice.gql(
    `mutation { addDatasetVersion(name: "fresh/daily", columns: [{ name: "x", type: "int" }], digest: "sha256:${String(++digests).padStart(64, '0')}") { id } }`,
  );
const deliveries = async (type: string) =>
  (await queryRows<{ n: number }>(db(), sql`select count(*)::int as n from webhook_deliveries where event_type = ${type}`))[0]!.n;

async function until<T>(what: string, read: () => Promise<T>, ok: (v: T) => boolean, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await read();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
const taskOf = async (runId: string) => (await t.api.gql(`query ($id: ID!) { run(id: $id) { status tasks { status reason message } } }`, { id: runId })).run;
const start = async () => (await t.api.gql(`mutation { startRun(workflow: "reads-daily") { id } }`)).startRun.id as string;

beforeAll(async () => {
  t = await startTestApp({ ATELIER_WEBHOOK_ALLOWLIST: 'http://127.0.0.1:*' });
  scratch = await mkdtemp(path.join(os.tmpdir(), 'atelier-fresh-'));
  [alice, mallory] = await Promise.all([t.user('alice'), t.user('mallory')]);
  await t.team('fresh', ['alice'], ['fresh']);
  await alice.gql(
    `mutation { createDataset(name: "fresh/daily", domain: experimentation, columns: [{ name: "x", type: "int", label: { level: PUBLIC } }], digest: "sha256:${'0'.repeat(64)}") { id } }`,
  );
  await alice.gql(`mutation { createWebhook(team: "fresh", url: "http://127.0.0.1:9/hook", events: ["dataset.*"]) { secret } }`);
  const dir = path.join(scratch, 'reader');
  await mkdir(dir, { recursive: true });
  await writeFile(
    path.join(dir, 'atelier.module.yaml'),
    'namespace: fresh\nname: reader\nentrypoint: main.mjs\nruntime: node\ninputs:\n  - name: d\n    dataset: fresh/daily\n',
  );
  await writeFile(path.join(dir, 'main.mjs'), `console.log('read');\n`);
  const r = await t.api.upload(
    `mutation ($a: File!) { publishModuleVersion(artifact: $a, tags: ["latest"]) { version { ref } } }`,
    {},
    'a',
    await packDirectory(dir),
  );
  if (r.errors) throw new Error(JSON.stringify(r.errors));
  await t.createWorkflow({ name: 'reads-daily', domain: 'experimentation', tasks: [{ name: 'read', module: 'fresh/reader' }] });
});
afterAll(async () => {
  await t?.stop();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

describe('declaring freshness', () => {
  it('refuses a bad interval or policy with a clear error, and someone outside the owning team', async () => {
    for (const [e, message] of [
      ['soon', 'expectedEvery "soon" is not an interval; write it like 6h, 1d or 1d12h (units s, m, h, d, w).'],
      ['10s', 'expectedEvery must be between 1m and 366d, not 10s.'],
      ['1d 2x', 'expectedEvery "1d 2x" is not an interval; write it like 6h, 1d or 1d12h (units s, m, h, d, w).'],
    ]) {
      const r = await alice.raw(SET, { e, p: 'FAIL' });
      expect(codeOf(r)).toBe('BAD_USER_INPUT');
      expect(msgOf(r)).toBe(message);
    }
    expect(codeOf(await mallory.raw(SET, { e: '1h', p: 'FAIL' }))).toBe('FORBIDDEN');
    expect(await freshness()).toBeNull();
  });

  it('shows when the next version is due, and late once it is overdue', async () => {
    const { setDatasetFreshness } = await alice.gql(SET, { e: '1d12h', p: 'IGNORE' });
    expect(setDatasetFreshness.freshness).toMatchObject({ expectedEvery: '1d12h', policy: 'IGNORE', maxWait: '1h', late: false, lateSince: null });
    await alice.gql(SET, { e: '1h', p: 'FAIL' });
    await age(3);
    const f = await freshness();
    expect(f).toMatchObject({ late: true, policy: 'FAIL' });
    expect(f.lateSince).toBe(f.dueAt);
    const shown = await runCli({ url: t.url, token: t.app.adminToken }, ['dataset', 'show', 'fresh/daily']);
    expect(shown.code, showCli(shown)).toBe(0);
    expect(shown.stdout).toContain(`freshness: a new version every 1h (runs reading it while late: FAIL); LATE since ${f.lateSince}`);
  });
});

describe('the freshness check', () => {
  it('records a dataset going late once, with a dataset.late delivery and an open alert for its team', async () => {
    await checkFreshness(db(), new Date(), freshnessAlerts);
    await checkFreshness(db(), new Date(), freshnessAlerts);
    expect(await deliveries('dataset.late')).toBe(1);
    const { alerts } = await alice.gql(`{ alerts { key state title team { name } target { kind ref } events { kind } } }`);
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({ state: 'OPEN', team: { name: 'fresh' }, target: { kind: 'DATASET', ref: 'fresh/daily' }, events: [{ kind: 'OPENED' }] });
    expect(alerts[0].title).toMatch(/^fresh\/daily is late: a new version was due .* \(expected every 1h\); readers fail$/);
    expect(await deliveries('alert.opened')).toBe(0); // the team's webhook takes dataset.* only
    const signals = await db().execute(sql`select type, key from signals where type = 'alert.opened'`);
    expect(JSON.stringify(signals)).toContain(`"key":"alert:`);
    expect((await mallory.gql(`{ alerts { id } }`)).alerts).toEqual([]);
  });

  it('under FAIL, a run reading the late dataset fails at once, naming it, how late, and what to do', async () => {
    const id = await start();
    const run = await until(
      'the run to end',
      () => taskOf(id),
      (r) => r.status === 'FAILED',
    );
    expect(run.tasks[0].reason).toBe('dataset-late');
    expect(run.tasks[0].message).toMatch(/^dataset fresh\/daily is late by 2h\d*m? .*FAIL: add a new version with addDatasetVersion, then rerun\.$/);
  });

  it('under WAIT, a task waits for a fresh version and then runs; the check records the dataset fresh again', async () => {
    await alice.gql(SET, { e: '1h', p: 'WAIT', w: '10m' });
    const id = await start();
    const waiting = await until(
      'the task to wait',
      () => taskOf(id),
      (r) => /^waiting for a fresh version/.test(r.tasks[0].message ?? ''),
    );
    expect(waiting.tasks[0].status).toBe('READY');
    await addVersion();
    expect(
      (
        await until(
          'the run to end',
          () => taskOf(id),
          (r) => ['SUCCEEDED', 'FAILED'].includes(r.status),
        )
      ).status,
    ).toBe('SUCCEEDED');
    await checkFreshness(db(), new Date(), freshnessAlerts);
    expect(await deliveries('dataset.fresh')).toBe(1);
    expect((await freshness()).late).toBe(false);
    const { alerts } = await alice.gql(`{ alerts { state closedAt events { kind actor { name } reason } } }`);
    expect(alerts[0]).toMatchObject({ state: 'RESOLVED', closedAt: expect.any(String) });
    expect(alerts[0].events.map((e: any) => e.kind)).toEqual(['OPENED', 'RESOLVED']);
    expect(alerts[0].events[1]).toMatchObject({ actor: null, reason: expect.stringMatching(/^fresh\/daily is on time again/) });
  });

  it('under WAIT, a task that waited its maxWait fails with the reason', async () => {
    await age(3);
    const id = await start();
    await until(
      'the task to wait',
      () => taskOf(id),
      (r) => /^waiting/.test(r.tasks[0].message ?? ''),
    );
    await db().execute(sql`update tasks set queued_at = now() - interval '11 minutes' where run_id = ${id}`);
    const run = await until(
      'the run to end',
      () => taskOf(id),
      (r) => r.status === 'FAILED',
    );
    expect(run.tasks[0].message).toMatch(
      /^dataset fresh\/daily is late by .*; waited 10m for a fresh version \(policy WAIT\) and none came: add one, then rerun\.$/,
    );
  });
});
