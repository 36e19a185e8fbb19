// The adversarial suite: table-driven cases `{ who, setup, request, expected decision, audited }` run against the
// policy engine (pure functions), the GraphQL API and the dispatcher of one real server. Each case states what
// must be refused or allowed and, for decisions on data, which audit record must exist. The last test prints how
// many cases ran; none may leak.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packDirectory } from '../../server/artifacts/archive';
import { propagate, unclassified } from '../../server/governance/labels';
import { readDenial } from '../../server/governance/policy';
import type { Label } from '../../server/vocabulary';
import { startTestApp, type TestApp } from '../harness/app';
import { type ApiClient, apiClient, RUN_EVENTS } from '../harness/client';

type Decision = 'allow' | 'deny';
interface Case {
  name: string;
  /** Returns the decision the system made. */
  request: () => Promise<Decision>;
  expected: Decision;
  /** An audit record that must exist after the request: action and decision. */
  audited?: { action: string; decision: Decision };
}

let t: TestApp;
let scratch: string;
let member: ApiClient; // in team "crm" (owns namespace crm), production granted
let outsider: ApiClient; // in no team
const DIGEST = `sha256:${'c'.repeat(64)}`;
const L = (level: Label['level'], ...categories: string[]): Label => ({ level, categories });
const ended = (e: any) => e.runEvents.__typename === 'RunStatusEvent' && ['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(e.runEvents.runStatus);

const decided = (r: { errors?: unknown[] }): Decision => (r.errors?.length ? 'deny' : 'allow');
const gql = (query: string) => t.api.raw(query).then(decided);
const start = (api: ApiClient, workflow: string, domain?: string) =>
  api.raw(`mutation ($w: String!, $d: Domain) { startRun(workflow: $w, domain: $d) { id } }`, { w: workflow, d: domain ?? null }).then(decided);

async function module(name: string, ports: string) {
  const dir = path.join(scratch, name);
  await mkdir(dir, { recursive: true });
  await writeFile(
    path.join(dir, 'atelier.module.yaml'),
    `namespace: crm\nname: ${name}\nentrypoint: main.mjs\nruntime: node\ncache: { enabled: false }\n${ports}`,
  );
  await writeFile(path.join(dir, 'main.mjs'), 'console.log(process.env.ATELIER_DATASETS ?? "none");\n');
  const r = await t.api.upload(`mutation ($a: File!) { publishModuleVersion(artifact: $a, tags: ["latest"]) { created } }`, {}, 'a', await packDirectory(dir));
  if (r.errors) throw new Error(JSON.stringify(r.errors));
}
const reads = (dataset: string, columns: string) =>
  `inputs:\n  - name: in\n    dataset: ${dataset}\n    columns: [${columns
    .split(',')
    .map((c) => `{ name: ${c} }`)
    .join(', ')}]\n`;
const writes = (dataset: string) => `outputs:\n  - name: out\n    dataset: ${dataset}\n    columns: [{ name: v, from: [] }]\n`;

const cases: Case[] = [];
const add = (c: Case) => cases.push(c);

// --- the policy engine ---------------------------------------------------------------------------------------
const policy = (domain: 'experimentation' | 'adhoc' | 'production', label: Label): Decision => (readDenial(domain, label) ? 'deny' : 'allow');
add({ name: 'policy: experimentation reads a RESTRICTED column', request: async () => policy('experimentation', L('RESTRICTED')), expected: 'deny' });
add({
  name: 'policy: experimentation reads CONFIDENTIAL customer data',
  request: async () => policy('experimentation', L('CONFIDENTIAL', 'CUSTOMER_DATA')),
  expected: 'allow',
});
add({ name: 'policy: ad hoc reads PII at a low level', request: async () => policy('adhoc', L('INTERNAL', 'PII')), expected: 'deny' });
add({ name: 'policy: production reads RESTRICTED PII', request: async () => policy('production', L('RESTRICTED', 'PII')), expected: 'allow' });
for (const domain of ['experimentation', 'adhoc', 'production'] as const) {
  add({ name: `policy: ${domain} reads an UNCLASSIFIED column`, request: async () => policy(domain, unclassified()), expected: 'deny' });
}
// derived datasets: what a downstream column would be labelled, checked against experimentation
const inputs = new Map([
  [
    'in',
    new Map([
      ['secret', L('RESTRICTED')],
      ['open', L('PUBLIC')],
    ]),
  ],
]);
add({
  name: 'derived: RESTRICTED join PUBLIC stays RESTRICTED',
  request: async () => policy('experimentation', propagate([{ name: 'x', from: ['in.secret', 'in.open'] }], inputs).get('x')!),
  expected: 'deny',
});
add({
  name: 'derived: missing lineage takes every input column',
  request: async () => policy('experimentation', propagate([{ name: 'x' }], inputs).get('x')!),
  expected: 'deny',
});
add({
  name: 'derived: an opaque step (no declared inputs) is UNCLASSIFIED',
  request: async () => policy('production', propagate([{ name: 'x' }], new Map()).get('x')!),
  expected: 'deny',
});
add({
  name: 'derived: a column from only PUBLIC sources is readable',
  request: async () => policy('experimentation', propagate([{ name: 'x', from: ['in.open'] }], inputs).get('x')!),
  expected: 'allow',
});

// --- starting runs (API + planning) --------------------------------------------------------------------------
add({
  name: 'start: experimentation run reading a RESTRICTED PII column',
  request: () => start(member, 'exp-email'),
  expected: 'deny',
  audited: { action: 'data.start', decision: 'deny' },
});
add({ name: 'start: production run reading it, with a production grant', request: () => start(member, 'prod-email'), expected: 'allow' });
add({ name: 'start: production run without a production grant', request: () => start(outsider, 'prod-email'), expected: 'deny' });
add({
  name: 'start: production run by asking for the domain explicitly without a grant',
  request: () => start(outsider, 'exp-country', 'production'),
  expected: 'deny',
});
add({
  name: 'start: ad hoc run reading production PII',
  request: () => start(t.api, 'adhoc-email'),
  expected: 'deny',
  audited: { action: 'data.start', decision: 'deny' },
});
add({ name: 'start: ad hoc run reading a production PUBLIC column', request: () => start(t.api, 'adhoc-country'), expected: 'allow' });
add({
  name: 'start: any run reading an UNCLASSIFIED column',
  request: () => start(t.api, 'prod-segment'),
  expected: 'deny',
  audited: { action: 'data.start', decision: 'deny' },
});
add({
  name: 'start: experimentation run writing a production dataset',
  request: () => start(member, 'exp-writes-prod'),
  expected: 'deny',
  audited: { action: 'data.start', decision: 'deny' },
});
add({
  name: 'start: production run consuming experimentation outputs',
  request: () => start(member, 'prod-reads-lab'),
  expected: 'deny',
  audited: { action: 'data.start', decision: 'deny' },
});
add({
  name: 'start: a write whose lineage names an input that reads no dataset (labels not computable)',
  request: () => start(t.api, 'exp-unlabelled-write'),
  expected: 'deny',
  audited: { action: 'data.start', decision: 'deny' },
});
add({
  name: 'start: a module reading a dataset that does not exist',
  request: () => start(t.api, 'exp-ghost'),
  expected: 'deny',
  audited: { action: 'data.start', decision: 'deny' },
});

// --- the dispatcher --------------------------------------------------------------------------------------------
add({
  name: 'dispatch: a label raised between start and dispatch',
  request: async () => {
    const { startRun } = await t.api.gql(`mutation { startRun(workflow: "gated-spend") { id } }`);
    await t.api.gql(
      `mutation { setColumnLabel(dataset: "crm/users", column: "spend", label: { level: CONFIDENTIAL, categories: ["CUSTOMER_DATA", "PII"] }) { level } }`,
    );
    await t.api.subscribe(RUN_EVENTS, { runId: startRun.id }, ended);
    const { run } = await t.api.gql(`query ($id: ID!) { run(id: $id) { tasks { node status reason } } }`, { id: startRun.id });
    return run.tasks.find((x: any) => x.node === 'read').reason === 'forbidden' ? 'deny' : 'allow';
  },
  expected: 'deny',
  audited: { action: 'data.dispatch', decision: 'deny' },
});
add({
  name: 'dispatch: a permitted task is handed only its permitted columns',
  request: async () => {
    const { startRun } = await t.api.gql(`mutation { startRun(workflow: "exp-country") { id } }`);
    await t.api.subscribe(RUN_EVENTS, { runId: startRun.id }, ended);
    const { run } = await t.api.gql(`query ($id: ID!) { run(id: $id) { tasks { logs { line } } } }`, { id: startRun.id });
    const handed = JSON.parse(run.tasks[0].logs[0].line);
    return JSON.stringify(handed.inputs.in.columns) === '["country"]' ? 'allow' : 'deny';
  },
  expected: 'allow',
  audited: { action: 'data.dispatch', decision: 'allow' },
});

// --- labels and declassification -------------------------------------------------------------------------------
const setLabel = (api: ApiClient, column: string, level: string) =>
  api
    .raw(`mutation ($c: String!, $l: ClassificationLevel!) { setColumnLabel(dataset: "crm/users", column: $c, label: { level: $l }) { level } }`, {
      c: column,
      l: level,
    })
    .then(decided);
add({
  name: 'labels: lowering a label directly',
  request: () => setLabel(member, 'id', 'PUBLIC'),
  expected: 'deny',
  audited: { action: 'label.set', decision: 'deny' },
});
add({
  name: 'labels: raising a label',
  request: () => setLabel(member, 'id', 'CONFIDENTIAL'),
  expected: 'allow',
  audited: { action: 'label.set', decision: 'allow' },
});
add({ name: 'labels: someone outside the owning team classifying a column', request: () => setLabel(outsider, 'id', 'RESTRICTED'), expected: 'deny' });
let declassification = '';
add({
  name: 'declassify: approving one’s own request',
  request: async () => {
    const asked = await member.gql(
      `mutation { requestDeclassification(dataset: "crm/users", column: "id", label: { level: INTERNAL }, reason: "ids are opaque") { id } }`,
    );
    declassification = asked.requestDeclassification.id;
    return decided(await member.raw(`mutation ($id: ID!) { decideDeclassification(id: $id, approve: true) { state } }`, { id: declassification }));
  },
  expected: 'deny',
  audited: { action: 'declassification.decide', decision: 'deny' },
});
add({
  name: 'declassify: approval by someone outside the owning team',
  request: async () =>
    decided(await outsider.raw(`mutation ($id: ID!) { decideDeclassification(id: $id, approve: true) { state } }`, { id: declassification })),
  expected: 'deny',
  audited: { action: 'declassification.decide', decision: 'deny' },
});
add({
  name: 'declassify: approval by an admin who did not ask',
  request: async () => decided(await t.api.raw(`mutation ($id: ID!) { decideDeclassification(id: $id, approve: true) { state } }`, { id: declassification })),
  expected: 'allow',
  audited: { action: 'declassification.decide', decision: 'allow' },
});

// --- abilities are never cached past a change ------------------------------------------------------------------
add({
  name: 'grants: a revoked production grant on the very next request',
  request: async () => {
    await t.api.gql(`mutation { grantDomain(team: "crm", domain: production, granted: false) { id } }`);
    const d = await start(member, 'prod-email');
    await t.api.gql(`mutation { grantDomain(team: "crm", domain: production) { id } }`);
    return d;
  },
  expected: 'deny',
});
add({
  name: 'teams: publishing after removal from the owning team',
  request: async () => {
    await t.api.gql(`mutation { removeTeamMember(team: "crm", identity: "mia") { id } }`);
    const dir = path.join(scratch, 'after-removal');
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, 'atelier.module.yaml'), 'namespace: crm\nname: late\nentrypoint: main.mjs\nruntime: node\n');
    await writeFile(path.join(dir, 'main.mjs'), '');
    const r = await member.upload(`mutation ($a: File!) { publishModuleVersion(artifact: $a) { created } }`, {}, 'a', await packDirectory(dir));
    await t.api.gql(`mutation { setTeamMember(team: "crm", identity: "mia") { id } }`);
    return decided(r);
  },
  expected: 'deny',
});

// --- previews: only permitted columns, and no filter or sort oracles ------------------------------------------------
const preview = (api: ApiClient, args: string) => api.raw(`{ datasetPreview(name: "crm/users"${args}) { columns withheld rows } }`);
add({
  name: 'preview: experimentation clearance sees neither PII nor UNCLASSIFIED columns, named as withheld',
  request: async () => {
    const r = await preview(outsider, '');
    const p = r.data?.datasetPreview;
    // (spend carries PII by now: the dispatch case above raised it)
    const ok =
      JSON.stringify(p?.columns) === '["id","country"]' &&
      JSON.stringify(p?.withheld) === '["email","spend","segment"]' &&
      p.rows.length === 2 &&
      p.rows.every((row: object) => Object.keys(row).join() === 'id,country');
    return ok ? 'allow' : 'deny';
  },
  expected: 'allow',
  audited: { action: 'data.preview', decision: 'allow' },
});
add({
  name: 'preview: filtering on a withheld column (an oracle)',
  request: async () => decided(await preview(outsider, ', where: [{ column: "email", equals: "ada@example.com" }]')),
  expected: 'deny',
  audited: { action: 'data.preview', decision: 'deny' },
});
add({
  name: 'preview: sorting on a withheld column (an oracle)',
  request: async () => decided(await preview(outsider, ', orderBy: { column: "email" }')),
  expected: 'deny',
  audited: { action: 'data.preview', decision: 'deny' },
});
add({
  name: 'preview: grouping on a withheld column (an oracle)',
  request: async () => decided(await outsider.raw(`{ datasetPreview(name: "crm/users", groupBy: ["email"]) { groups { key count } } }`)),
  expected: 'deny',
  audited: { action: 'data.preview', decision: 'deny' },
});
add({
  name: 'preview: grouping on a permitted column',
  request: async () => decided(await outsider.raw(`{ datasetPreview(name: "crm/users", groupBy: ["country"]) { groups { key count } } }`)),
  expected: 'allow',
});
add({
  name: 'catalog: publishing a dataset with an UNCLASSIFIED column and RESTRICTED PII',
  request: async () => decided(await member.raw(`mutation { publishDatasetToCatalog(name: "crm/users") { id } }`)),
  expected: 'deny',
  audited: { action: 'catalog.publish', decision: 'deny' },
});
add({
  name: 'preview: filtering on a permitted column',
  request: async () => decided(await preview(outsider, ', where: [{ column: "country", equals: "FR" }]')),
  expected: 'allow',
});
add({
  name: 'preview: a production-cleared member sees PII but still no UNCLASSIFIED column',
  request: async () => {
    const p = (await preview(member, '')).data?.datasetPreview;
    return p?.columns.includes('email') && !p.columns.includes('segment') && p.rows[0].email === 'ada@example.com' ? 'allow' : 'deny';
  },
  expected: 'allow',
});
add({
  name: 'preview: 100 aliases of the preview',
  request: () => gql(`{ ${Array.from({ length: 100 }, (_, i) => `p${i}: datasetPreview(name: "crm/users") { rows }`).join(' ')} }`),
  expected: 'deny',
});

// --- hostile documents -------------------------------------------------------------------------------------------
let nested = 'id';
for (let i = 0; i < 8; i++) nested = `versions { module { ${nested} } }`;
add({ name: 'DoS: deep nesting (workflow → run → … paths)', request: () => gql(`{ modules { ${nested} } }`), expected: 'deny' });
add({
  name: 'DoS: 150 aliases',
  request: () => gql(`{ ${Array.from({ length: 150 }, (_, i) => `a${i}: datasets { columns { name } }`).join(' ')} }`),
  expected: 'deny',
});
add({ name: 'DoS: cyclic fragments', request: () => gql('{ modules { ...A } } fragment A on Module { versions { module { ...A } } }'), expected: 'deny' });
add({ name: 'DoS: a 5,000-token document', request: () => gql(`{ viewer { ${'name '.repeat(5000)} } }`), expected: 'deny' });
add({ name: 'audit log read by a member', request: async () => decided(await member.raw('{ auditEvents { id } }')), expected: 'deny' });
add({ name: 'anonymous introspection', request: async () => decided(await apiClient(t.url, null).raw('{ __schema { types { name } } }')), expected: 'deny' });

// --- run data through every shape of query: a production run's parameters, task parameters and logs --------------------
// `secret` is started by an admin in production with a secret parameter; oscar (no team) reads production metadata only.
const SECRET = 's3cr3t-value';
let secret = { run: '', task: '', audit: '' };
/** What a response let through: 'allow' if the secret is anywhere in it, else 'deny'. */
const leaked = (r: unknown): Decision => (JSON.stringify(r).includes(SECRET) ? 'allow' : 'deny');
const asOutsider = (query: string, variables: Record<string, unknown> = {}) => outsider.raw(query, variables).then(leaked);
add({
  name: 'run data: a production run’s parameters read directly',
  request: () => asOutsider(`query ($id: ID!) { run(id: $id) { status parameters } }`, { id: secret.run }),
  expected: 'deny',
  audited: { action: 'data.read', decision: 'deny' },
});
add({
  name: 'run data: a production run’s parameters read by a granted member',
  request: () => member.raw(`query ($id: ID!) { run(id: $id) { parameters } }`, { id: secret.run }).then(leaked),
  expected: 'allow',
});
add({
  name: 'run data: through 25 aliases',
  request: () =>
    asOutsider(`query ($id: ID!) { ${Array.from({ length: 25 }, (_, i) => `r${i}: run(id: $id) { p: parameters t: tasks { q: parameters } }`).join(' ')} }`, {
      id: secret.run,
    }),
  expected: 'deny',
});
add({
  name: 'run data: through 120 aliases (refused before any resolver)',
  request: () =>
    asOutsider(`query ($id: ID!) { ${Array.from({ length: 120 }, (_, i) => `r${i}: run(id: $id) { parameters }`).join(' ')} }`, { id: secret.run }),
  expected: 'deny',
});
add({
  name: 'run data: through a named fragment',
  request: () =>
    asOutsider(`query ($id: ID!) { run(id: $id) { ...R } } fragment R on Run { parameters tasks { ...T } } fragment T on Task { parameters logs { line } }`, {
      id: secret.run,
    }),
  expected: 'deny',
});
add({
  name: 'run data: through an inline fragment on node(id)',
  request: () => asOutsider(`query ($id: ID!) { node(id: $id) { id ... on Run { parameters } } }`, { id: secret.run }),
  expected: 'deny',
});
add({
  name: 'run data: through the Node interface to a task',
  request: () =>
    asOutsider(`query ($id: ID!) { node(id: $id) { ... on Task { parameters outputs message logs { line } attempts { message } metrics } } }`, {
      id: secret.task,
    }),
  expected: 'deny',
  audited: { action: 'data.read', decision: 'deny' },
});
add({
  name: 'run data: nested paths (runs → run → source run, child runs → tasks)',
  request: () =>
    asOutsider(
      `{ runs(first: 50, filter: { domain: [production] }) { edges { node { parameters sourceRun { parameters } childRuns { parameters } tasks { parameters outputs logs { line } childRun { parameters } } } } } }`,
    ),
  expected: 'deny',
});
add({
  name: 'run data: through a module’s version to its runs’ tasks (cache hits)',
  request: () =>
    asOutsider(`query ($id: ID!) { run(id: $id) { tasks { cacheHit { sourceTask { parameters } sourceRun { parameters } } } } }`, { id: secret.run }),
  expected: 'deny',
});
add({
  name: 'run data: the live events of a production run',
  request: async () => outsider.subscribe(RUN_EVENTS, { runId: secret.run }, () => true).then(leaked, () => 'deny' as const),
  expected: 'deny',
});
add({
  name: 'run data: the firehose of every run’s events',
  request: async () => {
    const seen: unknown[] = [];
    const watching = outsider.subscribe(
      `subscription { allRunEvents { __typename ... on TaskLogEvent { runId lines } ... on TaskStatusEvent { runId message } } }`,
      {},
      undefined,
      (e) => seen.push(e),
    );
    watching.catch(() => undefined);
    await new Promise((r) => setTimeout(r, 300));
    const { startRun } = await t.api.gql(`mutation { startRun(workflow: "prod-echo", parameters: { value: "${SECRET}" }) { id } }`);
    await t.api.subscribe(RUN_EVENTS, { runId: startRun.id }, ended);
    await new Promise((r) => setTimeout(r, 300));
    return seen.some((e: any) => e.allRunEvents.runId === startRun.id) ? 'allow' : leaked(seen);
  },
  expected: 'deny',
});
add({
  name: 'run data: after removal from the team that was granted production',
  request: async () => {
    await t.api.gql(`mutation { removeTeamMember(team: "crm", identity: "mia") { id } }`);
    const r = await member.raw(`query ($id: ID!) { run(id: $id) { parameters } }`, { id: secret.run });
    await t.api.gql(`mutation { setTeamMember(team: "crm", identity: "mia") { id } }`);
    return leaked(r);
  },
  expected: 'deny',
});

// --- changing what runs in a domain: every mutation is checked on the instance, not the type ----------------------
/** 'deny' only for a FORBIDDEN refusal (another error would not prove the check). */
const refusedAs = (r: { errors?: { extensions?: { code?: string } }[] }): Decision => (r.errors?.[0]?.extensions?.code === 'FORBIDDEN' ? 'deny' : 'allow');
const spec = (domain: string) =>
  JSON.stringify({
    name: 'prod-echo',
    domain,
    parameters: { value: { default: 'v' } },
    tasks: [{ name: 'echo', module: 'test/echo', parameters: { message: 'changed' } }],
  });
let prodSchedule = '';
add({
  name: 'workflow: a new version of a production workflow without a grant',
  request: async () => refusedAs(await outsider.raw(`mutation ($s: String!) { createWorkflow(spec: $s) { created } }`, { s: spec('production') })),
  expected: 'deny',
});
add({
  name: 'workflow: moving a production workflow into experimentation without a grant',
  request: async () => refusedAs(await outsider.raw(`mutation ($s: String!) { createWorkflow(spec: $s) { created } }`, { s: spec('experimentation') })),
  expected: 'deny',
});
add({
  name: 'cancel: a production run without a grant',
  request: async () => refusedAs(await outsider.raw(`mutation ($id: ID!) { cancelRun(id: $id) { id } }`, { id: secret.run })),
  expected: 'deny',
});
add({
  name: 'schedule: pausing a production schedule without a grant',
  request: async () => refusedAs(await outsider.raw(`mutation ($id: ID!) { pauseSchedule(id: $id) { paused } }`, { id: prodSchedule })),
  expected: 'deny',
});
add({
  name: 'schedule: deleting a production schedule without a grant',
  request: async () => refusedAs(await outsider.raw(`mutation ($id: ID!) { deleteSchedule(id: $id) }`, { id: prodSchedule })),
  expected: 'deny',
});
add({
  name: 'schedule: pausing it with a production grant',
  request: async () => refusedAs(await member.raw(`mutation ($id: ID!) { pauseSchedule(id: $id) { paused } }`, { id: prodSchedule })),
  expected: 'allow',
});

// --- node(id) is no existence oracle ------------------------------------------------------------------------------
add({
  name: 'node: an audit record by id, read by a member, looks like no object at all',
  request: async () => {
    const [real, none] = await Promise.all([
      member.raw(`query ($id: ID!) { node(id: $id) { id ... on AuditEvent { rule } } }`, { id: secret.audit }),
      member.raw(`query ($id: ID!) { node(id: $id) { id } }`, { id: '00000000-0000-4000-8000-000000000000' }),
    ]);
    return JSON.stringify(real) === JSON.stringify(none) && real.data?.node === null ? 'deny' : 'allow';
  },
  expected: 'deny',
});
add({
  name: 'node: a malformed id answers like no object at all',
  request: async () => {
    const r = await outsider.raw(`{ node(id: "not-a-uuid'; drop table runs") { id } }`);
    return r.data?.node === null && !r.errors ? 'deny' : 'allow';
  },
  expected: 'deny',
});
add({
  name: 'node: a production run by id, read by an outsider (metadata only)',
  request: async () => {
    const r = await outsider.raw(`query ($id: ID!) { node(id: $id) { id ... on Run { status domain } } }`, { id: secret.run });
    return r.data?.node?.domain === 'production' && !r.errors ? 'allow' : 'deny';
  },
  expected: 'allow',
});

// --- scoped tokens ------------------------------------------------------------------------------------------------
let ci: ApiClient;
add({
  name: 'scoped token: a publish-only CI token reading runs',
  request: async () => decided(await ci.raw(`{ runs(first: 1) { edges { node { id } } } }`)),
  expected: 'deny',
});
add({ name: 'scoped token: a publish-only CI token starting a run', request: () => start(ci, 'exp-country'), expected: 'deny' });
add({
  name: 'scoped token: a publish-only CI token listing modules (in scope)',
  request: async () => decided(await ci.raw(`{ modules { fullName } }`)),
  expected: 'allow',
});
add({
  name: 'scoped token: an unknown scope',
  request: async () => decided(await t.api.raw(`mutation { createServiceAccount(name: "bad-scopes", scopes: ["root:*"]) { token } }`)),
  expected: 'deny',
});

beforeAll(async () => {
  t = await startTestApp();
  scratch = await mkdtemp(path.join(os.tmpdir(), 'atelier-adversarial-'));
  await t.publishFixture('sleep');
  const user = async (name: string) =>
    apiClient(t.url, (await t.api.gql(`mutation ($n: String!) { createUser(name: $n) { token } }`, { n: name })).createUser.token);
  [member, outsider] = await Promise.all([user('mia'), user('oscar')]);
  await t.api.gql(`mutation { createTeam(name: "crm") { id } }`);
  await t.api.gql(`mutation { setTeamMember(team: "crm", identity: "mia") { id } }`);
  await t.api.gql(`mutation { assignNamespace(namespace: "crm", team: "crm") { id } }`);
  await t.api.gql(`mutation { grantDomain(team: "crm", domain: production) { id } }`);
  const dataset = (name: string, domain: string, rows: object[], columns: object[]) =>
    t.api.gql(
      `mutation ($n: String!, $d: Domain!, $c: [DatasetColumnInput!]!, $s: JSON) { createDataset(name: $n, domain: $d, columns: $c, digest: "${DIGEST}", sample: $s) { id } }`,
      { n: name, d: domain, c: columns, s: rows },
    );
  const sample = [
    { id: 'u1', email: 'ada@example.com', country: 'FR', spend: 12.5, segment: 'gold' },
    { id: 'u2', email: 'bob@example.com', country: 'DE', spend: 3, segment: 'basic' },
  ];
  await dataset('crm/users', 'production', sample, [
    { name: 'id', type: 'string', label: { level: 'INTERNAL' } },
    { name: 'email', type: 'string', label: { level: 'RESTRICTED', categories: ['PII'] } },
    { name: 'country', type: 'string', label: { level: 'PUBLIC' } },
    { name: 'spend', type: 'float', label: { level: 'CONFIDENTIAL', categories: ['CUSTOMER_DATA'] } },
    { name: 'segment', type: 'string' },
  ]);
  await dataset('crm/lab', 'experimentation', [], [{ name: 'x', type: 'int', label: { level: 'PUBLIC' } }]);
  await module('email', reads('crm/users', 'id,email'));
  await module('country', reads('crm/users', 'country'));
  await module('spend', reads('crm/users', 'spend'));
  await module('segment', reads('crm/users', 'segment'));
  await module('ghost', reads('crm/nothing', 'a'));
  await module('lab-reader', reads('crm/lab', 'x'));
  await module('prod-writer', writes('crm/users'));
  await module('unlabelled-writer', `inputs:\n  - name: up\noutputs:\n  - name: out\n    dataset: crm/derived\n    columns: [{ name: v, from: [up.x] }]\n`);
  const wf = (name: string, domain: string, mod: string) => t.createWorkflow({ name, domain, tasks: [{ name: 'read', module: `crm/${mod}` }] });
  await wf('exp-email', 'experimentation', 'email');
  await wf('prod-email', 'production', 'email');
  await wf('adhoc-email', 'adhoc', 'email');
  await wf('adhoc-country', 'adhoc', 'country');
  await wf('exp-country', 'experimentation', 'country');
  await wf('prod-segment', 'production', 'segment');
  await wf('exp-writes-prod', 'experimentation', 'prod-writer');
  await wf('prod-reads-lab', 'production', 'lab-reader');
  await wf('exp-ghost', 'experimentation', 'ghost');
  await wf('exp-unlabelled-write', 'experimentation', 'unlabelled-writer');
  await t.publishFixture('echo');
  await t.createWorkflow({
    name: 'prod-echo',
    domain: 'production',
    parameters: { value: { default: 'v' } },
    tasks: [{ name: 'echo', module: 'test/echo', parameters: { message: '${params.value}', steps: 1 } }],
  });
  const started = await t.api.gql(`mutation { startRun(workflow: "prod-echo", parameters: { value: "${SECRET}" }) { id } }`);
  await t.api.subscribe(RUN_EVENTS, { runId: started.startRun.id }, ended);
  const { run } = await t.api.gql(`query ($id: ID!) { run(id: $id) { tasks { id parameters } } }`, { id: started.startRun.id });
  if (!JSON.stringify(run).includes(SECRET)) throw new Error('the secret run does not carry its secret: the run-data cases would prove nothing');
  const { auditEvents } = await t.api.gql(`{ auditEvents(limit: 1) { id } }`);
  secret = { run: started.startRun.id, task: run.tasks[0].id, audit: auditEvents[0].id };
  prodSchedule = (await t.api.gql(`mutation { createSchedule(input: { workflow: "prod-echo", cron: "0 0 1 1 *" }) { id } }`)).createSchedule.id;
  await t.api.gql(`mutation { assignNamespace(namespace: "ci", team: "crm") { id } }`);
  const issued = await t.api.gql(
    `mutation { createServiceAccount(name: "ci-bot", scopes: ["publish:Module", "publish:Namespace", "read:Module", "read:ModuleVersion"]) { token } }`,
  );
  ci = apiClient(t.url, issued.createServiceAccount.token);
  await t.createWorkflow({
    name: 'gated-spend',
    domain: 'experimentation',
    tasks: [
      { name: 'gate', module: 'test/sleep', parameters: { ms: 1200 } },
      { name: 'read', module: 'crm/spend', dependsOn: ['gate'] },
    ],
  });
});
afterAll(async () => {
  await t?.stop();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

describe('adversarial suite', () => {
  for (const c of cases) {
    it(`${c.expected === 'deny' ? 'refuses' : 'allows'} — ${c.name}`, async () => {
      const before = c.audited ? new Date() : null;
      expect(await c.request()).toBe(c.expected);
      if (c.audited) {
        const { auditEvents } = await t.api.gql(`query ($s: DateTime) { auditEvents(since: $s, limit: 1000) { action decision } }`, {
          s: new Date(before!.getTime() - 1000).toISOString(),
        });
        expect(auditEvents).toContainEqual(c.audited);
      }
    });
  }

  it('ran every case, and none leaked', () => {
    const denials = cases.filter((c) => c.expected === 'deny').length;
    console.log(
      `adversarial suite: ${cases.length} cases (${denials} must be refused, ${cases.length - denials} allowed), ${cases.filter((c) => c.audited).length} with an audit record checked; none leaked`,
    );
    expect(cases.length).toBeGreaterThanOrEqual(30);
  });
});
