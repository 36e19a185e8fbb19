// The control plane the CLI's end-to-end files (cli*.test.ts) run the iris example against: the real app in-process
// on a database of its own (the worker's shared Postgres, test/harness/app.ts), the real CLI as child processes. Each
// file starts its own, so the files run on different workers; the README's first steps (push, create, run) set up
// what a file needs, through the CLI as a user takes them.
import { expect } from 'vitest';
import { startTestApp, type TestApp } from '../harness/app';
import { type CliResult, runCli, showCli } from '../harness/cli';

export const IRIS_MODULES = ['prepare', 'train', 'evaluate'];

export interface IrisPlane {
  t: TestApp;
  url: string;
  dataDir: string;
  adminToken: string;
  /** `atelier ARGS` as the admin; `command` replaces the CLI with another script (for examples). */
  cli(args: string[], env?: Record<string, string>, command?: string[]): Promise<CliResult>;
  gql(query: string, variables?: Record<string, unknown>): Promise<any>;
  stop(): Promise<void>;
}

export async function startIrisPlane(): Promise<IrisPlane> {
  const t = await startTestApp({ ATELIER_DEPLOYMENT_STATS_MS: '200' });
  return {
    t,
    url: t.url,
    dataDir: t.dataDir,
    adminToken: t.app.adminToken,
    cli: (args, env = {}, command) => runCli({ url: t.url, token: t.app.adminToken }, args, env, command),
    gql: (query, variables = {}) => t.api.gql(query, variables),
    stop: () => t.stop(),
  };
}

/**
 * The README's first steps, as a user types them: the three modules pushed, the workflow created, and a run of it to
 * success (which registers examples/iris version 1 from iris-evaluate). Returns that run's id.
 */
export async function irisReady(plane: IrisPlane): Promise<string> {
  for (const r of await Promise.all(IRIS_MODULES.map((m) => plane.cli(['module', 'push', `examples/iris/${m}`])))) expect(r.code, showCli(r)).toBe(0);
  const created = await plane.cli(['workflow', 'create', 'examples/iris/workflow.yaml']);
  expect(created.code, showCli(created)).toBe(0);
  const run = await plane.cli(['run', 'start', 'iris', '--param', 'epochs=200', '--watch']);
  expect(run.code, showCli(run)).toBe(0);
  const runId = /started run ([0-9a-f-]{36})/.exec(run.stdout)?.[1];
  if (!runId) throw new Error(`run start printed no run id:\n${showCli(run)}`);
  return runId;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * What `atelier ARGS` prints once it `shows` what the test waits for (or its last output after `ms`). The wait is
 * polled in-process (`ready`: a GraphQL query of the same state, a few ms) and the CLI is run only when that says the
 * state is there: each CLI run is a Node process, ~0.5 s of CPU, and polling the CLI itself every 100 ms ran dozens.
 */
export async function cliWhen(
  plane: IrisPlane,
  args: string[],
  shows: (stdout: string) => boolean,
  ready: () => Promise<boolean>,
  ms = 120_000,
): Promise<string> {
  let stdout = '';
  for (const deadline = Date.now() + ms; Date.now() < deadline; await sleep(100)) {
    if (!(await ready())) continue;
    stdout = (await plane.cli(args)).stdout;
    if (shows(stdout)) break;
  }
  return stdout;
}
