// Where a revision's server runs: by default inside bubblewrap (`bwrap`) when it works here. The whole filesystem
// read-only, a private /tmp and /run, the deployer's state directory and the operator's hidden paths (the control
// plane's data directory) replaced by empty folders, the model's files read-only at /run/model; new user, pid, ipc
// and uts namespaces. The network is shared: the server listens on a loopback port the router reaches. Not
// `--die-with-parent`: a server outlives the deployer that started it. Lighter than the local executor's sandbox
// (no uid change when run as root, nothing hidden but what is named): a guard against accidents, not a jail.
import { spawnSync } from 'node:child_process';

export type Isolation = 'bwrap' | 'none';

/** Where the model's files are inside the sandbox. */
export const SANDBOX_MODEL_DIR = '/run/model';

const probed = new Map<string, { ok: true } | { ok: false; reason: string }>();

/**
 * Whether bwrap runs a command here (it needs unprivileged user namespaces); the reason when it does not. Probed once
 * per process and binary (a sandbox started and waited for: ~0.1–0.3 s at every deployer's creation before).
 */
export function probeBwrap(bwrap = 'bwrap'): { ok: true } | { ok: false; reason: string } {
  const known = probed.get(bwrap);
  if (known) return known;
  const result = probeOnce(bwrap);
  probed.set(bwrap, result);
  return result;
}

function probeOnce(bwrap: string): { ok: true } | { ok: false; reason: string } {
  const r = spawnSync(bwrap, ['--unshare-user', '--unshare-pid', '--ro-bind', '/', '/', '--proc', '/proc', '--dev', '/dev', '--', 'true'], {
    timeout: 5_000,
    encoding: 'utf8',
  });
  if (r.error) return { ok: false, reason: r.error.message };
  return r.status === 0 ? { ok: true } : { ok: false, reason: r.stderr.trim() || `bwrap exited ${r.status}` };
}

/** The argv that runs `command` sandboxed with the model's `dir` read-only at SANDBOX_MODEL_DIR. */
export function sandboxed(command: string[], options: { bwrap?: string; dir: string; hide: string[] }): string[] {
  return [
    options.bwrap ?? 'bwrap',
    '--unshare-user',
    '--unshare-pid',
    '--unshare-ipc',
    '--unshare-uts',
    '--ro-bind',
    '/',
    '/',
    '--dev',
    '/dev',
    '--proc',
    '/proc',
    '--tmpfs',
    '/tmp',
    '--tmpfs',
    '/run',
    ...options.hide.flatMap((p) => ['--tmpfs', p]),
    '--ro-bind',
    options.dir,
    SANDBOX_MODEL_DIR,
    '--chdir',
    SANDBOX_MODEL_DIR,
    '--',
    ...command,
  ];
}
