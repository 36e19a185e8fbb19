// Derived data is data (issue 14, leaks 1 and 2), against one real server with two teams, a viewer and a scoped
// token:
// 1. nothing computed from protected data (a failed run's message built from its tasks' stderr, a parent run's
//    message built from a child's, a map's) reaches a field, list, event or CLI line that a caller without the
//    domain's grant may read;
// 2. a workflow's spec (its literal parameter defaults) is its domain's data: withheld without the grant, and a run
//    of it may not be started in a less guarded domain (nor nested into one, nor previewed) to read them there.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packDirectory } from '../../server/artifacts/archive';
import { startTestApp, type TestApp } from '../harness/app';
import { runCli } from '../harness/cli';
import { type ApiClient, apiClient, RUN_EVENTS } from '../harness/client';

const STDERR_SECRET = 'stderr-s3cret-7f3a';
const DEFAULT_SECRET = 'default-s3cret-91bc';

let t: TestApp;
let scratch: string;
let mia: ApiClient & { token: string }; // team "prod", granted production
let oscar: ApiClient & { token: string }; // team "lab", granted adhoc only
let vera: ApiClient & { token: string }; // a viewer in no team
let scoped: ApiClient; // a service account of team "prod" whose token may only read runs and tasks
const runs = { failed: '', parent: '', map: '', defaults: '' };

const ended = (e: any) => e.runEvents.__typename === 'RunStatusEvent' && ['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(e.runEvents.runStatus);
const has = (r: unknown, secret: string) => JSON.stringify(r).includes(secret);
const codes = (r: { errors?: { extensions?: { code?: string } }[] }) => (r.errors ?? []).map((e) => e.extensions?.code);

async function runToEnd(api: ApiClient, workflow: string, extra: Record<string, unknown> = {}): Promise<string> {
  const { startRun } = await api.gql(`mutation ($w: String!, $p: JSON, $d: Domain) { startRun(workflow: $w, parameters: $p, domain: $d) { id } }`, {
    w: workflow,
    p: extra.parameters ?? null,
    d: extra.domain ?? null,
  });
  await t.api.subscribe(RUN_EVENTS, { runId: startRun.id }, ended);
  return startRun.id;
}

async function auditedSince(since: Date, action: string, decision: string): Promise<boolean> {
  const { auditEvents } = await t.api.gql(`query ($s: DateTime) { auditEvents(since: $s, limit: 1000) { action decision } }`, {
    s: new Date(since.getTime() - 1000).toISOString(),
  });
  return auditEvents.some((e: any) => e.action === action && e.decision === decision);
}

beforeAll(async () => {
  t = await startTestApp();
  scratch = await mkdtemp(path.join(os.tmpdir(), 'atelier-derived-'));
  await t.publishFixture('echo');
  // A module that fails with its `token` parameter on stderr: the task's message (run data) carries it.
  const dir = path.join(scratch, 'leaky');
  await mkdir(dir, { recursive: true });
  await writeFile(
    path.join(dir, 'atelier.module.yaml'),
    'namespace: sec\nname: leaky\nentrypoint: main.mjs\nruntime: node\ncache: { enabled: false }\nparameters:\n  type: object\n  properties:\n    token: { type: string }\n',
  );
  await writeFile(
    path.join(dir, 'main.mjs'),
    'const p = JSON.parse(process.env.ATELIER_PARAMS ?? "{}");\nconsole.error(`could not connect with ${p.token}`);\nprocess.exit(1);\n',
  );
  const published = await t.api.upload(
    `mutation ($a: File!) { publishModuleVersion(artifact: $a, tags: ["latest"]) { created } }`,
    {},
    'a',
    await packDirectory(dir),
  );
  if (published.errors) throw new Error(JSON.stringify(published.errors));

  mia = await t.user('mia');
  oscar = await t.user('oscar');
  vera = await t.user('vera', 'viewer');
  await t.team('prod', ['mia']);
  await t.team('lab', ['oscar']);
  await t.api.gql(`mutation { grantDomain(team: "prod", domain: production) { id } }`);
  await t.api.gql(`mutation { grantDomain(team: "lab", domain: adhoc) { id } }`);
  const sa = await t.api.gql(`mutation { createServiceAccount(name: "prod-reader", scopes: ["read:Run", "read:Task"]) { token } }`);
  await t.api.gql(`mutation { setTeamMember(team: "prod", identity: "prod-reader") { id } }`);
  scoped = apiClient(t.url, sa.createServiceAccount.token);

  await t.createWorkflow({
    name: 'prod-leaky',
    domain: 'production',
    parameters: { token: {} },
    tasks: [
      { name: 'boom', module: 'sec/leaky', parameters: { token: '${params.token}' } },
      { name: 'after', module: 'test/echo', dependsOn: ['boom'] },
    ],
  });
  await t.createWorkflow({
    name: 'prod-parent',
    domain: 'production',
    parameters: { token: {} },
    tasks: [{ name: 'sub', workflow: 'prod-leaky', parameters: { token: '${params.token}' } }],
  });
  await t.createWorkflow({
    name: 'prod-map',
    domain: 'production',
    parameters: { tokens: {} },
    tasks: [{ name: 'each', module: 'sec/leaky', map: { over: '${params.tokens}', as: 'token' } }],
  });
  await t.createWorkflow({
    name: 'prod-defaults',
    domain: 'production',
    description: 'Loads the warehouse with its service password as a default.',
    parameters: { password: { default: DEFAULT_SECRET, description: 'the warehouse password' } },
    tasks: [{ name: 'load', module: 'test/echo', parameters: { message: '${params.password}', steps: 1 } }],
  });
  await t.createWorkflow({
    name: 'exp-open',
    domain: 'experimentation',
    parameters: { greeting: { default: 'hello-open' } },
    tasks: [{ name: 'say', module: 'test/echo', parameters: { message: '${params.greeting}', steps: 1 } }],
  });
  runs.failed = await runToEnd(t.api, 'prod-leaky', { parameters: { token: STDERR_SECRET } });
  runs.parent = await runToEnd(t.api, 'prod-parent', { parameters: { token: STDERR_SECRET } });
  runs.map = await runToEnd(t.api, 'prod-map', { parameters: { tokens: [STDERR_SECRET, `${STDERR_SECRET}-2`] } });
  runs.defaults = await runToEnd(t.api, 'prod-defaults');
  // The cases below would prove nothing if the secrets were not where a granted member reads them.
  const { run } = await mia.gql(`query ($id: ID!) { run(id: $id) { status tasks { node message } } }`, { id: runs.failed });
  if (run.status !== 'FAILED' || !has(run.tasks, STDERR_SECRET)) throw new Error(`the failing run does not carry its secret: ${JSON.stringify(run)}`);
  const defaults = await mia.gql(`query ($id: ID!) { run(id: $id) { parameters } }`, { id: runs.defaults });
  if (!has(defaults, DEFAULT_SECRET)) throw new Error('the defaults run does not carry its default');
}, 120_000);

afterAll(async () => {
  await t?.stop();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

describe('leak 1: a failed run’s public message is built from node names and statuses only', () => {
  it('a production run’s message names the failed node and its status, never its stderr', async () => {
    for (const who of [oscar, vera, mia, scoped]) {
      const r = await who.raw(`query ($id: ID!) { run(id: $id) { status message } }`, { id: runs.failed });
      expect(r.errors).toBeUndefined();
      expect(r.data.run.status).toBe('FAILED');
      expect(r.data.run.message).toBe('boom failed');
      expect(has(r, STDERR_SECRET)).toBe(false);
    }
  });

  it('the detail stays where it is data: a task’s message, readable with the grant and withheld (audited) without', async () => {
    const granted = await mia.gql(`query ($id: ID!) { run(id: $id) { tasks { node message } } }`, { id: runs.failed });
    expect(granted.run.tasks.find((x: any) => x.node === 'boom').message).toContain(STDERR_SECRET);
    const since = new Date();
    const refused = await oscar.raw(`query ($id: ID!) { run(id: $id) { tasks { node message } } }`, { id: runs.failed });
    expect(codes(refused)).toContain('FORBIDDEN');
    expect(has(refused, STDERR_SECRET)).toBe(false);
    expect(await auditedSince(since, 'data.read', 'deny')).toBe(true);
  });

  it('a parent run’s message and its child runs’ messages (nested workflows)', async () => {
    const r = await oscar.raw(`query ($id: ID!) { run(id: $id) { status message childRuns { status message } tasks { node status childRun { message } } } }`, {
      id: runs.parent,
    });
    expect(r.data.run.status).toBe('FAILED');
    expect(r.data.run.message).toBe('sub failed');
    expect(r.data.run.childRuns[0]).toEqual({ status: 'FAILED', message: 'boom failed' });
    expect(has(r, STDERR_SECRET)).toBe(false);
  });

  it('a map’s run message', async () => {
    const r = await oscar.raw(`query ($id: ID!) { run(id: $id) { status message tasks { node status } } }`, { id: runs.map });
    expect(r.data.run.status).toBe('FAILED');
    // the map node and each of its items, by name and status
    expect(r.data.run.message.split('; ').sort()).toEqual(['each failed', 'each[0] failed', 'each[1] failed']);
    expect(has(r, STDERR_SECRET)).toBe(false);
  });

  it('the runs list, every column an outsider may ask for', async () => {
    const r = await oscar.raw(
      `{ runs(first: 100) { edges { node { id status message domain workflow { name } childRuns { message } tasks { node status reason waitingReason } } } } }`,
    );
    expect(r.data.runs.edges.length).toBeGreaterThanOrEqual(4);
    expect(has(r, STDERR_SECRET)).toBe(false);
  });

  it('the live events a granted member watches carry the same public run message', async () => {
    const { startRun } = await mia.gql(`mutation ($p: JSON) { startRun(workflow: "prod-leaky", parameters: $p) { id } }`, { p: { token: STDERR_SECRET } });
    const events = await mia.subscribe(RUN_EVENTS, { runId: startRun.id }, ended);
    const last = events.at(-1).runEvents;
    expect(last).toMatchObject({ __typename: 'RunStatusEvent', runStatus: 'FAILED', message: 'boom failed' });
  });

  it('an error about a parameter names its type, never its value (it may land in a schedule’s public fire message)', async () => {
    await t.createWorkflow({
      name: 'prod-map-param',
      domain: 'production',
      parameters: { items: {} },
      tasks: [{ name: 'each', module: 'test/echo', map: { over: '${params.items}', as: 'message' } }],
    });
    const r = await t.api.raw(`mutation ($p: JSON) { startRun(workflow: "prod-map-param", parameters: $p) { id } }`, { p: { items: STDERR_SECRET } });
    expect(r.errors?.[0]?.message).toMatch(/map\.over: must be a list.*got string/);
    expect(has(r, STDERR_SECRET)).toBe(false);
  });

  it('the CLI’s run list and run view for an outsider', async () => {
    const list = await runCli({ url: t.url, token: oscar.token }, ['run', 'list', '-n', '50']);
    expect(list.code).toBe(0);
    expect(`${list.stdout}${list.stderr}`).not.toContain(STDERR_SECRET);
    const view = await runCli({ url: t.url, token: oscar.token }, ['run', 'get', runs.failed]);
    expect(`${view.stdout}${view.stderr}`).not.toContain(STDERR_SECRET);
  });
});

describe('leak 2: a workflow’s spec is its domain’s data', () => {
  const SPEC_PATHS = `{
    workflows { name description latestVersion { spec digest } versions { spec } }
    workflow(name: "prod-defaults") { latestVersion { id version spec digest } }
  }`;

  it('withholds a production spec (and its digest) from an outsider, a viewer and a token without read:Workflow, with FORBIDDEN, audited', async () => {
    const since = new Date();
    for (const who of [oscar, vera]) {
      const r = await who.raw(SPEC_PATHS);
      expect(has(r, DEFAULT_SECRET)).toBe(false);
      expect(codes(r)).toContain('FORBIDDEN');
      expect(r.data.workflow.latestVersion).toMatchObject({ version: 1, spec: null, digest: null });
      // metadata stays public: the workflow, its description, its versions
      expect(r.data.workflows.find((w: any) => w.name === 'prod-defaults').description).toMatch(/warehouse/);
      // an experimentation workflow's spec is open to every role
      expect(r.data.workflows.find((w: any) => w.name === 'exp-open').latestVersion.spec.parameters.greeting.default).toBe('hello-open');
    }
    expect(await auditedSince(since, 'data.read', 'deny')).toBe(true);
    const s = await scoped.raw(SPEC_PATHS);
    expect(has(s, DEFAULT_SECRET)).toBe(false);
  });

  it('withholds a task’s cache key (a hash of its parameters: an offline oracle for a guess of them)', async () => {
    const granted = await mia.gql(`query ($id: ID!) { run(id: $id) { tasks { cacheKey } } }`, { id: runs.defaults });
    expect(granted.run.tasks[0].cacheKey).toMatch(/^[0-9a-f]{64}$/);
    const r = await oscar.raw(`query ($id: ID!) { run(id: $id) { tasks { node cacheKey } } }`, { id: runs.defaults });
    expect(codes(r)).toContain('FORBIDDEN');
    expect(r.data.run.tasks[0]).toEqual({ node: 'load', cacheKey: null });
  });

  it('withholds it on every path: node(id), a run’s workflow version, fragments', async () => {
    const { workflow } = await mia.gql(`{ workflow(name: "prod-defaults") { latestVersion { id spec } } }`);
    expect(has(workflow, DEFAULT_SECRET)).toBe(true);
    const paths = [
      [`query ($id: ID!) { node(id: $id) { ... on WorkflowVersion { spec digest } } }`, { id: workflow.latestVersion.id }],
      [
        `query ($id: ID!) { run(id: $id) { workflowVersion { spec } workflow { versions { ...V } } } } fragment V on WorkflowVersion { spec }`,
        { id: runs.defaults },
      ],
      [`{ runs(first: 100) { edges { node { workflowVersion { spec digest } childRuns { workflowVersion { spec } } } } } }`, {}],
    ] as const;
    for (const [query, variables] of paths) {
      const r = await oscar.raw(query, variables);
      expect(has(r, DEFAULT_SECRET)).toBe(false);
    }
  });

  it('refuses to start a production workflow in experimentation or adhoc without the production grant, naming the rule; nothing is created', async () => {
    const before = (await t.api.gql(`{ runs(first: 500, filter: { workflow: "prod-defaults" }) { edges { node { id } } } }`)).runs.edges.length;
    const since = new Date();
    for (const domain of ['experimentation', 'adhoc']) {
      const r = await oscar.raw(`mutation ($d: Domain) { startRun(workflow: "prod-defaults", domain: $d) { id parameters } }`, { d: domain });
      expect(codes(r)).toEqual(['FORBIDDEN']);
      expect(r.errors![0]!.message).toMatch(/production workflow.*at least as guarded/i);
      expect(has(r, DEFAULT_SECRET)).toBe(false);
    }
    const after = (await t.api.gql(`{ runs(first: 500, filter: { workflow: "prod-defaults" }) { edges { node { id } } } }`)).runs.edges.length;
    expect(after).toBe(before);
    expect(await auditedSince(since, 'run.start', 'deny')).toBe(true);
  });

  it('lets a member granted the workflow’s domain start it in a less guarded one', async () => {
    const id = await runToEnd(mia, 'prod-defaults', { domain: 'experimentation' });
    const { run } = await mia.gql(`query ($id: ID!) { run(id: $id) { status domain } }`, { id });
    expect(run).toEqual({ status: 'SUCCEEDED', domain: 'experimentation' });
    // ... which is mia's choice; cloning that run is starting the production workflow outside production again
    const clone = await oscar.raw(`mutation ($id: ID!) { cloneRun(id: $id) { id } }`, { id });
    expect(codes(clone)).toEqual(['FORBIDDEN']);
  });

  it('refuses to nest a production workflow in an experimentation run of someone without the grant', async () => {
    await oscar.gql(`mutation ($s: String!) { createWorkflow(spec: $s) { created } }`, {
      s: JSON.stringify({ name: 'exp-wrapper', domain: 'experimentation', tasks: [{ name: 'inner', workflow: 'prod-defaults' }] }),
    });
    const since = new Date();
    const id = await runToEnd(oscar, 'exp-wrapper');
    const r = await oscar.raw(`query ($id: ID!) { run(id: $id) { status parameters childRuns { id parameters } tasks { node status message outputs } } }`, {
      id,
    });
    expect(r.errors).toBeUndefined();
    expect(r.data.run.status).toBe('FAILED');
    expect(r.data.run.childRuns).toEqual([]);
    expect(r.data.run.tasks[0].message).toMatch(/production workflow.*at least as guarded/i);
    expect(has(r, DEFAULT_SECRET)).toBe(false);
    expect(await auditedSince(since, 'run.start', 'deny')).toBe(true);
  });

  it('refuses a cache preview of a workflow whose spec the caller may not read, in any domain', async () => {
    for (const domain of ['experimentation', 'production', null]) {
      const r = await oscar.raw(`query ($d: Domain) { cachePreview(workflow: "prod-defaults", domain: $d) { node hit key reason } }`, { d: domain });
      expect(codes(r)).toEqual(['FORBIDDEN']);
      expect(r.data?.cachePreview ?? null).toBeNull();
    }
    const allowed = await mia.raw(`{ cachePreview(workflow: "prod-defaults") { node hit } }`);
    expect(allowed.errors).toBeUndefined();
    const open = await oscar.raw(`{ cachePreview(workflow: "exp-open") { node hit } }`);
    expect(open.errors).toBeUndefined();
  });
});
