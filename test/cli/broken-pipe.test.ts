// `atelier run logs -f | head` and `atelier run watch --logs | head`: when the reader leaves, the CLI stops at once and
// quietly (status 141, as SIGPIPE ends other tools), with no stack on stderr, and does not go on following the run.
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { packDirectory } from '../../server/artifacts/archive';
import { startTestApp, type TestApp } from '../harness/app';
import { cliBin, repoRoot } from '../harness/cli';
import { PUBLISH } from '../harness/client';
import { until } from '../triggers/world';

let t: TestApp;
let moduleDir = '';

beforeAll(async () => {
  t = await startTestApp();
  moduleDir = await mkdtemp(path.join(os.tmpdir(), 'atelier-broken-pipe-'));
  await writeFile(
    path.join(moduleDir, 'atelier.module.yaml'),
    'namespace: test\nname: chatty\nentrypoint: main.mjs\nruntime: node\ncache:\n  enabled: false\n',
  );
  // A line every 50 ms for a minute: far longer than the test needs; the run is cancelled at the end.
  await writeFile(
    path.join(moduleDir, 'main.mjs'),
    `for (let i = 0; i < 1200; i++) { console.log('line ' + i); await new Promise((r) => setTimeout(r, 50)); }\n`,
  );
  expect((await t.api.upload(PUBLISH, {}, 'artifact', await packDirectory(moduleDir))).errors).toBeUndefined();
  await t.createWorkflow({ name: 'chatty', tasks: [{ name: 'talk', module: 'test/chatty' }] });
}, 60_000);

afterAll(async () => {
  await t?.stop();
  await rm(moduleDir, { recursive: true, force: true });
});

/** Runs the CLI, reads its stdout until the first log line, then closes the pipe as `head -1` does. */
async function readOneLineThenLeave(args: string[]) {
  const cli = spawn(process.execPath, [cliBin, ...args], {
    cwd: repoRoot,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ATELIER_URL: t.url, ATELIER_TOKEN: t.app.adminToken },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  cli.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<number | null>((resolve) => cli.once('close', (code) => resolve(code)));
  try {
    await new Promise<void>((resolve) => {
      const onData = (c: Buffer) => {
        stdout += c.toString();
        if (!/\bline \d+/.test(stdout)) return;
        cli.stdout.off('data', onData);
        cli.stdout.destroy();
        resolve();
      };
      cli.stdout.on('data', onData);
      cli.once('close', () => resolve());
    });
    return { code: await exited, stdout, stderr };
  } finally {
    cli.kill('SIGKILL');
  }
}

for (const [name, args] of [
  ['run logs -f', ['logs', '-f']],
  ['run watch --logs', ['watch', '--logs', '--plain']],
] as const) {
  it(`${name}: ends quietly with status 141 when its reader leaves, while the run goes on`, async () => {
    const { startRun } = await t.api.gql(`mutation { startRun(workflow: "chatty") { id } }`);
    await until('the task to run', async () => (await t.api.gql(`{ run(id: "${startRun.id}") { status } }`)).run.status === 'RUNNING', 30_000);
    const r = await readOneLineThenLeave(['run', args[0], startRun.id, ...args.slice(1)]);
    const { run } = await t.api.gql(`{ run(id: "${startRun.id}") { status } }`);
    await t.api.gql(`mutation { cancelRun(id: "${startRun.id}") { id } }`);
    expect({ code: r.code, stderr: r.stderr }, r.stdout).toEqual({ code: 141, stderr: '' });
    // It stopped because its reader left, not because the run ended.
    expect(run.status).toBe('RUNNING');
  }, 90_000);
}
