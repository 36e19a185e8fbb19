// The world the deployment tests share: an embedded app with a fast reconciler and a fast local deployer (no
// sandbox: the tests run anywhere), team `ml` (alice) owning namespace `ml`, and model `ml/iris` whose versions are
// the iris fixture server (test/fixtures/iris-model) stored in the object store, registered straight into the
// registry's tables (the registry's own tests cover registration; here only the files and `metadata.serve` matter).
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { and, eq } from 'drizzle-orm';
import { expect } from 'vitest';
import type { Deployer } from '../../plugins/deployer-sdk';
import { liveProcesses } from '../../plugins/deployers/local';
import type { ObjectStore } from '../../server/artifacts/store';
import type { Db } from '../../server/db/client';
import { deployments } from '../../server/db/tables/deployments';
import { modelVersions, registeredModels } from '../../server/db/tables/registry';
import { fixturesDir, startTestApp, type TestApp } from '../harness/app';
import type { ApiClient } from '../harness/client';

export const IRIS_SERVE = { command: [process.execPath, 'serve.mjs'] };

export async function startDeploymentApp(startupMs = 3000, env: Record<string, string> = {}, deployers: Deployer[] = []): Promise<TestApp> {
  return startTestApp(
    { ATELIER_DEPLOYMENT_POLL_MS: '100', ...(process.env.DEPLOY_DEBUG ? { ATELIER_LOG_LEVEL: 'info' } : {}), ...env },
    { deployments: { localDeployer: { isolation: 'none', startupMs, backoffMs: 20, checkMs: 50, maxRestarts: 1 }, deployers } },
  );
}

/**
 * Registers version N of `ml/iris` with the iris files (a note file makes each version's digest its own) and the
 * given `metadata.serve` (null: none), through a test app's services or a database and object store of its own.
 */
export async function irisVersion(
  t: TestApp | { db: Db; store: ObjectStore },
  version: number,
  serve: object | null = IRIS_SERVE,
  namespace = 'ml',
): Promise<string> {
  const { db, store } = 'app' in t ? t.app.services : t;
  let [model] = await db
    .select()
    .from(registeredModels)
    .where(and(eq(registeredModels.namespace, namespace), eq(registeredModels.name, 'iris')));
  if (!model) [model] = await db.insert(registeredModels).values({ namespace, name: 'iris' }).returning();
  const dir = path.join(fixturesDir, 'iris-model');
  const files = [];
  for (const name of ['serve.mjs', 'weights.json']) {
    const bytes = await readFile(path.join(dir, name));
    files.push({ path: name, digest: await store.put(bytes), size: bytes.length });
  }
  const note = Buffer.from(`version ${version}\n`);
  files.push({ path: 'note.txt', digest: await store.put(note), size: note.length });
  const [row] = await db
    .insert(modelVersions)
    .values({
      modelId: model!.id,
      version,
      digest: `sha256:${version.toString(16).padStart(64, '0')}`,
      files,
      metadata: serve ? { serve } : {},
      taskId: crypto.randomUUID(),
      runId: crypto.randomUUID(),
      domain: 'experimentation',
      output: 'model',
    })
    .returning();
  return row!.id;
}

/** Polls `check` until it returns a truthy value (or throws after `ms`). */
export async function until<T>(what: string, check: () => Promise<T | null | undefined | false>, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  let seen: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
      seen = value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''} (last seen: ${JSON.stringify(seen)})`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export const DEPLOYMENT = `query ($n: String!) { deployment(name: $n) {
  id name model url ready message failedOver traffic { revision percent }
  revisions { number state health message baseline modelVersion { version } }
  rollout { revision from step percent state reason nextDecisionAt gates { metric rule step status value baseline message } }
  fallback { kind revision }
  events { kind revision reason actor { name } }
  viewerCan { manage failover } } }`;

/** A prediction through the deployment's URL: the answering revision (router header) and the model version. */
export async function predict(url: string): Promise<{ revision: string | null; version: string }> {
  const res = await fetch(`${url}/predict`, { method: 'POST', body: JSON.stringify({ features: [5.1, 3.5, 1.4, 0.2] }) });
  const body = (await res.json()) as { version: string };
  return { revision: res.headers.get('x-atelier-revision'), version: body.version };
}

/** A deployment's traffic as `{ revision: percent }`. */
export const splitOf = (d: any): Record<number, number> => Object.fromEntries(d.traffic.map((x: any) => [x.revision, x.percent]));

export const CREATE_DEPLOYMENT = `mutation ($i: CreateDeploymentInput!) { createDeployment(input: $i) { id name } }`;

/** What the deployment tests do as one client: move `ml/iris`'s aliases, read a deployment, wait for a split. */
export function deploymentSteps(client: () => ApiClient) {
  const show = async (name: string) => (await client().gql(DEPLOYMENT, { n: name })).deployment;
  return {
    alias: (alias: string, version: number) =>
      client().gql(`mutation { setModelAlias(model: "ml/iris", alias: "${alias}", version: "${version}") { version { version } } }`),
    show,
    /** Waits until the deployment is ready with all traffic on `revision` (and its rollout in `rollout`, if given). */
    serving: (name: string, revision: number, rollout?: string) =>
      until(`${name} serving revision ${revision} alone`, async () => {
        const d = await show(name);
        return d.ready && JSON.stringify(splitOf(d)) === JSON.stringify({ [revision]: 100 }) && (!rollout || d.rollout?.state === rollout) && d;
      }),
    atSplit: (name: string, want: Record<number, number>) =>
      until(`${name} at ${JSON.stringify(want)}`, async () => {
        const d = await show(name);
        return JSON.stringify(splitOf(d)) === JSON.stringify(want) && d;
      }),
  };
}

/**
 * The world every deployment test file starts from: alice in team `ml` (owning namespace `ml`), versions 1, 2, 5–8
 * of `ml/iris` servable, 3 with no serve entrypoint, 4 never healthy, and aliases champion, slow and stuck on 1.
 */
export async function deploymentWorld(startupMs?: number, env?: Record<string, string>): Promise<{ t: TestApp; alice: ApiClient }> {
  const t = await startDeploymentApp(startupMs, env);
  const alice = await t.user('alice');
  await t.team('ml', ['alice'], ['ml']);
  for (const v of [1, 2, 5, 6, 7, 8]) await irisVersion(t, v);
  await irisVersion(t, 3, null);
  await irisVersion(t, 4, { command: [process.execPath, '-e', 'setInterval(() => {}, 1000)'] });
  const { alias } = deploymentSteps(() => alice);
  for (const name of ['champion', 'slow', 'stuck']) await alias(name, 1);
  return { t, alice };
}

/** Deletes every deployment, checks no process of the local deployer outlives them, and stops the app. */
export async function endDeploymentWorld(t: TestApp): Promise<void> {
  const listed = (await t.api.gql(`{ deployments(first: 100) { name } }`)).deployments;
  for (const d of listed) await t.api.gql(`mutation ($n: String!) { deleteDeployment(id: $n) }`, { n: d.name });
  await until('every deployment deleted', async () => (await t.app.services.db.select().from(deployments)).length === 0);
  expect(await liveProcesses(`${t.dataDir}/deployments/local`)).toBe(0);
  await t.stop();
}
