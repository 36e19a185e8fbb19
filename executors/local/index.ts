// The `local` executor: runs a module as a child process group on the host's machine, streams its stdout and
// stderr as logs and its fd-3 JSON lines as progress, metrics and outputs, and stops it with SIGTERM then SIGKILL.
// The parts: launch.ts (unpack and spawn), pipes.ts (logs and progress), outcome.ts (how it ended),
// process-group.ts (/proc and signals), warm-pool.ts (hot clusters' warm workers).
import type { Readable } from 'node:stream';
import { defineExecutor, type Executor, permanentFailure, type TaskMessage } from '../../plugins/sdk';
import { type AttemptState, type LaunchConfig, launch } from './launch';
import type { LocalExecutorOptions, LocalHandle } from './options';
import { adopt, outcomeOf } from './outcome';
import { drained } from './pipes';
import { groupAlive, killGroup, signalGroup } from './process-group';
import { createWarmPool, type WarmPool } from './warm-pool';

export type { LocalExecutorOptions, LocalHandle } from './options';

const DRAIN_MS = 1_000; // how long to read pipes after exit: a lingering grandchild may hold them open

export function createLocalExecutor(options: LocalExecutorOptions = {}): Executor<LocalHandle> {
  const graceMs = options.graceMs ?? 5_000;
  const attempts = new Map<string, AttemptState>();
  /** Hot clusters held warm here, by name. */
  const warmPools = new Map<string, Promise<WarmPool>>();
  const launchConfig: LaunchConfig = {
    maxLogLineBytes: options.maxLogLineBytes ?? 16 * 1024,
    inheritEnv: options.inheritEnv ?? {},
    warmPools,
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
      if (handle.pid === null) return permanentFailure('launch-failed', handle.error);
      const state = attempts.get(keyOf(task));
      if (!state?.child || !state.exited) return adopt(handle);
      state.sink = ctx;
      const { code, signal } = await state.exited;
      await drained(state.child, DRAIN_MS);
      return { ...outcomeOf(state, code, signal, graceMs), provisioningMs: state.provisioningMs };
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
      const pool = createWarmPool(cluster.name, workers as number, launchConfig.inheritEnv.PATH);
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
          const handle = await state.handle.catch(() => undefined);
          if (handle && handle.pid !== null) await killGroup(handle);
        }),
      );
    },
  });
}
