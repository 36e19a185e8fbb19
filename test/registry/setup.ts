// The world the registry tests share: a production dataset with labelled columns, modules that read it and train
// (outputs a deterministic `model`, logs `accuracy`), teams and grants, and workflows run to their end on the local
// executor. `prep` reads crm/users; `train` reads nothing itself and depends on `prep`, so lineage is transitive.
import { copyFile, mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { packDirectory } from '../../server/artifacts/archive';
import type { TestApp } from '../harness/app';
import { RUN_EVENTS } from '../harness/client';

const helper = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'executors', 'local', 'progress.js');
const DIGEST = `sha256:${'c'.repeat(64)}`;
const ended = (e: any) => e.runEvents.__typename === 'RunStatusEvent' && ['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(e.runEvents.runStatus);

export async function publish(t: TestApp, scratch: string, name: string, ports: string, body: string) {
  const dir = path.join(scratch, name);
  await mkdir(dir, { recursive: true });
  await copyFile(helper, path.join(dir, 'progress.js'));
  await writeFile(path.join(dir, 'atelier.module.yaml'), `namespace: ml\nname: ${name}\nentrypoint: main.mjs\nruntime: node\n${ports}`);
  await writeFile(
    path.join(dir, 'main.mjs'),
    `import { metric, output } from './progress.js';\nconst params = JSON.parse(process.env.ATELIER_PARAMS ?? '{}');\n${body}`,
  );
  const r = await t.api.upload(
    `mutation ($artifact: File!) { publishModuleVersion(artifact: $artifact, tags: ["latest"]) { version { ref } } }`,
    {},
    'artifact',
    await packDirectory(dir),
  );
  if (r.errors) throw new Error(JSON.stringify(r.errors));
}

const users = (cols: string[]) => `inputs:\n  - name: users\n    dataset: crm/users\n    columns: [${cols.map((c) => `{ name: ${c} }`).join(', ')}]\n`;
const params = 'parameters:\n  type: object\n  properties:\n    seed: { type: [integer, string] }\n';

/** Publishes the modules, makes crm/users, teams `ml` (alice, bob; owns namespace ml; production grant) and `lab` (carol). */
export async function setUpRegistryWorld(t: TestApp) {
  const scratch = await mkdtemp(path.join(os.tmpdir(), 'atelier-registry-'));
  await t.api.gql(`mutation ($c: [DatasetColumnInput!]!) { createDataset(name: "crm/users", domain: production, columns: $c, digest: "${DIGEST}") { id } }`, {
    c: [
      { name: 'id', type: 'string', label: { level: 'INTERNAL' } },
      { name: 'country', type: 'string', label: { level: 'PUBLIC' } },
      { name: 'email', type: 'string', label: { level: 'RESTRICTED', categories: ['PII'] } },
    ],
  });
  await publish(t, scratch, 'prep', users(['id', 'country']), `output('rows', 'prepared');\n`);
  await publish(t, scratch, 'prep-email', users(['id', 'email']), `output('rows', 'prepared-with-email');\n`);
  await publish(t, scratch, 'train', params, `metric({ accuracy: 0.95 }, 0);\noutput('model', { weights: [1, 2, 3], seed: params.seed ?? 0 });\n`);
  const alice = await t.user('alice');
  const bob = await t.user('bob');
  const carol = await t.user('carol');
  await t.team('ml', ['alice', 'bob'], ['ml']);
  await t.team('lab', ['carol'], ['lab']);
  await t.api.gql(`mutation { grantDomain(team: "ml", domain: production) { id } }`);
  const dag = (prep: string) => [
    { name: 'prep', module: `ml/${prep}` },
    { name: 'train', module: 'ml/train', dependsOn: ['prep'], parameters: { seed: '${params.seed}' } },
  ];
  const param = { seed: { default: 1 } };
  await t.createWorkflow({ name: 'train', domain: 'experimentation', parameters: param, tasks: dag('prep') });
  await t.createWorkflow({ name: 'train-pii', domain: 'production', parameters: param, tasks: dag('prep-email') });
  return { alice, bob, carol };
}

/** Starts a run (as admin) and waits for its end; returns the run with its tasks by node. */
export async function runToEnd(t: TestApp, workflow: string, parameters: Record<string, unknown> = {}) {
  const { startRun } = await t.api.gql(`mutation ($w: String!, $p: JSON) { startRun(workflow: $w, parameters: $p) { id } }`, { w: workflow, p: parameters });
  await t.api.subscribe(RUN_EVENTS, { runId: startRun.id }, ended);
  const { run } = await t.api.gql(`query ($id: ID!) { run(id: $id) { id status tasks { id node status message cacheHit { __typename } } } }`, {
    id: startRun.id,
  });
  if (run.status !== 'SUCCEEDED') throw new Error(`run ${workflow} ended ${run.status}: ${JSON.stringify(run.tasks)}`);
  return { id: run.id as string, task: Object.fromEntries(run.tasks.map((x: any) => [x.node, x])) as Record<string, { id: string; cacheHit: unknown }> };
}

export const REGISTER = `mutation ($m: String!, $t: ID!, $o: String!, $f: String, $s: JSON, $md: JSON) {
  registerModelVersion(model: $m, taskId: $t, output: $o, flavor: $f, signature: $s, metadata: $md) { created version { id version digest ref } } }`;
