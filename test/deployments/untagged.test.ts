// A deployment an older version applied carries no installation id at its deployer (the local deployer's state.json
// has none), so no deployer lists it and the orphan sweep's view misses it. The reconciler's first pass over it
// applies its serving revision again with the id (idempotent: nothing restarts, no traffic moves), and the deployer
// lists it from then on. Before, it stayed untagged until its next revision.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { installationId } from '../../server/deployments/orphans';
import type { TestApp } from '../harness/app';
import { type ApiClient, apiClient } from '../harness/client';
import { CREATE_DEPLOYMENT, deploymentSteps, deploymentWorld, endDeploymentWorld, predict, startDeploymentApp, until } from './setup';

let t: TestApp | undefined;
let alice: ApiClient;
/** The data directory both control planes use (the embedded database and the local deployer's state). */
let dataDir: string | undefined;
const { serving } = deploymentSteps(() => alice);

afterAll(async () => {
  if (t) await endDeploymentWorld(t);
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

it("tags a deployment an older version applied on the reconciler's next pass, and the deployer lists it", async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'atelier-untagged-'));
  // A lease the first control plane held when it stopped is taken over once it expires.
  const env = { ATELIER_DATA_DIR: dataDir, ATELIER_DEPLOYMENT_LEASE_MS: '2000' };
  ({ t, alice } = await deploymentWorld(undefined, env));
  const { token } = alice as ApiClient & { token: string };
  const { createDeployment } = await alice.gql(CREATE_DEPLOYMENT, { i: { name: 'iris-old', model: 'ml/iris@champion', domain: 'experimentation' } });
  const before = await serving('iris-old', 1);
  const id = await installationId(t.app.services.db);
  const stateFile = path.join(dataDir, 'deployments', 'local', 'deployments', createDeployment.id, 'state.json');
  const state = () => readFile(stateFile, 'utf8').then((text) => JSON.parse(text));
  expect((await state()).deployment.installation).toBe(id);

  // As an older version left it: the control plane stopped, its deployer's state without the id; then this version.
  await t.stop();
  const old = await state();
  delete old.deployment.installation;
  await writeFile(stateFile, JSON.stringify(old));
  t = await startDeploymentApp(undefined, env);
  alice = apiClient(t.url, token);

  const tagged = await until('the deployment tagged', async () => (await state()).deployment.installation === id && (await state()));
  expect(tagged.revisions).toEqual(old.revisions); // the same revision, not started again
  const after = await serving('iris-old', 1);
  expect(after.url).toBe(before.url);
  expect((await predict(after.url)).revision).toBe('1');
}, 180_000);
