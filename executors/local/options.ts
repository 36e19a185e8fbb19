// The local executor's configuration and the handle it records per attempt.

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
}

/**
 * What the control plane records for a local attempt. `startTime` is the process start time from
 * /proc/<pid>/stat (clock ticks since boot), so a recycled pid is never mistaken for ours. A module that could
 * not be launched gets a handle with no pid and the reason in `error`.
 */
export type LocalHandle = { pid: number; pgid: number; startTime: number | null } | { pid: null; pgid: null; startTime: null; error: string };
