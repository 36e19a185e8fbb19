// Registration from inside a module: a module's `registerModel(...)` progress lines travel with its task's result;
// once the task has succeeded the control plane registers the versions as the run's creator. A namespace the creator
// may not write is refused, audited and explained in the task's log, and the task still succeeds.
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { and, eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { applyProgressLine } from '../../plugins/progress-lines';
import type { TaskContext } from '../../plugins/sdk';
import { queryRows } from '../../server/db/client';
import { auditEvents } from '../../server/db/tables/governance';
import { createRegistrationHandler } from '../../server/registry/from-tasks';
import { startTestApp, type TestApp } from '../harness/app';
import { type ApiClient, RUN_EVENTS } from '../harness/client';
import { until } from '../webhooks/receiver';
import { publish, REGISTER, runToEnd, setUpRegistryWorld } from './setup';

let t: TestApp;
let alice: ApiClient & { token: string };
let carol: ApiClient;
/** The succeeded task whose module left a model's files (the test that logs them sets it). */
let filesTask = '';

beforeAll(async () => {
  t = await startTestApp();
  ({ alice, carol } = await setUpRegistryWorld(t));
  const scratch = await mkdtemp(path.join(os.tmpdir(), 'atelier-register-'));
  await publish(
    t,
    scratch,
    'self-register',
    '',
    [
      `import { registerModel } from './progress.js';`,
      `output('model', { weights: [4, 5, 6] });`,
      `registerModel('ml/auto', 'model', { flavor: 'sklearn', metadata: { by: 'module' } });`,
      `registerModel('lab/stolen', 'model');`,
    ].join('\n'),
  );
  await t.createWorkflow({ name: 'self-register', domain: 'experimentation', tasks: [{ name: 'fit', module: 'ml/self-register' }] });
  // A model whose files the module writes itself (ATELIER_ARTIFACTS_DIR), as a servable model's are.
  await publish(
    t,
    scratch,
    'files-register',
    '',
    [
      `import { mkdirSync, rmSync, writeFileSync, symlinkSync } from 'node:fs';`,
      `import { registerModel } from './progress.js';`,
      `const dir = process.env.ATELIER_ARTIFACTS_DIR;`,
      `mkdirSync(dir + '/model/weights', { recursive: true });`,
      `writeFileSync(dir + '/model/serve.mjs', 'console.log(1);\\n');`,
      `writeFileSync(dir + '/model/weights/w.bin', Buffer.from([0, 1, 2, 255]));`,
      `writeFileSync(dir + '/notes.txt', 'not part of the model');`,
      `if (process.env.ATELIER_NODE === 'linked') symlinkSync('/etc/hostname', dir + '/model/host-file');`,
      // The folder itself swapped for a link to a host folder the module cannot read from its sandbox (/etc here).
      `if (process.env.ATELIER_NODE === 'swapped') { rmSync(dir, { recursive: true }); symlinkSync('/etc', dir); }`,
      `registerModel('ml/files', 'model', { metadata: { serve: { command: ['node', 'serve.mjs'] } } });`,
    ].join('\n'),
  );
  await t.createWorkflow({ name: 'files-register', domain: 'experimentation', tasks: [{ name: 'fit', module: 'ml/files-register' }] });
  await t.createWorkflow({ name: 'files-link', domain: 'experimentation', tasks: [{ name: 'linked', module: 'ml/files-register' }] });
  await t.createWorkflow({ name: 'files-swap', domain: 'experimentation', tasks: [{ name: 'swapped', module: 'ml/files-register' }] });
}, 120_000);

afterAll(async () => {
  await t?.stop();
});

const ended = (e: any) => e.runEvents.__typename === 'RunStatusEvent' && ['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(e.runEvents.runStatus);

it("registers what a module asks for once its task succeeds, as the run's creator, and logs a refusal without failing the task", async () => {
  const { startRun } = await alice.gql(`mutation { startRun(workflow: "self-register") { id } }`);
  // The registrations are made before the success is published: a watcher that sees the run end finds them done.
  await alice.subscribe(RUN_EVENTS, { runId: startRun.id }, ended);
  const stored = await alice.gql(`query ($id: ID!) { run(id: $id) { tasks { logs { line } } } }`, { id: startRun.id });
  const lines: string[] = stored.run.tasks[0].logs.map((l: any) => l.line);
  expect(lines).toContainEqual('[atelier] model ml/auto@1 registered from "model" as alice');
  expect(lines.find((l) => l.includes('lab/stolen'))).toMatch(/^\[atelier\] model lab\/stolen not registered from "model" as alice: .+/);
  const { run } = await alice.gql(`query ($id: ID!) { run(id: $id) { status tasks { id status } } }`, { id: startRun.id });
  expect(run.status).toBe('SUCCEEDED');
  expect(run.tasks[0].status).toBe('SUCCEEDED');
  const { modelVersion } = await alice.gql(
    `{ modelVersion(ref: "ml/auto@1") { version flavor metadata files { path } createdBy { name } lineage { task { id } run { id } } } }`,
  );
  expect(modelVersion).toMatchObject({
    version: 1,
    flavor: 'sklearn',
    metadata: { by: 'module' },
    files: [{ path: 'model.json' }],
    createdBy: { name: 'alice' },
    lineage: { task: { id: run.tasks[0].id }, run: { id: startRun.id } },
  });
  // The refusal is audited under the creator, and nothing of lab/stolen exists.
  const denied = await t.app.services.db
    .select({ action: auditEvents.action })
    .from(auditEvents)
    .where(and(eq(auditEvents.subject, 'model:lab/stolen'), eq(auditEvents.decision, 'deny')));
  expect(denied.length).toBeGreaterThan(0);
  expect(await t.api.raw(`{ model(name: "lab/stolen") { id } }`)).toMatchObject({ data: { model: null } });
});

it("logs the files a module leaves in ATELIER_ARTIFACTS_DIR as its task's artifacts, so a model registers from them", async () => {
  const { startRun } = await alice.gql(`mutation { startRun(workflow: "files-register") { id } }`);
  await alice.subscribe(RUN_EVENTS, { runId: startRun.id }, ended);
  const { run } = await alice.gql(`query ($id: ID!) { run(id: $id) { status tasks { id status logs { line } } } }`, { id: startRun.id });
  expect(run.status).toBe('SUCCEEDED');
  filesTask = run.tasks[0].id;
  const lines: string[] = run.tasks[0].logs.map((l: any) => l.line);
  expect(lines).toContainEqual('[atelier] logged 3 artifacts (41 bytes) from ATELIER_ARTIFACTS_DIR');
  expect(lines).toContainEqual('[atelier] model ml/files@1 registered from "model" as alice');
  const { modelVersion } = await alice.gql(`{ modelVersion(ref: "ml/files@1") { metadata files { path size digest } } }`);
  expect(modelVersion.files.map((f: any) => [f.path, f.size])).toEqual([
    ['serve.mjs', 16],
    ['weights/w.bin', 4],
  ]);
  expect(modelVersion.metadata).toEqual({ serve: { command: ['node', 'serve.mjs'] } });
  // The bytes are the module's, byte for byte.
  const bin = modelVersion.files.find((f: any) => f.path === 'weights/w.bin');
  const res = await fetch(`${t.url}/artifacts/${bin.digest}`, { headers: { authorization: `Bearer ${alice.token}` } });
  expect(res.status).toBe(200);
  expect([...new Uint8Array(await res.arrayBuffer())]).toEqual([0, 1, 2, 255]);
});

it("takes a module task's files from its module only: its run's creator (or an admin) adds or replaces none after the fact", async () => {
  // Else a version registered from the folder would carry the task's lineage (module, inputs, columns) over their bytes.
  const [{ experiment_id: exp }] = (await queryRows<{ experiment_id: string }>(
    t.app.services.db,
    sql`select r.experiment_id from tasks k join runs r on r.id = k.run_id where k.id = ${filesTask}::uuid`,
  )) as [{ experiment_id: string }];
  for (const token of [alice.token, t.app.adminToken]) {
    for (const file of ['model/serve.mjs', 'model/backdoor.pkl']) {
      const res = await fetch(`${t.url}/api/2.0/mlflow-artifacts/artifacts/${exp}/${filesTask}/artifacts/${file}`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${token}` },
        body: 'not what the module wrote',
      });
      expect(res.status).toBe(403);
      expect(((await res.json()) as { message: string }).message).toContain(`Task ${filesTask} ran module code: its files are what its module wrote`);
    }
    // Nor through a model logged from the task: its files are refused the same way.
    const post = (route: string, body: unknown) =>
      fetch(`${t.url}/api/2.0/mlflow/${route}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      }).then(async (r) => ({ status: r.status, body: (await r.json()) as any }));
    const logged = await post('logged-models', { experiment_id: exp, source_run_id: filesTask });
    expect(logged.status).toBe(200);
    const model = logged.body.model.info;
    const put = await fetch(`${t.url}/api/2.0/mlflow-artifacts/artifacts/${exp}/models/${model.model_id}/artifacts/MLmodel`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${token}` },
      body: 'flavors: {}',
    });
    expect(put.status).toBe(403);
  }
  // The folder is still the module's: registering it again is the version already there.
  const again = await alice.gql(REGISTER, { m: 'ml/files', t: filesTask, o: 'model' });
  expect(again.registerModelVersion).toMatchObject({ created: false, version: { version: 1 } });
});

it('fails the task for good, logging nothing, when its artifacts folder holds a symbolic link (it could name a host file)', async () => {
  const { startRun } = await alice.gql(`mutation { startRun(workflow: "files-link", refreshCache: true) { id } }`);
  await alice.subscribe(RUN_EVENTS, { runId: startRun.id }, ended);
  const { run } = await alice.gql(`query ($id: ID!) { run(id: $id) { status tasks { status attempt message } } }`, { id: startRun.id });
  expect(run.status).toBe('FAILED');
  expect(run.tasks[0]).toMatchObject({ status: 'FAILED', attempt: 1 });
  expect(run.tasks[0].message).toMatch(/artifacts could not be logged: "model\/host-file" is a symbolic link/);
  const { model } = await alice.gql(`{ model(name: "ml/files") { versions { version } } }`);
  expect(model.versions.map((v: any) => v.version)).toEqual([1]);
});

it("does the same on a hot cluster's warm worker, and hands a warm worker its model inputs' files", async () => {
  // A warm worker waits in a sandbox of its own whose /work is not the attempt's folder: the artifacts folder and
  // the models folder must be that worker's.
  await alice.gql(`mutation { createHotCluster(name: "reg-warm", executor: "local", spec: { workers: 1 }) { name } }`);
  await until(
    () => alice.gql(`{ hotClusters { name state } }`),
    (d) => d.hotClusters.some((c: any) => c.name === 'reg-warm' && c.state === 'READY'),
    'the hot cluster to be warm',
  );
  await t.createWorkflow({ name: 'files-warm', domain: 'experimentation', tasks: [{ name: 'fit', module: 'ml/files-register', hotCluster: 'reg-warm' }] });
  const { startRun } = await alice.gql(`mutation { startRun(workflow: "files-warm", refreshCache: true) { id } }`);
  await alice.subscribe(RUN_EVENTS, { runId: startRun.id }, ended);
  const { run } = await alice.gql(`query ($id: ID!) { run(id: $id) { status tasks { status provisioningMs message logs { line } } } }`, { id: startRun.id });
  expect(run.tasks[0], JSON.stringify(run.tasks[0])).toMatchObject({ status: 'SUCCEEDED', provisioningMs: 0 });
  const lines: string[] = run.tasks[0].logs.map((l: any) => l.line);
  expect(lines).toContainEqual('[atelier] logged 3 artifacts (41 bytes) from ATELIER_ARTIFACTS_DIR');
  // the same files as the cold run's: the version already registered
  expect(lines).toContainEqual('[atelier] model ml/files@1 already registered with this content from "model" as alice');

  const scratch = await mkdtemp(path.join(os.tmpdir(), 'atelier-register-'));
  await publish(
    t,
    scratch,
    'files-read',
    '',
    [`import { readFileSync } from 'node:fs';`, `output('served', readFileSync(process.env.ATELIER_MODELS_DIR + '/m/serve.mjs', 'utf8'));`].join('\n'),
  );
  await t.createWorkflow({
    name: 'files-read-warm',
    domain: 'experimentation',
    tasks: [{ name: 'read', module: 'ml/files-read', hotCluster: 'reg-warm', models: { m: 'ml/files@1' } }],
  });
  const read = await t.api.gql(`mutation { startRun(workflow: "files-read-warm") { id } }`);
  await t.api.subscribe(RUN_EVENTS, { runId: read.startRun.id }, ended);
  const got = await t.api.gql(`query ($id: ID!) { run(id: $id) { tasks { status provisioningMs message outputs } } }`, { id: read.startRun.id });
  expect(got.run.tasks[0], JSON.stringify(got.run.tasks[0])).toMatchObject({
    status: 'SUCCEEDED',
    provisioningMs: 0,
    outputs: { served: 'console.log(1);\n' },
  });
  await alice.gql(`mutation { endHotCluster(name: "reg-warm") { state } }`);
});

it('fails the task for good, logging nothing, when the module swapped ATELIER_ARTIFACTS_DIR itself for a link (the host would read /etc)', async () => {
  const { startRun } = await alice.gql(`mutation { startRun(workflow: "files-swap", refreshCache: true) { id } }`);
  await alice.subscribe(RUN_EVENTS, { runId: startRun.id }, ended);
  const { run } = await alice.gql(`query ($id: ID!) { run(id: $id) { status tasks { id status attempt message } } }`, { id: startRun.id });
  expect(run.status).toBe('FAILED');
  expect(run.tasks[0]).toMatchObject({ status: 'FAILED', attempt: 1 });
  expect(run.tasks[0].message).toMatch(/artifacts could not be logged: "outputs\/artifacts" is a symbolic link/);
  const logged = await queryRows(t.app.services.db, sql`select path from run_artifacts where task_id = ${run.tasks[0].id}::uuid`);
  expect(logged).toEqual([]);
});

it('ignores a malformed register line with a reason, and passes a well-formed one to the context', () => {
  const asked: unknown[] = [];
  const why: string[] = [];
  const ctx = { registerModel: (r: unknown) => asked.push(r) } as unknown as TaskContext;
  applyProgressLine(JSON.stringify({ register: { model: 'ml/x' } }), ctx, (w) => why.push(w));
  applyProgressLine(JSON.stringify({ register: { model: 'ml/x', output: 'm', metadata: [1] } }), ctx, (w) => why.push(w));
  applyProgressLine(JSON.stringify({ register: { model: 'ml/x', output: 'm', flavor: 'onnx' } }), ctx, (w) => why.push(w));
  expect(why).toEqual([expect.stringMatching(/needs "model".*"output"/), expect.stringMatching(/JSON objects/)]);
  expect(asked).toEqual([{ model: 'ml/x', output: 'm', flavor: 'onnx', signature: null, metadata: null }]);
});

const LIVE = `subscription ($m: String) { registryEvents(model: $m) { seq type model actor { name } payload } }`;

it('streams registry events live over graphql-ws as they commit: of one model, or of every model the caller may read', async () => {
  const listening = t.app.services.registryFeed.listening();
  const one = alice.subscribe(LIVE, { m: 'ml/live' }, (_e, all) => all.length === 3);
  const every = carol.subscribe(LIVE, {}, (_e, all) => all.some((e: any) => e.registryEvents.type === 'alias.moved'));
  await until(
    () => t.app.services.registryFeed.listening(),
    (n) => n === listening + 2,
    'both subscriptions listening',
  );
  const run = await runToEnd(t, 'train', { seed: 7 });
  const reg = await alice.gql(REGISTER, { m: 'ml/live', t: run.task.train!.id, o: 'model' });
  expect(reg.registerModelVersion.created).toBe(true);
  await alice.gql(`mutation { setModelAlias(model: "ml/live", alias: "challenger", version: "1") { alias } }`);
  const events = (await one).map((e: any) => e.registryEvents);
  expect(events.map((e: any) => [e.type, e.model, e.actor.name])).toEqual([
    ['model.created', 'ml/live', 'alice'],
    ['version.registered', 'ml/live', 'alice'],
    ['alias.moved', 'ml/live', 'alice'],
  ]);
  expect(events[1].seq).toBeLessThan(events[2].seq);
  expect(events[1].payload).toMatchObject({ ref: 'ml/live@1' });
  const all = (await every).map((e: any) => e.registryEvents);
  expect(all.map((e: any) => e.type)).toEqual(expect.arrayContaining(['model.created', 'version.registered', 'alias.moved']));
  // Both stopped listening once their clients completed.
  await until(
    () => t.app.services.registryFeed.listening(),
    (n) => n === listening,
    'the subscriptions to end',
  );
});

it('registers after a crash what a success asked for and nobody handled: the recovery pass, once', async () => {
  const run = await runToEnd(t, 'train', { seed: 11 });
  const taskId = run.task.train!.id;
  const { db, store, feed } = t.app.services;
  // As if the module had asked, and the control plane died after the success committed and before registering.
  const asked = [{ model: 'ml/recovered', output: 'model', flavor: 'sklearn', signature: null, metadata: null }];
  await db.execute(
    sql`update task_events set payload = jsonb_set(payload, '{outcome,registrations}', ${JSON.stringify(asked)}::jsonb)
        where task_id = ${taskId} and kind = 'result'`,
  );
  const registrations = createRegistrationHandler({ db, store, feed, log: () => {} });
  expect(await registrations.recover()).toBe(0); // just recorded: a registration may still be under way
  expect(await registrations.recover(0)).toBe(1);
  expect(await registrations.recover(0)).toBe(0); // its log line marks it handled
  const { modelVersion } = await alice.gql(`{ modelVersion(ref: "ml/recovered@1") { version flavor lineage { task { id } } } }`);
  expect(modelVersion).toEqual({ version: 1, flavor: 'sklearn', lineage: { task: { id: taskId } } });
  const { run: stored } = await alice.gql(`query ($id: ID!) { run(id: $id) { tasks { id logs { line } } } }`, { id: run.id });
  const task = stored.tasks.find((x: any) => x.id === taskId);
  expect(task.logs.map((l: any) => l.line)).toContainEqual(expect.stringMatching(/^\[atelier\] model ml\/recovered@1 registered from "model" as /));
});
