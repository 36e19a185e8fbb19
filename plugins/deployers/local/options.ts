// What an operator (or a test) sets on the local deployer: where its state lives, its timings, its isolation, and the
// ports a deployment may name.
import type { PortRange } from './ports';
import type { Isolation } from './sandbox';

export interface LocalDeployerOptions {
  /** Where deployments' state, logs and routes live; the same directory lets a new instance re-attach. */
  stateDir: string;
  /** Plugin name. Default `local`. */
  name?: string;
  /** How long a server may take to answer its health path after starting. Default 15 s. */
  startupMs?: number;
  /** Restarts after crashes before a revision is FAILED. Default 3. */
  maxRestarts?: number;
  /** First restart delay, doubled for each next one. Default 500 ms. */
  backoffMs?: number;
  /** How often running servers are checked for crashes. Default 500 ms. */
  checkMs?: number;
  /** How often a READY server's health path is probed (a hung server answers nothing, yet lives). Default 2 s. */
  healthEveryMs?: number;
  /** How long one health probe of a READY server may take. Default 1 s. */
  healthTimeoutMs?: number;
  /** Failed health probes in a row after which a READY server is restarted (with the crash backoff). Default 3. */
  healthFailures?: number;
  /**
   * `bwrap`: servers run in a bubblewrap sandbox (sandbox.ts); `none`: as this process's user, seeing all it sees.
   * Default: `bwrap` when it works on this machine, else `none`.
   */
  isolation?: Isolation;
  /** Paths a sandboxed server must not see (the control plane's data directory); the state directory always. */
  hidePaths?: string[];
  /** The ports `settings.port` may name (ports.ts). Default 8100-8199. */
  ports?: PortRange;
}
