// The `local` executor: runs a module as a child process group on the host's machine, isolated in a bubblewrap
// sandbox unless the operator opted out, streams its stdout and stderr as logs and its fd-3 JSON lines as progress,
// metrics and outputs, and stops it with SIGTERM then SIGKILL. The parts: sandbox.ts (isolation, probed once),
// supervisor.ts (the opted-out module's watchdog), unpack.ts (digest-checked unpacking), launch.ts (spawn),
// pipes.ts (logs and progress), outcome.ts (how it ended), plugins/process-group.ts (/proc and signals), warm-pool.ts.
import { chmod, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { groupAlive, groupGone, killGroup, signalGroup, signalMembers } from '../../plugins/process-group';
import {
  defineExecutor,
  type Executor,
  permanentFailure,
  retryableFailure,
  systemFailure,
  type TaskContext,
  type TaskMessage,
  type TaskOutcome,
} from '../../plugins/sdk';
import { ownedTempDir } from '../../plugins/temp-dirs';
import { ArtifactsRefused, collectArtifacts, uploadArtifacts } from './artifacts';
import { type AttemptState, type LaunchConfig, launch } from './launch';
import type { LocalExecutorOptions, LocalHandle } from './options';
import { adopt, outcomeOf } from './outcome';
import { drained, finishProgress } from './pipes';
import { optOutHint, probeIsolation } from './sandbox';
import { createWarmPool, type WarmPool } from './warm-pool';

export type { LocalExecutorOptions, LocalHandle } from './options';
export { type Isolation, optOutHint, probeIsolation } from './sandbox';

const DRAIN_MS = 1_000; // how long to read pipes after exit: a lingering grandchild may hold them open
const STOP_MARGIN_MS = 1_000; // past the grace period's SIGKILL, how long a stopped group may take to be gone

const signalName = (n: number) => Object.entries(os.constants.signals).find(([, v]) => v === n)?.[0] as NodeJS.Signals | undefined;

export function createLocalExecutor(options: LocalExecutorOptions = {}): Executor<LocalHandle> {
  const graceMs = options.graceMs ?? 5_000;
  const attempts = new Map<string, AttemptState>();
  /** Hot clusters held warm here, by name. */
  const warmPools = new Map<string, Promise<WarmPool>>();
  const warn = options.warn ?? ((message: string) => console.warn(`[atelier local executor] ${message}`));
  // Probed once, here: every attempt of this executor runs the same way (or is refused the same way).
  const isolator = probeIsolation({ isolation: options.isolation, bwrap: options.bwrap, readOnlyPaths: options.readOnlyPaths });
  if (isolator.kind === 'none') {
    warn(
      "WARNING: ATELIER_MODULE_ISOLATION=none: modules run WITHOUT a sandbox, as this process's own user, and can read " +
        'and change everything it can (the admin token, the database, other tasks). Use it only where every module author is trusted.',
    );
  } else if (isolator.kind === 'unavailable') {
    warn(`modules will be refused: ${isolator.reason}. ${optOutHint}`);
  }
  let sandboxRoot: Promise<string> | undefined;
  const launchConfig: LaunchConfig = {
    maxLogLineBytes: options.maxLogLineBytes ?? 16 * 1024,
    inheritEnv: options.inheritEnv ?? {},
    warmPools,
    isolator,
    // Outside any data directory, and traversable (not listable) so the sandbox's own identity reaches its folder.
    sandboxRoot: () =>
      (sandboxRoot ??= ownedTempDir('atelier-sandbox-').then(async (dir) => {
        await chmod(dir, 0o711);
        return dir;
      })),
  };
  const keyOf = (task: TaskMessage) => `${task.taskId}:${task.attempt}`;

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
      state.handle = launch(launchConfig, task, ctx, state);
      attempts.set(key, state);
      // A throw (extraction, disk) leaves no process behind: forget it so a retry starts afresh.
      state.handle.catch(() => attempts.delete(key));
      return state.handle;
    },

    async wait(handle, task, ctx) {
      if (handle.pid === null) return permanentFailure(handle.reason ?? 'launch-failed', handle.error);
      const state = attempts.get(keyOf(task));
      if (!state?.child || !state.exited) return adopt(handle);
      state.sink = ctx;
      const exit = await state.exited;
      await drained(state.child, DRAIN_MS);
      await finishProgress(state);
      // A stopped attempt is reported once all of its group is gone (the result goes out before finalize cleans up):
      // the leader may exit of our SIGTERM while a member it signalled is still ending, or ignores it until the
      // grace period's SIGKILL (then the outcome says so).
      if (state.signalled) await groupGone(handle, graceMs + STOP_MARGIN_MS);
      // bwrap reports a module ended by a signal as exit 128 + its number.
      const signalled = state.sandboxed && exit.code !== null && exit.code > 128 ? signalName(exit.code - 128) : undefined;
      const { code, signal } = signalled ? { code: null, signal: signalled } : exit;
      const outcome = outcomeOf(state, code, signal, graceMs);
      const logged = outcome.state === 'SUCCEEDED' ? await logArtifacts(state, task, ctx) : undefined;
      return { ...(logged ?? outcome), provisioningMs: state.provisioningMs, endedAt: state.exitedAt };
    },

    async cancel(handle, task, reason) {
      if (handle.pid === null) return;
      const state = attempts.get(keyOf(task));
      if (state) {
        if (state.cancelReason) return;
        state.cancelReason = reason;
      }
      if (state?.hasExited || !(await groupAlive(handle))) return;
      // In the sandbox the module, not bwrap (the group's leader), gets the SIGTERM: bwrap would die of it at once.
      // Marked first: the module may end of the signal before the /proc walk returns.
      if (state?.sandboxed) state.signalled = true;
      const signalled = state?.sandboxed ? await signalMembers(handle.pgid, 'SIGTERM', handle.pid) : signalGroup(handle.pgid, 'SIGTERM');
      if (!state) {
        // Not ours in this process (adopted): still escalate after the grace period.
        setTimeout(() => void groupAlive(handle).then((alive) => alive && signalGroup(handle.pgid, 'SIGKILL')), graceMs);
        return;
      }
      state.signalled = state.sandboxed || signalled;
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
      state?.progressFile?.stop();
      if (state?.warmWorker) state.warmPool?.release(state.warmWorker);
      if (state?.attemptDir) await rm(state.attemptDir, { recursive: true, force: true }).catch(() => undefined);
      attempts.delete(key);
    },

    async startHotCluster(cluster) {
      if (warmPools.has(cluster.name)) return;
      const workers = cluster.spec.workers ?? 2;
      if (!Number.isInteger(workers) || (workers as number) < 1 || (workers as number) > 64) {
        throw new Error(`hot cluster ${cluster.name}: spec.workers must be a whole number from 1 to 64 (got ${JSON.stringify(workers)})`);
      }
      const pool = createWarmPool(cluster.name, workers as number, isolator, launchConfig.inheritEnv.PATH);
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
      await Promise.all(
        pools.map((p) =>
          p.then(
            (pool) => pool.end(),
            () => undefined,
          ),
        ),
      );
      const states = [...attempts.values()];
      attempts.clear();
      await Promise.all(
        states.map(async (state) => {
          if (state.killTimer) clearTimeout(state.killTimer);
          state.progressFile?.stop();
          const handle = await state.handle.catch(() => undefined);
          if (handle && handle.pid !== null) await killGroup(handle);
        }),
      );
      const root = await sandboxRoot?.catch(() => undefined);
      if (root) await rm(root, { recursive: true, force: true }).catch(() => undefined);
    },
  });
}

/**
 * Logs what a module that exited 0 left under ATELIER_ARTIFACTS_DIR as its task's artifacts (artifacts.ts): undefined
 * when that went well (or there was nothing), else the failure the attempt ends with instead of its success.
 */
async function logArtifacts(state: AttemptState, task: TaskMessage, ctx: TaskContext): Promise<TaskOutcome | undefined> {
  if (!state.artifactsDir || !task.tracking) return undefined;
  try {
    // From the attempt's folder down: the module may replace `outputs` or `artifacts` with a link, never the folder itself.
    const files = await collectArtifacts(state.artifactsDir, path.resolve(state.artifactsDir, '..', '..'));
    if (!files.length) return undefined;
    await uploadArtifacts(task.tracking, files, ctx.signal, undefined, task.execution);
    const bytes = files.reduce((sum, f) => sum + f.size, 0);
    ctx.log('stdout', `[atelier] logged ${files.length} artifact${files.length === 1 ? '' : 's'} (${bytes} bytes) from ATELIER_ARTIFACTS_DIR`);
    return undefined;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    if (error instanceof ArtifactsRefused) return permanentFailure('artifacts-refused', `exited 0, but its artifacts could not be logged: ${message}`);
    // The control plane could not be reached or could not take them now: the platform's failure, tried again.
    if (ctx.aborted) return retryableFailure('artifacts-interrupted', `exited 0; logging its artifacts was interrupted: ${message}`);
    return systemFailure('artifacts-unlogged', `exited 0, but its artifacts could not be logged: ${message}`);
  }
}
