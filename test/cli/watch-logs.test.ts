// `atelier run watch ID --logs` end to end: the real CLI attached to a live run whose task is held running (the gate
// fixture waits for a file), its log lines printed as they come, and the task's failure printed once: the stderr
// line live, the failure line and the summary pointing at it instead of quoting it again.
import { spawn } from 'node:child_process';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { executorsFromEnv } from '../../server/executors';
import { startTestApp, type TestApp } from '../harness/app';
import { cliBin, repoRoot, runCli, showCli } from '../harness/cli';

let t: TestApp;
let scratch: string;

beforeAll(async () => {
  scratch = await mkdtemp(path.join(os.tmpdir(), 'atelier-watch-logs-'));
  await chmod(scratch, 0o755); // a sandboxed module may run as nobody
  // The gate's folder is one a sandboxed module may read, so it sees the file the test writes there.
  t = await startTestApp({}, { executors: await executorsFromEnv({ ...process.env, ATELIER_MODULE_READONLY_PATHS: scratch }) });
  await t.publishFixture('gate');
  await t.createWorkflow({ name: 'gated', parameters: { gate: {} }, tasks: [{ name: 'gate', module: 'test/gate', parameters: { path: '${params.gate}' } }] });
}, 60_000);

afterAll(async () => {
  await t?.stop();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

it('prints a live run’s log lines as they come, and its failing task’s stderr once', async () => {
  const gate = path.join(scratch, 'open');
  const { startRun } = await t.api.gql(`mutation ($p: JSON) { startRun(workflow: "gated", parameters: $p) { id } }`, { p: { gate } });
  const child = spawn(process.execPath, [cliBin, 'run', 'watch', startRun.id, '--logs', '--plain'], {
    cwd: repoRoot,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ATELIER_URL: t.url, ATELIER_TOKEN: t.app.adminToken ?? '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
  const waiting = new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      if (stdout.includes(`[gate] waiting for ${gate}`)) resolve();
    });
    void closed.then((code) => reject(new Error(`the watch ended (exit ${code}) before the task's log line:\n${stdout}\n${stderr}`)));
  });
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  // The task's own first line, printed while it runs: only then is it let go (a condition, not a sleep).
  await waiting;
  await writeFile(gate, '');
  const code = await closed;
  const shown = `exit ${code}\n--- stdout\n${stdout}\n--- stderr\n${stderr}`;
  expect(code, shown).toBe(1);
  expect(`${stdout}${stderr}`.match(/gate: opened, and failing as told/g), shown).toHaveLength(1);
  expect(stdout, shown).toMatch(/^\[gate\] gate: opened, and failing as told$/m);
  expect(stdout, shown).toMatch(/^\[gate\] FAILED .*exited with code 1 \(its stderr is above\)$/m);
}, 90_000);

it('starts a run in the experiment run start --experiment names (the API’s startRun experiment)', async () => {
  const run = (args: string[]) => runCli({ url: t.url, token: t.app.adminToken }, args);
  const started = await run(['run', 'start', 'gated', '--param', `gate=${path.join(scratch, 'never')}`, '--experiment', 'gate-trials', '-q']);
  expect(started.code, showCli(started)).toBe(0);
  const id = started.stdout.trim();
  const { run: found } = await t.api.gql(`query ($id: ID!) { run(id: $id) { experiment { name } } }`, { id });
  expect(found.experiment.name).toBe('gate-trials');
  expect((await run(['run', 'cancel', id])).code).toBe(0);
}, 60_000);

it('says when a watched run ends by, and how long it has left, until its time limit ends it', async () => {
  const run = (args: string[]) => runCli({ url: t.url, token: t.app.adminToken }, args);
  const { startRun } = await t.api.gql(`mutation ($p: JSON) { startRun(workflow: "gated", parameters: $p, timeoutSeconds: 3) { id } }`, {
    p: { gate: path.join(scratch, 'never-opens') },
  });
  const watched = await run(['run', 'watch', startRun.id, '--plain']);
  expect(watched.stdout, showCli(watched)).toMatch(/^ends by \S+ \(time limit 3 s\), (in [\d.]+s|now)$/m);
  expect(watched.stdout).toContain('ran past its time limit of 3 s');
}, 60_000);
