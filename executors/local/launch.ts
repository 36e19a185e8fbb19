// Starting a local attempt: the module unpacked (verified against its digest) into the attempt's directory (or
// handed to a hot cluster's warm worker), its environment built from the task, and the child spawned as its own
// process group, inside the sandbox (sandbox.ts) or, opted out, under the supervisor (supervisor.ts).
import { type ChildProcess, spawn } from 'node:child_process';
import { chown, copyFile, mkdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { startTimeOf } from '../../plugins/process-group';
import type { AbortReason, TaskContext, TaskMessage } from '../../plugins/sdk';
import { traceHop } from '../../plugins/trace';
import type { LocalHandle } from './options';
import { followPipes } from './pipes';
import { openProgressFile, type ProgressFile } from './progress-file';
import { type Isolator, optOutHint, SANDBOX_WORKDIR, sandboxArgs, sandboxSearchPath } from './sandbox';
import { supervised } from './supervisor';
import { ArchiveDigestMismatch, unpackVerified } from './unpack';
import type { WarmPool, WarmWorker } from './warm-pool';

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
  /** The hot cluster whose worker runs the attempt, and that worker (released when the attempt is finalized). */
  warmPool?: WarmPool;
  warmWorker?: WarmWorker;
  /** Runs in the sandbox: the group's leader is bwrap, which a SIGTERM would end before the module could. */
  sandboxed?: boolean;
  /** The sandboxed attempt's own directory, removed when the attempt is finalized. */
  attemptDir?: string;
  /** Where the module's artifacts are left (ATELIER_ARTIFACTS_DIR, as this host sees it): logged once it exits 0. */
  artifactsDir?: string;
  /** Date.now() when the module's process exited: where the attempt's duration ends (TaskOutcome.endedAt). */
  exitedAt?: number;
  /** The progress channel of a cold-started module (fd 3 a file the host tails); a warm worker's fd 3 stays a pipe. */
  progressFile?: ProgressFile;
  /** Ends the progress file's last line (set while it is followed). */
  endProgress?: () => void;
  /** The run whose hops this attempt stamps (plugins/trace.ts, off unless tracing). */
  traceKey?: string;
}

const runtimes: Record<string, { command: () => string; args: (file: string) => string[] }> = {
  node: { command: () => process.execPath, args: (file) => [file] },
  // -u: unbuffered, so logs arrive as they are printed rather than when the process exits
  python3: { command: () => 'python3', args: (file) => ['-u', file] },
  shell: { command: () => '/bin/sh', args: (file) => [file] },
};

const errorMessage = (err: unknown) => (err instanceof Error ? err.message : String(err));
const safePathPart = (s: string) => s.replace(/[^A-Za-z0-9._-]/g, '_');

/** What launching needs from the executor: its settings, how modules are isolated, and the hot clusters it holds. */
export interface LaunchConfig {
  maxLogLineBytes: number;
  inheritEnv: Record<string, string>;
  warmPools: Map<string, Promise<WarmPool>>;
  isolator: Isolator;
  /** The folder (mode 0711, outside any data directory) holding sandboxed attempts' directories. */
  sandboxRoot(): Promise<string>;
}

/**
 * Unpacks the module (or takes it from a warm worker) and starts it as its own process group, its pipes followed
 * into `state.sink` from the first byte: in the sandbox, or (opted out) under the supervisor that kills it with
 * its host. A module that cannot start gets a handle with no pid and the reason.
 */
export async function launch(config: LaunchConfig, task: TaskMessage, ctx: TaskContext, state: AttemptState): Promise<LocalHandle> {
  const { warmPools, maxLogLineBytes, isolator } = config;
  const { entrypoint, runtime, ref } = task.module;
  const refuse = (error: string, reason = 'launch-failed'): LocalHandle => ({ pid: null, pgid: null, startTime: null, error, reason });
  const spec = runtimes[runtime];
  if (!spec) return refuse(`unknown runtime "${runtime}" for entrypoint "${entrypoint}" of ${ref} (known: ${Object.keys(runtimes).join(', ')})`);
  if (isolator.kind === 'unavailable') {
    return refuse(`this executor host does not run modules without isolation: ${isolator.reason}. ${optOutHint}`, 'isolation-unavailable');
  }
  const sandbox = isolator.kind === 'bwrap' ? isolator : undefined;
  const network = (task.settings?.local as { network?: unknown } | undefined)?.network === true;

  const provisioningFrom = performance.now();
  state.traceKey = task.runId;
  // A hot cluster's worker runs node modules only (and never with network); anything else runs cold.
  const pool = task.hotCluster && runtime === 'node' && !network ? await warmPools.get(task.hotCluster)?.catch(() => undefined) : undefined;
  const warm = await pool?.take();
  if (warm) [state.warmPool, state.warmWorker] = [pool, warm];
  // A sandboxed warm worker's /work is its own folder: the attempt's files (model inputs, outputs) go there.
  const attemptDir = warm
    ? (warm.folder ?? ctx.workdir)
    : sandbox
      ? path.join(await config.sandboxRoot(), `${safePathPart(task.taskId)}-${task.attempt}`)
      : ctx.workdir;
  if (sandbox && !warm) state.attemptDir = attemptDir;
  let moduleDir: string;
  try {
    moduleDir = pool && warm ? await pool.moduleDir(task.module.digest, () => ctx.artifactPath()) : path.join(attemptDir, 'module');
    if (!warm) {
      if (sandbox) {
        await rm(attemptDir, { recursive: true, force: true });
        await mkdir(attemptDir, { mode: 0o700 });
      }
      await unpackVerified(await ctx.artifactPath(), task.module.digest, moduleDir);
    }
  } catch (err) {
    if (err instanceof ArchiveDigestMismatch) return refuse(`module ${ref}: ${err.message}`, 'digest-mismatch');
    throw err;
  }
  // Model inputs' files under models/PORT/ of the attempt directory (ATELIER_MODELS_DIR), each path kept inside it.
  if (task.models && ctx.objectPath) {
    for (const [port, model] of Object.entries(task.models)) {
      const dir = path.join(attemptDir, 'models', port);
      for (const file of model.files) {
        const target = path.resolve(dir, file.path);
        if (!target.startsWith(dir + path.sep)) return refuse(`model ${model.model} version ${model.version}: file "${file.path}" points outside its folder`);
        await mkdir(path.dirname(target), { recursive: true });
        await copyFile(await ctx.objectPath(file.digest), target);
      }
    }
  }

  const file = path.resolve(moduleDir, entrypoint);
  if (!file.startsWith(moduleDir + path.sep)) return refuse(`entrypoint "${entrypoint}" of ${ref} points outside the module`);
  const isFile = await stat(file).then(
    (s) => s.isFile(),
    () => false,
  );
  if (!isFile) return refuse(`entrypoint "${entrypoint}" not found in module ${ref}`);

  // Paths as the module sees them: in the sandbox its attempt directory is /work.
  const inside = sandbox ? SANDBOX_WORKDIR : attemptDir;
  if (!warm || !sandbox) {
    await mkdir(path.join(attemptDir, 'outputs'), { recursive: true });
    if (sandbox?.identity) {
      await chown(attemptDir, sandbox.identity.uid, sandbox.identity.gid);
      await chown(path.join(attemptDir, 'outputs'), sandbox.identity.uid, sandbox.identity.gid);
    }
  }
  // Files left here are logged as the task's artifacts once it exits 0 (artifacts.ts), with the tracking token the
  // control plane gave the attempt.
  if (task.tracking) {
    state.artifactsDir = path.join(attemptDir, 'outputs', 'artifacts');
    await mkdir(state.artifactsDir, { recursive: true });
    if (sandbox?.identity) await chown(state.artifactsDir, sandbox.identity.uid, sandbox.identity.gid);
  }
  const env: NodeJS.ProcessEnv = sandbox
    ? { PATH: sandboxSearchPath(sandbox), HOME: inside, TMPDIR: '/tmp', LANG: config.inheritEnv.LANG ?? 'C.UTF-8' }
    : { ...config.inheritEnv };
  Object.assign(env, {
    ATELIER_TASK_ID: task.taskId,
    ATELIER_RUN_ID: task.runId,
    ATELIER_ATTEMPT: String(task.attempt),
    ATELIER_NODE: task.node,
    ATELIER_PARAMS: JSON.stringify(task.parameters ?? {}),
    ATELIER_INPUTS: JSON.stringify(task.inputs ?? {}),
    ...(task.datasets ? { ATELIER_DATASETS: JSON.stringify(task.datasets) } : {}),
    ...(task.models ? { ATELIER_MODELS: JSON.stringify(task.models), ATELIER_MODELS_DIR: path.posix.join(inside, 'models') } : {}),
    ATELIER_OUTPUT_DIR: path.posix.join(inside, 'outputs'),
    ...(state.artifactsDir ? { ATELIER_ARTIFACTS_DIR: path.posix.join(inside, 'outputs', 'artifacts') } : {}),
    ATELIER_PROGRESS_FD: '3',
    // This host reads metric series packed (plugins/progress-lines.ts): the helpers then send floats as bytes, not text.
    ATELIER_PROGRESS_PACKED: '1',
    // ... and steps that count up by one as their first (`stepStart`). A variable of its own: helpers already copied
    // into modules compare ATELIER_PROGRESS_PACKED to '1' exactly, so a '2' would put them back on JSON columns.
    ATELIER_PROGRESS_STEP_START: '1',
    // ... and packed numbers as raw bytes after their line (a frame, plugins/progress-frames.ts), not base64 in it.
    ATELIER_PROGRESS_FRAMES: '1',
    // MLflow clients inside the module log into this task (mlflow.start_run() resumes MLFLOW_RUN_ID).
    ...(task.tracking ? { MLFLOW_TRACKING_URI: task.tracking.uri, MLFLOW_RUN_ID: task.tracking.runId, MLFLOW_TRACKING_TOKEN: task.tracking.token } : {}),
  });

  const command = spec.command();
  if (pool && warm) {
    const { child } = warm;
    await pool.start(warm, { moduleDir, entrypoint, env });
    const startTime = startTimeOf(child.pid!); // before the event loop may reap a module that exits at once
    state.exited = exitOf(child, state);
    state.child = child;
    state.sandboxed = Boolean(sandbox);
    followPipes(state, maxLogLineBytes);
    // The unpacked module and a started process were waiting: nothing was provisioned for this attempt.
    state.provisioningMs = 0;
    return { pid: child.pid!, pgid: child.pid!, startTime };
  }
  const insideFile = sandbox ? path.posix.join(SANDBOX_WORKDIR, 'module', path.relative(moduleDir, file).split(path.sep).join('/')) : file;
  const insideModule = sandbox ? path.posix.join(SANDBOX_WORKDIR, 'module') : moduleDir;
  const started = sandbox
    ? {
        command: sandbox.bwrap,
        args: sandboxArgs(sandbox, { attemptDir, moduleDir, cwd: insideModule, network, command, args: spec.args(insideFile) }),
      }
    : supervised(command, spec.args(file));
  // fd 3 is a file the host tails (progress-file.ts), so the module never waits for the host to read.
  const progressFile = openProgressFile(attemptDir);
  state.progressFile = progressFile;
  const child = spawn(started.command, started.args, {
    cwd: sandbox ? '/' : moduleDir,
    env,
    detached: true, // its own session and process group, so a cancel reaches the grandchildren too
    // The supervisor's stdin is the pipe it watches: it closes when this host dies, however it dies.
    stdio: [sandbox ? 'ignore' : 'pipe', 'pipe', 'pipe', progressFile.writeFd],
    ...(sandbox?.identity ?? {}),
  });
  // Read now, before the event loop may reap a module that exits at once (startTimeOf, process-group.ts).
  const startTime = child.pid === undefined ? null : startTimeOf(child.pid);
  child.on('error', () => undefined); // a failed spawn is reported below; later errors (a failed kill) are not fatal
  child.stdin?.on('error', () => undefined);
  state.exited = exitOf(child, state);
  try {
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
  } catch (err) {
    progressFile.stop();
    return refuse(`cannot start entrypoint "${entrypoint}" of ${ref} with ${runtime} (${started.command}): ${errorMessage(err)}`);
  }
  progressFile.handedOver();
  traceHop('host: module spawned', task.runId);
  state.child = child;
  state.sandboxed = Boolean(sandbox);
  state.provisioningMs = Math.round(performance.now() - provisioningFrom);
  // Read from the start: Node discards pipe data that nobody listens to once the child exits, and a module
  // that fills a pipe nobody reads would block.
  followPipes(state, maxLogLineBytes);
  const pid = child.pid!;
  return { pid, pgid: pid, startTime };
}

function exitOf(child: ChildProcess, state: AttemptState): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve) =>
    child.once('exit', (code, signal) => {
      state.hasExited = true;
      state.exitedAt = Date.now();
      if (state.traceKey) traceHop('host: module exit stamped', state.traceKey);
      resolve({ code, signal });
    }),
  );
}
