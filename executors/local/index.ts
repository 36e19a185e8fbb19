// The `local` executor: runs a module as a child process group on the host's machine, streams its stdout and
// stderr as logs and its fd-3 JSON lines as progress, metrics and outputs, and stops it with SIGTERM then SIGKILL.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import * as tar from 'tar';
import { applyProgressLine } from '../../plugins/progress-lines';
import {
  cancelled,
  defineExecutor,
  failed,
  permanentFailure,
  retryableFailure,
  succeeded,
  systemFailure,
  type AbortReason,
  type Executor,
  type TaskContext,
  type TaskMessage,
  type TaskOutcome,
} from '../../plugins/sdk';
import { createWarmPool, type WarmPool } from './warm-pool';

export interface LocalExecutorOptions {
  /** Time between SIGTERM and SIGKILL when stopping a module. */
  graceMs?: number;
  /** Longer stdout/stderr lines are cut (and marked) at this many bytes. */
  maxLogLineBytes?: number;
}

/**
 * What the control plane records for a local attempt. `startTime` is the process start time from
 * /proc/<pid>/stat (clock ticks since boot), so a recycled pid is never mistaken for ours. A module that could
 * not be launched gets a handle with no pid and the reason in `error`.
 */
export type LocalHandle =
  | { pid: number; pgid: number; startTime: number | null }
  | { pid: null; pgid: null; startTime: null; error: string };

interface AttemptState {
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

const STDERR_TAIL_LINES = 20;
const TAIL_LINE_CHARS = 1_000;
const PROGRESS_LINE_BYTES = 1 << 20; // outputs travel on fd 3 and may be larger than a log line
const DRAIN_MS = 1_000; // how long to read pipes after exit: a lingering grandchild may hold them open
const ADOPT_POLL_MS = 1_000;

const errorMessage = (err: unknown) => (err instanceof Error ? err.message : String(err));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export function createLocalExecutor(options: LocalExecutorOptions = {}): Executor<LocalHandle> {
  const graceMs = options.graceMs ?? 5_000;
  const maxLogLineBytes = options.maxLogLineBytes ?? 16 * 1024;
  const attempts = new Map<string, AttemptState>();
  /** Hot clusters held warm here, by name. */
  const warmPools = new Map<string, Promise<WarmPool>>();
  const keyOf = (task: TaskMessage) => `${task.taskId}:${task.attempt}`;

  async function launch(task: TaskMessage, ctx: TaskContext, state: AttemptState): Promise<LocalHandle> {
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
    const isFile = await stat(file).then((s) => s.isFile(), () => false);
    if (!isFile) return refuse(`entrypoint "${entrypoint}" not found in module ${ref}`);

    const env: NodeJS.ProcessEnv = {};
    for (const name of ['PATH', 'HOME', 'LANG']) if (process.env[name] !== undefined) env[name] = process.env[name];
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
      follow(state);
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
    follow(state);
    const pid = child.pid!;
    return { pid, pgid: pid, startTime: await readStartTime(pid) };
  }

  /** Drains the child's pipes into `state.sink`; stdout/stderr become logs, fd 3 becomes progress. */
  function follow(state: AttemptState) {
    if (!state.child) return;
    const [, stdout, stderr, channel] = state.child.stdio as (Readable | null)[];
    const pipeLines = (stream: Readable | null | undefined, maxBytes: number, onLine: (line: string, cut: boolean) => void) => {
      if (!stream) return;
      const splitter = createLineSplitter(maxBytes, onLine);
      stream.on('data', (chunk: Buffer) => splitter.push(chunk));
      stream.on('end', () => splitter.end());
      stream.on('error', () => undefined);
    };
    pipeLines(stdout, maxLogLineBytes, (line, cut) => state.sink.log('stdout', cut ? `${line} …[line cut at ${maxLogLineBytes} bytes]` : line));
    pipeLines(stderr, maxLogLineBytes, (line, cut) => {
      state.sink.log('stderr', cut ? `${line} …[line cut at ${maxLogLineBytes} bytes]` : line);
      state.stderrTail.push(line.length > TAIL_LINE_CHARS ? `${line.slice(0, TAIL_LINE_CHARS)}…` : line);
      if (state.stderrTail.length > STDERR_TAIL_LINES) state.stderrTail.shift();
    });
    pipeLines(channel, PROGRESS_LINE_BYTES, (line, cut) => {
      if (cut) state.sink.log('stderr', `[atelier] ignored a progress line longer than ${PROGRESS_LINE_BYTES} bytes`);
      else handleProgressLine(line, state.sink);
    });
  }

  function outcomeOf(state: AttemptState, code: number | null, signal: NodeJS.Signals | null): TaskOutcome {
    const tail = state.stderrTail.join('\n');
    if (state.signalled) {
      const how = state.killedAfterGrace ? `killed with SIGKILL after a ${graceMs} ms grace period` : 'stopped with SIGTERM';
      return cancelled(state.cancelReason ?? 'cancelled', `process group ${how}`, { exitCode: code });
    }
    if (code === 0) return succeeded({ exitCode: 0 });
    if (signal === 'SIGKILL' || code === 137) {
      return retryableFailure(
        'killed',
        `${signal === 'SIGKILL' ? 'killed by SIGKILL' : 'exited with code 137 (a child killed by SIGKILL)'}, not sent by Atelier: ` +
          `probably out of memory (the kernel's OOM killer)${tail ? `; last stderr lines:\n${tail}` : ''}`,
        { exitCode: code },
      );
    }
    if (signal) {
      return failed('signal', `terminated by ${signal}${tail ? `; last stderr lines:\n${tail}` : ''}`, { exitCode: null });
    }
    // the task's own retry policy decides: a flaky step may well pass the second time
    return failed('exit-code', tail ? `exited with code ${code}; last stderr lines:\n${tail}` : `exited with code ${code} (no stderr output)`, {
      exitCode: code,
    });
  }

  /** Kills whatever is left of the group, and waits (briefly) until /proc says it is gone. */
  async function killGroup(handle: { pid: number; pgid: number; startTime: number | null }) {
    for (let i = 0; i < 40; i++) {
      if (!(await groupAlive(handle))) return;
      signalGroup(handle.pgid, 'SIGKILL');
      await sleep(25);
    }
  }

  return defineExecutor<LocalHandle>({
    name: 'local',

    async submit(task, ctx) {
      const key = keyOf(task);
      const existing = attempts.get(key);
      if (existing) return existing.handle; // the same attempt delivered again: adopt the running process
      const state: AttemptState = {
        handle: undefined as unknown as Promise<LocalHandle>,
        hasExited: false,
        sink: ctx,
        stderrTail: [],
        signalled: false,
        killedAfterGrace: false,
      };
      state.handle = launch(task, ctx, state);
      attempts.set(key, state);
      // A throw (extraction, disk) leaves no process behind: forget it so a retry starts afresh.
      state.handle.catch(() => attempts.delete(key));
      return state.handle;
    },

    async wait(handle, task, ctx) {
      if (handle.pid === null) return permanentFailure('launch-failed', handle.error);
      const state = attempts.get(keyOf(task));
      if (!state?.child || !state.exited) return adopt(handle);
      state.sink = ctx;
      const { code, signal } = await state.exited;
      await drained(state.child, DRAIN_MS);
      return { ...outcomeOf(state, code, signal), provisioningMs: state.provisioningMs };
    },

    async cancel(handle, task, reason) {
      if (handle.pid === null) return;
      const state = attempts.get(keyOf(task));
      if (state) {
        if (state.cancelReason) return;
        state.cancelReason = reason;
      }
      if (state?.hasExited || !(await groupAlive(handle))) return;
      const signalled = signalGroup(handle.pgid, 'SIGTERM');
      if (!state) {
        // Not ours in this process (adopted): still escalate after the grace period.
        setTimeout(() => void groupAlive(handle).then((alive) => alive && signalGroup(handle.pgid, 'SIGKILL')), graceMs);
        return;
      }
      state.signalled = signalled;
      state.killTimer = setTimeout(async () => {
        if (await groupAlive(handle)) state.killedAfterGrace = signalGroup(handle.pgid, 'SIGKILL') || state.killedAfterGrace;
      }, graceMs);
    },

    async finalize(handle, task) {
      const key = keyOf(task);
      const state = attempts.get(key);
      if (state?.killTimer) clearTimeout(state.killTimer);
      // The module's leader may be done while a background grandchild lingers: the attempt owns the whole group.
      if (handle && handle.pid !== null) await killGroup(handle);
      for (const stream of state?.child?.stdio ?? []) (stream as Readable | null)?.destroy();
      state?.warmPool?.release();
      attempts.delete(key);
    },

    async startHotCluster(cluster) {
      if (warmPools.has(cluster.name)) return;
      const workers = cluster.spec.workers ?? 2;
      if (!Number.isInteger(workers) || (workers as number) < 1 || (workers as number) > 64) {
        throw new Error(`hot cluster ${cluster.name}: spec.workers must be a whole number from 1 to 64 (got ${JSON.stringify(workers)})`);
      }
      const pool = createWarmPool(cluster.name, workers as number);
      warmPools.set(cluster.name, pool);
      await pool.catch((err) => {
        warmPools.delete(cluster.name);
        throw err;
      });
    },

    async endHotCluster(name) {
      const pool = warmPools.get(name);
      warmPools.delete(name);
      await (await pool?.catch(() => undefined))?.end();
    },

    async close() {
      const pools = [...warmPools.values()];
      warmPools.clear();
      await Promise.all(pools.map((p) => p.then((pool) => pool.end(), () => undefined)));
      const states = [...attempts.values()];
      attempts.clear();
      await Promise.all(
        states.map(async (state) => {
          if (state.killTimer) clearTimeout(state.killTimer);
          const handle = await state.handle.catch(() => undefined);
          if (handle && handle.pid !== null) await killGroup(handle);
        }),
      );
    },
  });
}

function exitOf(child: ChildProcess, state: AttemptState): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve) =>
    child.once('exit', (code, signal) => {
      state.hasExited = true;
      resolve({ code, signal });
    }),
  );
}

/** A process started by an earlier host process: its pipes are gone, so only its end can be observed. */
async function adopt(handle: { pid: number; startTime: number | null }): Promise<TaskOutcome> {
  while (await processAlive(handle.pid, handle.startTime)) await sleep(ADOPT_POLL_MS);
  return systemFailure('lost', `process ${handle.pid} was started by an earlier executor host process; its exit status is unknown`);
}

/** Reads fd-3 protocol lines; anything malformed becomes a warning on stderr, never a crash. */
function handleProgressLine(line: string, ctx: TaskContext) {
  if (line.trim() === '') return;
  applyProgressLine(line, ctx, (why) => ctx.log('stderr', `[atelier] ignored progress line (${why}): ${line.slice(0, 200)}`));
}

/** Splits a byte stream into lines, cutting any line at `maxBytes` and skipping the rest of it. */
function createLineSplitter(maxBytes: number, onLine: (line: string, cut: boolean) => void) {
  let parts: Buffer[] = [];
  let size = 0;
  let skipping = false;
  const emit = (cut: boolean) => {
    const line = Buffer.concat(parts, size).toString('utf8');
    parts = [];
    size = 0;
    onLine(!cut && line.endsWith('\r') ? line.slice(0, -1) : line, cut);
  };
  return {
    push(chunk: Buffer) {
      let start = 0;
      while (start < chunk.length) {
        const newline = chunk.indexOf(10, start);
        const end = newline === -1 ? chunk.length : newline;
        if (!skipping) {
          const piece = chunk.subarray(start, end);
          if (size + piece.length > maxBytes) {
            parts.push(piece.subarray(0, maxBytes - size));
            size = maxBytes;
            emit(true);
            skipping = true;
          } else {
            parts.push(piece);
            size += piece.length;
          }
        }
        if (newline === -1) return;
        if (!skipping) emit(false);
        skipping = false;
        start = newline + 1;
      }
    },
    end() {
      if (!skipping && size > 0) emit(false);
      skipping = false;
    },
  };
}

/** Resolves when the child's pipes have closed, or after `ms` (a grandchild may keep them open). */
async function drained(child: ChildProcess, ms: number) {
  const streams = child.stdio.filter((s): s is Readable => !!s && 'on' in s);
  const closed = Promise.all(
    streams.map((s) => (s.destroyed || s.readableEnded ? undefined : new Promise((resolve) => s.once('close', resolve)))),
  );
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([closed, new Promise((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

/** Signals a process group; false when nothing received it (ESRCH: already gone; EPERM: not ours to stop). */
function signalGroup(pgid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}

interface ProcStat {
  state: string;
  pgrp: number;
  startTime: number;
}

async function readStat(pid: number | string): Promise<ProcStat | null> {
  try {
    const text = await readFile(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: fields are counted after its last ')'.
    const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { state: rest[0] ?? '', pgrp: Number(rest[2]), startTime: Number(rest[19]) };
  } catch {
    return null;
  }
}

async function readStartTime(pid: number): Promise<number | null> {
  return (await readStat(pid))?.startTime ?? null;
}

/** Alive means: present in /proc, not a zombie, and started when our process did (not a recycled pid). */
async function processAlive(pid: number, startTime: number | null): Promise<boolean> {
  const s = await readStat(pid);
  if (!s || s.state === 'Z' || s.state === 'X') return false;
  return startTime === null || s.startTime === startTime;
}

/**
 * Whether anything of the group still runs. Zombies keep `kill(-pgid, 0)` succeeding, so /proc decides. While any
 * member lives the kernel cannot hand the group's id to a new process, so signalling -pgid then is safe.
 */
async function groupAlive(handle: { pid: number; pgid: number; startTime: number | null }): Promise<boolean> {
  if (await processAlive(handle.pid, handle.startTime)) return true;
  let entries: string[];
  try {
    entries = await readdir('/proc');
  } catch {
    return false;
  }
  const stats = await Promise.all(entries.filter((e) => /^\d+$/.test(e)).map((e) => readStat(e)));
  return stats.some((s) => s !== null && s.pgrp === handle.pgid && s.state !== 'Z' && s.state !== 'X');
}
