// Data policy in the execution layer, end to end on the real server: a task is handed only the columns its
// run's domain may read; one that needs more is refused at start (nothing created) or, when labels change
// after the start, at dispatch (the task fails, never retried) — naming the columns and the rule; sources and
// sinks bound what each domain reads and writes; output datasets get labels computed through the lineage.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packDirectory } from '../../server/artifacts/archive';
import { startTestApp, type TestApp } from '../harness/app';
import { RUN_EVENTS } from '../harness/client';

let t: TestApp;
let scratch: string;
const DIGEST = `sha256:${'b'.repeat(64)}`;
const codeOf = (r: any) => r.errors?.[0]?.extensions?.code;
const ended = (e: any) => e.runEvents.__typename === 'RunStatusEvent' && ['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(e.runEvents.runStatus);

/** A node module that logs what it was handed (ATELIER_DATASETS) and outputs `result`. */
async function publish(ns: string, name: string, ports: string) {
  const dir = path.join(scratch, `${ns}-${name}`);
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'atelier.module.yaml'), `namespace: ${ns}\nname: ${name}\nentrypoint: main.mjs\nruntime: node\n${ports}`);
  await writeFile(
    path.join(dir, 'main.mjs'),
    `import { writeSync } from 'node:fs';
console.log('datasets ' + (process.env.ATELIER_DATASETS ?? 'none'));
writeSync(Number(process.env.ATELIER_PROGRESS_FD), JSON.stringify({ output: { name: 'result', value: 'rows:' + Date.now() } }) + '\\n');
`,
  );
  const r = await t.api.upload(
    `mutation ($artifact: File!) { publishModuleVersion(artifact: $artifact, tags: ["latest"]) { version { ref } } }`,
    {},
    'artifact',
    await packDirectory(dir),
  );
  if (r.errors) throw new Error(JSON.stringify(r.errors));
}

async function dataset(name: string, domain: string, columns: { name: string; label?: { level: string; categories?: string[] } }[]) {
  await t.api.gql(
    `mutation ($n: String!, $d: Domain!, $c: [DatasetColumnInput!]!) { createDataset(name: $n, domain: $d, columns: $c, digest: "${DIGEST}") { id } }`,
    {
      n: name,
      d: domain,
      c: columns.map((c) => ({ type: 'string', ...c })),
    },
  );
}

async function runToEnd(workflow: string, extra = '') {
  const { startRun } = await t.api.gql(`mutation ($w: String!) { startRun(workflow: $w${extra}) { id } }`, { w: workflow });
  await t.api.subscribe(RUN_EVENTS, { runId: startRun.id }, ended);
  return (await t.api.gql(`query ($id: ID!) { run(id: $id) { id status tasks { node status reason message logs { line } } } }`, { id: startRun.id })).run;
}

const columnsOf = async (name: string) =>
  Object.fromEntries(
    ((await t.api.gql(`query ($n: String!) { dataset(name: $n) { columns { name label { level categories } } } }`, { n: name })).dataset.columns as any[]).map(
      (c) => [c.name, `${c.label.level}${c.label.categories.length ? `{${c.label.categories.join(',')}}` : ''}`],
    ),
  );

beforeAll(async () => {
  t = await startTestApp();
  scratch = await mkdtemp(path.join(os.tmpdir(), 'atelier-policy-'));
  await t.publishFixture('sleep');
  await dataset('crm/users', 'production', [
    { name: 'id', label: { level: 'INTERNAL' } },
    { name: 'email', label: { level: 'RESTRICTED', categories: ['PII'] } },
    { name: 'country', label: { level: 'PUBLIC' } },
    { name: 'segment' }, // UNCLASSIFIED
  ]);
  await dataset('lab/scratch', 'experimentation', [{ name: 'x', label: { level: 'PUBLIC' } }]);
  const users = (cols: string) =>
    `inputs:\n  - name: users\n    dataset: crm/users\n    columns: [${cols
      .split(',')
      .map((c) => `{ name: ${c} }`)
      .join(', ')}]\n`;
  await publish(
    'crm',
    'count-countries',
    `${users('id,country')}outputs:\n  - name: result\n    dataset: lab/country-counts\n    columns:\n      - { name: country, from: [users.country] }\n      - { name: who, from: [users.id, users.country] }\n      - { name: n, from: [] }\n`,
  );
  await publish('crm', 'email-reader', users('id,email'));
  await publish('crm', 'segment-reader', users('segment'));
  await publish('crm', 'country-reader', users('country'));
  await publish('lab', 'prod-writer', `outputs:\n  - name: result\n    dataset: crm/users\n    columns: [{ name: id, from: [] }]\n`);
  await publish('crm', 'scratch-reader', `inputs:\n  - name: s\n    dataset: lab/scratch\n`);
  const wf = (name: string, domain: string, module: string) => t.createWorkflow({ name, domain, tasks: [{ name: 'step', module }] });
  await wf('count', 'experimentation', 'crm/count-countries');
  await wf('emails-exp', 'experimentation', 'crm/email-reader');
  await wf('emails-prod', 'production', 'crm/email-reader');
  await wf('segments', 'production', 'crm/segment-reader');
  await wf('writes-prod', 'experimentation', 'lab/prod-writer');
  await wf('reads-exp', 'production', 'crm/scratch-reader');
  await t.createWorkflow({
    name: 'gated',
    domain: 'adhoc',
    tasks: [
      { name: 'gate', module: 'test/sleep', parameters: { ms: 1500 } },
      { name: 'read', module: 'crm/country-reader', dependsOn: ['gate'] },
    ],
  });
});
afterAll(async () => {
  await t?.stop();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

describe('data policy at dispatch', () => {
  it('hands a task only its permitted columns, and labels its output through the lineage', async () => {
    const run = await runToEnd('count');
    expect(run.status).toBe('SUCCEEDED');
    const handed = JSON.parse(
      run.tasks[0].logs
        .map((l: any) => l.line)
        .find((l: string) => l.startsWith('datasets '))
        .slice('datasets '.length),
    );
    expect(handed.inputs.users).toMatchObject({ dataset: 'crm/users', version: 1, digest: DIGEST, columns: ['id', 'country'] });
    expect(handed.outputs).toEqual({ result: { dataset: 'lab/country-counts' } });
    const { dataset } = await t.api.gql(`{ dataset(name: "lab/country-counts") { domain versions { version } } }`);
    expect(dataset).toEqual({ domain: 'experimentation', versions: [{ version: 1 }] });
    expect(await columnsOf('lab/country-counts')).toEqual({ country: 'PUBLIC', who: 'INTERNAL', n: 'PUBLIC' });
  });

  it('refuses at start a run that needs columns above its domain’s ceiling, naming them; nothing is created', async () => {
    const before = (await t.api.gql(`{ runs(first: 100) { edges { node { id } } } }`)).runs.edges.length;
    const r = await t.api.raw(`mutation { startRun(workflow: "emails-exp") { id } }`);
    expect(codeOf(r)).toBe('FORBIDDEN');
    expect(r.errors?.[0]?.message).toMatch(
      /Node "step" is refused by data policy: input "users" needs crm\/users.email \(RESTRICTED\{PII\}\).*experimentation runs read at most CONFIDENTIAL/,
    );
    expect((await t.api.gql(`{ runs(first: 100) { edges { node { id } } } }`)).runs.edges.length).toBe(before);
    expect((await runToEnd('emails-prod')).status).toBe('SUCCEEDED'); // production may read it
  });

  it('treats an UNCLASSIFIED column as the most restricted, even for production', async () => {
    const r = await t.api.raw(`mutation { startRun(workflow: "segments") { id } }`);
    expect(codeOf(r)).toBe('FORBIDDEN');
    expect(r.errors?.[0]?.message).toMatch(/crm\/users.segment \(UNCLASSIFIED\).*classify it first/);
  });

  it('bounds sources and sinks: experimentation never writes production data, production never reads experimental data', async () => {
    const writes = await t.api.raw(`mutation { startRun(workflow: "writes-prod") { id } }`);
    expect(writes.errors?.[0]?.message).toMatch(/writes crm\/users, a production dataset.*experimentation runs may write only experimentation datasets/);
    const reads = await t.api.raw(`mutation { startRun(workflow: "reads-exp") { id } }`);
    expect(reads.errors?.[0]?.message).toMatch(/reads lab\/scratch, a experimentation dataset.*production runs may read only production data/);
    // the domain of a run can be chosen at start: an experimentation run of the same workflow may read it
    const { startRun } = await t.api.gql(`mutation { startRun(workflow: "reads-exp", domain: experimentation) { id domain } }`);
    expect(startRun.domain).toBe('experimentation');
  });

  it('raises downstream labels when the output is recomputed after an upstream label rose', async () => {
    await t.api.gql(`mutation { setColumnLabel(dataset: "crm/users", column: "id", label: { level: CONFIDENTIAL, categories: ["CUSTOMER_DATA"] }) { level } }`);
    const run = await runToEnd('count', ', refreshCache: true');
    expect(run.status).toBe('SUCCEEDED');
    const { dataset } = await t.api.gql(`{ dataset(name: "lab/country-counts") { versions { version } } }`);
    expect(dataset.versions.map((v: any) => v.version)).toEqual([2, 1]);
    expect(await columnsOf('lab/country-counts')).toEqual({ country: 'PUBLIC', who: 'CONFIDENTIAL{CUSTOMER_DATA}', n: 'PUBLIC' });
  });

  it('decides again at dispatch: a label raised after the start fails the task, never retried, with the rule', async () => {
    const { startRun } = await t.api.gql(`mutation { startRun(workflow: "gated") { id } }`);
    await t.api.gql(
      `mutation { setColumnLabel(dataset: "crm/users", column: "country", label: { level: CONFIDENTIAL, categories: ["PII"] }, reason: "country joins make it identifying") { level } }`,
    );
    await t.api.subscribe(RUN_EVENTS, { runId: startRun.id }, ended);
    const { run } = await t.api.gql(`query ($id: ID!) { run(id: $id) { status tasks { node status reason message attempt } } }`, { id: startRun.id });
    expect(run.status).toBe('FAILED');
    const read = run.tasks.find((x: any) => x.node === 'read');
    expect(read).toMatchObject({ status: 'FAILED', reason: 'forbidden', attempt: 0 });
    expect(read.message).toMatch(/refused by data policy: input "users" needs crm\/users.country \(CONFIDENTIAL\{PII\}\).*adhoc runs may not read PII/);
  });

  it('audits each decision with its rule', async () => {
    const { auditEvents } = await t.api.gql(`{ auditEvents(limit: 500) { action decision rule details } }`);
    const data = auditEvents.filter((e: any) => e.action.startsWith('data.'));
    expect(data.filter((e: any) => e.decision === 'allow').length).toBeGreaterThanOrEqual(2);
    expect(data.filter((e: any) => e.decision === 'deny').map((e: any) => e.rule)).toEqual(
      expect.arrayContaining([
        'experimentation runs read at most CONFIDENTIAL',
        'an UNCLASSIFIED column is treated as the most restricted: classify it first',
        'experimentation runs may write only experimentation datasets',
        'production runs may read only production data',
        'adhoc runs may not read PII',
      ]),
    );
  });
});
