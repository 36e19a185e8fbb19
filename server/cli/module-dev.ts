// The local dev loop: `atelier module run DIR` runs a module from its working directory, unpublished, through
// the same executor host, local executor, task context and progress protocol a real run uses; and
// `atelier module push --test` runs the manifest's test command and reports what it printed.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createLocalExecutor } from '../../executors/local';
import { createMemoryBus } from '../../plugins/bus/memory';
import { createExecutorHost } from '../../plugins/host';
import { type ExecutorEvent, type TaskOutcome, taskMessageId } from '../../plugins/protocol';
import { createExecutorRegistry } from '../../plugins/registry';
import type { TaskMessage } from '../../plugins/sdk';
import { listModuleFiles, packDirectory } from '../artifacts/archive';
import { sha256 } from '../artifacts/store';
import { moduleEnvironment } from '../config';
import { checkParameters } from '../modules/manifest';
import { MANIFEST_FILE, type ModuleTestResult } from '../vocabulary';
import { CliError } from './errors';
import { readModuleDir } from './module-dir';

export interface ModuleRunOptions {
  parameters: Record<string, unknown>;
  /** Upstream outputs, by node name, as a workflow would pass them. */
  inputs?: Record<string, Record<string, unknown>>;
  timeoutSeconds?: number;
  /** Where log lines, progress and metrics go. */
  print: (line: string) => void;
  signal?: AbortSignal;
}

/** Runs the module once on an in-process executor host; resolves with its outcome. */
export async function runModuleDir(dir: string, options: ModuleRunOptions): Promise<TaskOutcome & { durationMs: number }> {
  const { root, manifest } = await readModuleDir(dir);
  const archive = await packDirectory(root, await listModuleFiles(root));
  const digest = sha256(archive);
  const problems = checkParameters(digest, manifest, options.parameters);
  if (problems.length) throw new CliError(`parameters do not match ${MANIFEST_FILE}: ${problems.map((p) => `${p.path} ${p.message}`).join('; ')}`);

  const scratch = await mkdtemp(path.join(os.tmpdir(), 'atelier-module-run-'));
  const archivePath = path.join(scratch, 'module.tar.gz');
  await writeFile(archivePath, archive);
  const bus = createMemoryBus();
  const host = createExecutorHost({
    bus,
    registry: createExecutorRegistry([createLocalExecutor({ inheritEnv: moduleEnvironment() })]),
    pools: ['dev'],
    hostName: `dev-${os.hostname()}`,
    artifacts: { fetch: async () => archivePath },
    workRoot: path.join(scratch, 'work'),
    maxConcurrency: 1,
    // One task on a private bus, no control plane: nothing to claim it from.
    verifyClaims: false,
    warn: (message) => options.print(`warning: ${message}`),
  });
  const task: TaskMessage = {
    taskId: randomUUID(),
    runId: randomUUID(),
    attempt: 1,
    node: manifest.name,
    pool: 'dev',
    executor: 'local',
    module: { ref: `${manifest.namespace}/${manifest.name}@dev`, digest, entrypoint: manifest.entrypoint, runtime: manifest.runtime },
    parameters: options.parameters,
    inputs: options.inputs ?? {},
    timeoutMs: (options.timeoutSeconds ?? manifest.timeoutSeconds ?? 3600) * 1000,
    settings: {},
    enqueuedAt: new Date().toISOString(),
  };
  try {
    const result = new Promise<Extract<ExecutorEvent, { kind: 'result' }>>((resolve) => {
      void bus.consumeEvents(
        async (deliveries) => {
          for (const d of deliveries) {
            const event = d.data;
            if (event.kind === 'log') for (const line of event.lines) options.print(event.stream === 'stderr' ? `! ${line}` : line);
            else if (event.kind === 'progress')
              options.print(`[progress ${event.fraction === null ? '' : `${Math.round(event.fraction * 100)}%`}${event.message ? ` ${event.message}` : ''}]`);
            else if (event.kind === 'metric') for (const p of event.points) options.print(`[metrics step ${p.step}] ${p.name}=${p.value}`);
            else if (event.kind === 'result') resolve(event);
            await d.ack();
          }
        },
        { durable: 'dev' },
      );
    });
    await host.start();
    const onAbort = () => void bus.publishCancel({ taskId: task.taskId, attempt: task.attempt, reason: 'stopped from the command line' });
    options.signal?.addEventListener('abort', onAbort, { once: true });
    await bus.publishTask('dev', task, taskMessageId(task.taskId, task.attempt));
    const event = await result;
    options.signal?.removeEventListener('abort', onAbort);
    return { ...event.outcome, durationMs: event.durationMs };
  } finally {
    await host.stop();
    await bus.close();
    await rm(scratch, { recursive: true, force: true });
  }
}

const TEST_OUTPUT_BYTES = 8000;

/** Runs the manifest's `test` command in the module directory with a shell, as CI would. */
export async function runModuleTest(dir: string, options: { timeoutSeconds?: number; print?: (chunk: string) => void } = {}): Promise<ModuleTestResult> {
  const { root, manifest } = await readModuleDir(dir);
  if (!manifest.test) throw new CliError(`${MANIFEST_FILE} has no "test" command; add one (e.g. test: python3 -m pytest) or leave out --test`);
  const started = Date.now();
  return new Promise((resolve) => {
    let output = '';
    const child = spawn('/bin/sh', ['-c', manifest.test!], {
      cwd: root,
      env: { ...process.env, ATELIER_MODULE_DIR: root },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    const keep = (chunk: Buffer) => {
      options.print?.(chunk.toString());
      output = (output + chunk.toString()).slice(-TEST_OUTPUT_BYTES);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const timer = setTimeout(
      () => {
        output += `\n(test timed out after ${options.timeoutSeconds ?? 600} s)`;
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          // already gone
        }
      },
      (options.timeoutSeconds ?? 600) * 1000,
    );
    const settle = (exitCode: number | null) => {
      clearTimeout(timer);
      resolve({ command: manifest.test!, passed: exitCode === 0, exitCode, durationMs: Date.now() - started, output });
    };
    child.on('error', (error) => {
      output += `\n${error.message}`;
      settle(null);
    });
    child.on('close', (code) => settle(code));
  });
}
