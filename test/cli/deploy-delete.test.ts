// `atelier deploy delete` while the deployer is still busy with the deployment: another replica's reconciler holds it
// past what the mutation waits for (one lease here, 1.5 s). The CLI once printed "deleted" and exited at once, so a
// script went on while the model still served (and a test app stopped then left its router running). Now it waits
// until the deployment is gone, as kubectl delete waits for finalizers; `--no-wait` says it is not gone yet.
import { spawn } from 'node:child_process';
import { eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { deployments } from '../../server/db/tables/deployments';
import { CREATE_DEPLOYMENT, deploymentSteps, deploymentWorld, endDeploymentWorld, until } from '../deployments/setup';
import type { TestApp } from '../harness/app';
import { cliBin, runCli, showCli } from '../harness/cli';
import type { ApiClient } from '../harness/client';

let t: TestApp;
let alice: ApiClient & { token: string };
const { serving } = deploymentSteps(() => alice);

beforeAll(async () => {
  const world = await deploymentWorld(3000, { ATELIER_DEPLOYMENT_LEASE_MS: '1500' });
  t = world.t;
  alice = world.alice as ApiClient & { token: string };
}, 60_000);

afterAll(async () => {
  if (t) await endDeploymentWorld(t);
});

/** A deployment serving, then held by a reconciler elsewhere for `ms` (no one renews that lease: it runs out). */
async function servingThenHeld(name: string, ms: number): Promise<string> {
  await alice.gql(CREATE_DEPLOYMENT, { i: { name, model: 'ml/iris@champion', domain: 'experimentation' } });
  const { url } = await serving(name, 1);
  await t.app.services.db
    .update(deployments)
    .set({ leaseOwner: 'replica-elsewhere', leaseUntil: sql`now() + make_interval(secs => ${ms / 1000})` })
    .where(eq(deployments.name, name));
  return url;
}

it('waits until the deployer has stopped the deployment, then says it is deleted; gives up after --timeout', async () => {
  const url = await servingThenHeld('iris-waited', 600_000);
  const target = { url: t.url, token: alice.token };
  const late = await runCli(target, ['deploy', 'delete', 'iris-waited', '--timeout', '1']);
  expect(late.code, showCli(late)).toBe(1);
  expect(late.stdout).toMatch(/^deleting deployment iris-waited: waiting for its deployer to stop it…$/m);
  expect(late.stderr).toMatch(
    /^error \[TIMEOUT\]: Deployment "iris-waited" is still being deleted after 1 s.*`atelier deploy show iris-waited`, or wait longer with --timeout\.$/m,
  );
  expect((await fetch(`${url}/health`)).status).toBe(200);

  // Again, without a limit: once it waits, the other reconciler lets go, and it sees the deployment gone.
  const cli = spawn(process.execPath, [cliBin, 'deploy', 'delete', 'iris-waited'], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ATELIER_URL: target.url, ATELIER_TOKEN: target.token },
  });
  let stdout = '';
  cli.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  const exited = new Promise<number | null>((resolve) => cli.on('close', resolve));
  await until('the CLI waiting', async () => stdout.includes('waiting for its deployer'));
  await t.app.services.db.update(deployments).set({ leaseUntil: sql`now()` }).where(eq(deployments.name, 'iris-waited'));
  expect(await exited).toBe(0);
  expect(stdout).toMatch(/^deleting deployment iris-waited: waiting for its deployer to stop it…\ndeleted deployment iris-waited$/m);
  await expect(fetch(`${url}/health`)).rejects.toThrow();
});

it('with --no-wait, says the deployment is not gone yet; the reconciler finishes it', async () => {
  const url = await servingThenHeld('iris-left', 600_000);
  const left = await runCli({ url: t.url, token: alice.token }, ['deploy', 'delete', 'iris-left', '--no-wait']);
  expect(left.code, showCli(left)).toBe(0);
  expect(left.stdout).toMatch(/^deleting deployment iris-left: its deployer has not stopped it yet.*`atelier deploy show iris-left` until it is gone$/m);
  expect((await fetch(`${url}/health`)).status).toBe(200);
  expect((await alice.gql(`{ deployment(name: "iris-left") { deleting } }`)).deployment).toEqual({ deleting: true });
  // Another change of it is refused; once the other reconciler lets go, this replica's finishes the deletion.
  const promote = await runCli({ url: t.url, token: alice.token }, ['deploy', 'promote', 'iris-left']);
  expect(promote.stderr).toMatch(/^error \[CONFLICT\]: Deployment "iris-left" is being deleted; it can no longer change\.$/m);
  await t.app.services.db.update(deployments).set({ leaseUntil: sql`now()` }).where(eq(deployments.name, 'iris-left'));
  await until('iris-left gone', async () => (await alice.gql(`{ deployment(name: "iris-left") { name } }`)).deployment === null);
  await expect(fetch(`${url}/health`)).rejects.toThrow();
});
