// Starting a local attempt: the module unpacked into the attempt's work directory (or handed to a hot cluster's
// warm worker), its environment built from the task, and the child spawned as its own process group.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import * as tar from 'tar';
import type { AbortReason, TaskContext, TaskMessage } from '../../plugins/sdk';
import type { LocalHandle } from './options';
import { followPipes } from './pipes';
import { readStartTime } from './process-group';
import type { WarmPool } from './warm-pool';

/** What the executor knows of one attempt it started in this process. */
export interface AttemptState {
  handle: Promise<LocalHandle>;
  child?: ChildProcess;
  exited?: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  hasExited: boolean;
  /** Where pipe output goes: the submit context, replaced by the one `wait` is given. */
  sink: TaskContext;
  stderrTail: string[];
  cancelReason?: AbortReason;
  /** Our SIGTERM reached the process group. */
  signalled: boolean;
  /** Our SIGKILL followed, the grace period having passed. */
  killedAfterGrace: boolean;
  killTimer?: NodeJS.Timeout;
  /** Unpacking and spawning before the module ran; 0 when a hot cluster's warm worker took it. */
  provisioningMs?: number;
  /** The hot cluster whose worker runs the attempt. */
  warmPool?: WarmPool;
}

const runtimes: Record<string, { command: () => string; args: (file: string) => string[] }> = {
  node: { command: () => process.execPath, args: (file) => [file] },
  // -u: unbuffered, so logs arrive as they are printed rather than when the process exits
  python3: { command: () => 'python3', args: (file) => ['-u', file] },
  shell: { command: () => '/bin/sh', args: (file) => [file] },
};

const errorMessage = (err: unknown) => (err instanceof Error ? err.message : String(err));

/** What launching needs from the executor: its settings and the hot clusters it holds warm. */
export interface LaunchConfig {
  maxLogLineBytes: number;
  inheritEnv: Record<string, string>;
  warmPools: Map<string, Promise<WarmPool>>;
}

/**
 * Unpacks the module (or takes it from a warm worker) and starts it as its own process group, its pipes followed
 * into `state.sink` from the first byte. A module that cannot start gets a handle with no pid and the reason.
 */
export async function launch(config: LaunchConfig, task: TaskMessage, ctx: TaskContext, state: AttemptState): Promise<LocalHandle> {
  const { warmPools, maxLogLineBytes } = config;
  const { entrypoint, runtime, ref } = task.module;
  const refuse = (error: string): LocalHandle => ({ pid: null, pgid: null, startTime: null, error });
  const spec = runtimes[runtime];
  if (!spec) return refuse(`unknown runtime "${runtime}" for entrypoint "${entrypoint}" of ${ref} (known: ${Object.keys(runtimes).join(', ')})`);

  const provisioningFrom = performance.now();
  // A hot cluster's worker runs node modules only; anything else (or a cluster not warm here) runs cold.
  const warm = task.hotCluster && runtime === 'node' ? await warmPools.get(task.hotCluster)?.catch(() => undefined) : undefined;
  const moduleDir = warm ? await warm.moduleDir(task.module.digest, () => ctx.artifactPath()) : path.join(ctx.workdir, 'module');
  const outputDir = path.join(ctx.workdir, 'outputs');
  await mkdir(outputDir, { recursive: true });
  if (!warm) {
    await mkdir(moduleDir, { recursive: true });
    await tar.x({ file: await ctx.artifactPath(), cwd: moduleDir, preserveOwner: false, strict: true });
  }

  const file = path.resolve(moduleDir, entrypoint);
  if (!file.startsWith(moduleDir + path.sep)) return refuse(`entrypoint "${entrypoint}" of ${ref} points outside the module`);
  const isFile = await stat(file).then(
    (s) => s.isFile(),
    () => false,
  );
  if (!isFile) return refuse(`entrypoint "${entrypoint}" not found in module ${ref}`);

  const env: NodeJS.ProcessEnv = { ...config.inheritEnv };
  Object.assign(env, {
    ATELIER_TASK_ID: task.taskId,
    ATELIER_RUN_ID: task.runId,
    ATELIER_ATTEMPT: String(task.attempt),
    ATELIER_NODE: task.node,
    ATELIER_PARAMS: JSON.stringify(task.parameters ?? {}),
    ATELIER_INPUTS: JSON.stringify(task.inputs ?? {}),
    ...(task.datasets ? { ATELIER_DATASETS: JSON.stringify(task.datasets) } : {}),
    ATELIER_OUTPUT_DIR: outputDir,
    ATELIER_PROGRESS_FD: '3',
  });

  const command = spec.command();
  if (warm) {
    state.warmPool = warm;
    const child = await warm.run({ file, cwd: moduleDir, env });
    state.exited = exitOf(child, state);
    state.child = child;
    followPipes(state, maxLogLineBytes);
    // The unpacked module and a started process were waiting: nothing was provisioned for this attempt.
    state.provisioningMs = 0;
    return { pid: child.pid!, pgid: child.pid!, startTime: await readStartTime(child.pid!) };
  }
  const child = spawn(command, spec.args(file), {
    cwd: moduleDir,
    env,
    detached: true, // its own process group, so a cancel reaches the grandchildren too
    stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
  });
  child.on('error', () => undefined); // a failed spawn is reported below; later errors (a failed kill) are not fatal
  state.exited = exitOf(child, state);
  try {
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
  } catch (err) {
    return refuse(`cannot start entrypoint "${entrypoint}" of ${ref} with ${runtime} (${command}): ${errorMessage(err)}`);
  }
  state.child = child;
  state.provisioningMs = Math.round(performance.now() - provisioningFrom);
  // Read from the start: Node discards pipe data that nobody listens to once the child exits, and a module
  // that fills a pipe nobody reads would block.
  followPipes(state, maxLogLineBytes);
  const pid = child.pid!;
  return { pid, pgid: pid, startTime: await readStartTime(pid) };
}

function exitOf(child: ChildProcess, state: AttemptState): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve) =>
    child.once('exit', (code, signal) => {
      state.hasExited = true;
      resolve({ code, signal });
    }),
  );
}
