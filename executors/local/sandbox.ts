// Where a local module runs. By default inside a bubblewrap (`bwrap`) sandbox: new user, mount, pid, ipc, uts and
// (unless the task asks for it) network namespaces; the system's /usr and a few /etc files read-only, a private
// /tmp, its own attempt directory at /work (the module read-only at /work/module), nothing of the server's data
// directory; as the unprivileged uid 65534 when the host runs as root; killed with its host (--die-with-parent).
// Probed once when the executor is made. The operator may opt out (ATELIER_MODULE_ISOLATION=none): modules then
// run as the host's own user, seeing all it sees, under a supervisor that kills their group when the host dies.
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, readlinkSync, realpathSync } from 'node:fs';
import path from 'node:path';

export type Isolation = 'bwrap' | 'none';

export interface SandboxOptions {
  /** `bwrap` (default) or `none`, the operator's explicit opt-out. */
  isolation?: Isolation;
  /** The bubblewrap binary (default: `bwrap` on PATH). */
  bwrap?: string;
  /** More host paths a module may read (a Python environment, models), bound read-only at the same place. */
  readOnlyPaths?: string[];
}

export interface Sandbox {
  kind: 'bwrap';
  bwrap: string;
  /** The host identity the sandbox runs as: 65534 when the host is root, else the host's own user (mapped). */
  identity: { uid: number; gid: number } | null;
  readOnlyPaths: string[];
}

export type Isolator = Sandbox | { kind: 'none' } | { kind: 'unavailable'; reason: string };

/** Where a sandboxed module finds its attempt directory. */
export const SANDBOX_WORKDIR = '/work';
export const NOBODY = 65534;

const SYSTEM_LINKS = ['/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32'];
// Enough of /etc for the dynamic loader, locales, time zones, users and (for tasks with network) DNS and TLS.
const ETC_FILES = [
  'ld.so.cache',
  'ld.so.conf',
  'ld.so.conf.d',
  'alternatives',
  'localtime',
  'timezone',
  'passwd',
  'group',
  'nsswitch.conf',
  'hosts',
  'resolv.conf',
  'ssl',
  'ca-certificates',
  'ca-certificates.conf',
  'mime.types',
  'os-release',
  'debian_version',
];

export const optOutHint =
  'Install the Debian/Ubuntu package "bubblewrap" (apt-get install bubblewrap), or opt out explicitly with ATELIER_MODULE_ISOLATION=none ' +
  "(modules then run as the executor host's own user and can read everything it can, including the admin token).";

/** The node install a sandboxed node module runs with: bound read-only when it lives outside /usr. */
function nodePrefix(): string {
  return path.dirname(path.dirname(realpathSync(process.execPath)));
}

/** The read-only system part of a sandbox's command line, shared by the probe and every attempt. */
function systemArgs(sandbox: Sandbox, network: boolean): string[] {
  const args = ['--unshare-user', '--unshare-pid', '--unshare-ipc', '--unshare-uts', '--unshare-cgroup-try'];
  if (!network) args.push('--unshare-net');
  args.push('--die-with-parent', '--uid', String(NOBODY), '--gid', String(NOBODY), '--hostname', 'atelier-module');
  args.push('--ro-bind', '/usr', '/usr');
  for (const link of SYSTEM_LINKS) {
    let stat: ReturnType<typeof lstatSync> | undefined;
    try {
      stat = lstatSync(link);
    } catch {
      continue;
    }
    if (stat.isSymbolicLink()) args.push('--symlink', readlinkSync(link), link);
    else args.push('--ro-bind', link, link);
  }
  for (const name of ETC_FILES) args.push('--ro-bind-try', `/etc/${name}`, `/etc/${name}`);
  const prefix = nodePrefix();
  if (prefix !== '/usr') args.push('--ro-bind', prefix, prefix);
  args.push('--proc', '/proc', '--dev', '/dev', '--tmpfs', '/tmp');
  // After the private /tmp: bound before it, an operator's path under /tmp was hidden by it (bwrap mounts in order).
  for (const extra of sandbox.readOnlyPaths) args.push('--ro-bind', extra, extra);
  return args;
}

/** PATH inside the sandbox: the node install, the extra paths' bin folders, then the system's. */
export function sandboxSearchPath(sandbox: Sandbox): string {
  const dirs = [path.dirname(realpathSync(process.execPath))];
  for (const extra of sandbox.readOnlyPaths) if (existsSync(path.join(extra, 'bin'))) dirs.push(path.join(extra, 'bin'));
  dirs.push('/usr/local/bin', '/usr/bin', '/bin');
  return [...new Set(dirs)].join(':');
}

/** bwrap's arguments for one attempt: its directory at /work, the module read-only at /work/module. */
export function sandboxArgs(
  sandbox: Sandbox,
  run: { attemptDir: string; moduleDir: string; cwd: string; network: boolean; command: string; args: string[] },
): string[] {
  return [
    ...systemArgs(sandbox, run.network),
    '--bind',
    run.attemptDir,
    SANDBOX_WORKDIR,
    '--ro-bind',
    run.moduleDir,
    path.posix.join(SANDBOX_WORKDIR, 'module'),
    // The sandbox's own root (where the mount points were made) is read-only too: only /work and /tmp take writes.
    '--remount-ro',
    '/',
    '--chdir',
    run.cwd,
    '--',
    run.command,
    ...run.args,
  ];
}

const probed = new Map<string, Isolator>();

/**
 * Decides once (per settings) how modules run: a sandbox that really starts a node process here, the operator's
 * opt-out, or unavailable with the reason. Under root the sandbox runs as uid 65534; where the kernel refuses an
 * unprivileged user namespace, as root mapped to 65534 inside it.
 */
export function probeIsolation(options: SandboxOptions = {}): Isolator {
  const isolation = options.isolation ?? 'bwrap';
  if (isolation === 'none') return { kind: 'none' };
  const key = JSON.stringify([options.bwrap, options.readOnlyPaths]);
  const known = probed.get(key);
  if (known) return known;
  const bwrap = options.bwrap ?? 'bwrap';
  const readOnlyPaths = (options.readOnlyPaths ?? []).map((p) => path.resolve(p));
  const missing = readOnlyPaths.filter((p) => !existsSync(p));
  let result: Isolator;
  if (missing.length) {
    result = { kind: 'unavailable', reason: `ATELIER_MODULE_READONLY_PATHS names paths that do not exist: ${missing.join(', ')}` };
  } else {
    const root = process.getuid?.() === 0;
    const candidates: Sandbox[] = [
      ...(root ? [{ kind: 'bwrap' as const, bwrap, identity: { uid: NOBODY, gid: NOBODY }, readOnlyPaths }] : []),
      { kind: 'bwrap', bwrap, identity: null, readOnlyPaths },
    ];
    let reason = '';
    result = { kind: 'unavailable', reason: '' };
    for (const candidate of candidates) {
      const out = spawnSync(bwrap, [...systemArgs(candidate, false), '--remount-ro', '/', '--', process.execPath, '-e', '0'], {
        env: {},
        timeout: 20_000,
        ...(candidate.identity ?? {}),
      });
      if (out.status === 0) {
        result = candidate;
        break;
      }
      reason ||= out.error ? out.error.message : `exit ${out.status ?? out.signal}: ${String(out.stderr).trim().slice(0, 300)}`;
    }
    if (result.kind === 'unavailable') result = { kind: 'unavailable', reason: `bubblewrap (${bwrap}) cannot start a sandbox here: ${reason}` };
  }
  probed.set(key, result);
  return result;
}
