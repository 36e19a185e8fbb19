// The local executor's configuration and the handle it records per attempt.
import type { Isolation } from './sandbox';

export interface LocalExecutorOptions {
  /** Time between SIGTERM and SIGKILL when stopping a module. */
  graceMs?: number;
  /** Longer stdout/stderr lines are cut (and marked) at this many bytes. */
  maxLogLineBytes?: number;
  /**
   * Variables of the host's own environment a module sees besides its ATELIER_* ones. The host entry passes
   * PATH, HOME and LANG (server/executors.ts); nothing else leaks into modules. Default: none.
   */
  inheritEnv?: Record<string, string>;
  /**
   * How modules are isolated (sandbox.ts): `bwrap` (default) runs each in a bubblewrap sandbox, probed once
   * here; `none` is the operator's explicit opt-out (ATELIER_MODULE_ISOLATION=none), warned about loudly.
   */
  isolation?: Isolation;
  /** Host paths sandboxed modules may read besides /usr (ATELIER_MODULE_READONLY_PATHS). */
  readOnlyPaths?: string[];
  /** The bubblewrap binary (default `bwrap` on PATH). */
  bwrap?: string;
  /** Where the executor's warnings go (the opt-out, a sandbox that cannot start). Default: console.warn. */
  warn?: (message: string) => void;
}

/**
 * What the control plane records for a local attempt. `startTime` is the process start time from
 * /proc/<pid>/stat (clock ticks since boot), so a recycled pid is never mistaken for ours. A module that could
 * not be launched gets a handle with no pid and the reason in `error`.
 */
export type LocalHandle = { pid: number; pgid: number; startTime: number | null } | { pid: null; pgid: null; startTime: null; error: string; reason?: string };
