// `atelier run logs -f` while the control plane it follows is SIGKILLed and started again: the CLI reconnects and
// resumes after the last event it printed, so every line is printed once (the retry's own lines after its marker),
// and it exits 0 when the run succeeds.
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { packDirectory } from '../../server/artifacts/archive';
import { cliBin, repoRoot } from '../harness/cli';
import { apiClient, PUBLISH } from '../harness/client';
import { type ControlPlaneProcess, startControlPlaneProcess } from '../harness/control-plane-process';
import { seedEmbeddedDatabase } from '../harness/pglite-template';
import { freePort } from '../harness/ports';
import { until } from '../triggers/world';

const TOKEN = 'atl_logs-follow-restart-admin-token';
const LINES = 30;
let dataDir = '';
let moduleDir = '';
const planes: ControlPlaneProcess[] = [];

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'atelier-logs-follow-'));
  // A migrated copy: the first control plane would otherwise migrate an empty PGlite (~8 s of CPU) before serving.
  await seedEmbeddedDatabase(dataDir);
  moduleDir = await mkdtemp(path.join(os.tmpdir(), 'atelier-logs-module-'));
  await writeFile(
    path.join(moduleDir, 'atelier.module.yaml'),
    'namespace: test\nname: counting\nentrypoint: main.mjs\nruntime: node\ncache:\n  enabled: false\nparameters:\n  type: object\n  properties:\n    n: { type: integer }\n    ms: { type: integer }\n',
  );
  await writeFile(
    path.join(moduleDir, 'main.mjs'),
    `const { n, ms } = JSON.parse(process.env.ATELIER_PARAMS);
for (let i = 0; i < n; i++) {
  console.log('line ' + i);
  await new Promise((r) => setTimeout(r, ms));
}
`,
  );
});
afterAll(async () => {
  for (const p of planes) await p.kill();
  await rm(dataDir, { recursive: true, force: true });
  await rm(moduleDir, { recursive: true, force: true });
});

it('resumes after the last line it printed when the control plane restarts, every line once, and exits 0', async () => {
  const port = await freePort();
  const env = { PORT: String(port), ATELIER_DATA_DIR: dataDir, ATELIER_ADMIN_TOKEN: TOKEN, ATELIER_TICK_MS: '200', ATELIER_HEARTBEAT_TIMEOUT_SECONDS: '600' };
  const first = await startControlPlaneProcess(env);
  planes.push(first);
  const api = apiClient(first.url, TOKEN);
  expect((await api.upload(PUBLISH, {}, 'artifact', await packDirectory(moduleDir))).errors).toBeUndefined();
  await api.gql(`mutation ($s: String!) { createWorkflow(spec: $s) { created } }`, {
    s: JSON.stringify({ name: 'counting', tasks: [{ name: 'count', module: 'test/counting', parameters: { n: LINES, ms: 150 } }] }),
  });
  const { startRun } = await api.gql(`mutation { startRun(workflow: "counting") { id } }`);

  const cli = spawn(process.execPath, [cliBin, 'run', 'logs', startRun.id, '-f'], {
    cwd: repoRoot,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ATELIER_URL: first.url, ATELIER_TOKEN: TOKEN },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  cli.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  cli.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<number | null>((resolve) => cli.once('close', (code) => resolve(code)));
  try {
    await until('a few lines to be printed', async () => (stdout.match(/line \d+/g)?.length ?? 0) >= 4, 60_000);
    await first.kill('SIGKILL');
    planes.push(await startControlPlaneProcess(env));
    const code = await Promise.race([exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 150_000))]);
    const lines = stdout.trim().split('\n');
    const marker = lines.indexOf('[count] ── attempt 2 ──');
    expect({ code, marker: marker > 0 }, `${stdout}\n${stderr}`).toEqual({ code: 0, marker: true });
    // Attempt 1's lines up to the kill, each once and in order; then the retry's, all of them, each once.
    const before = lines.slice(0, marker);
    expect(before).toEqual(before.map((_, i) => `[count] line ${i}`));
    expect(lines.slice(marker + 1)).toEqual(Array.from({ length: LINES }, (_, i) => `[count] line ${i}`));
  } finally {
    cli.kill('SIGKILL');
  }
}, 240_000);
