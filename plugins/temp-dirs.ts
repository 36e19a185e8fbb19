// Temporary folders a process owns (executor hosts' work folders, the local executor's sandboxes and hot clusters'
// workers), named with its pid and its pid namespace. A process that is SIGKILLed cannot remove its own, so the next
// one sweeps the folders of processes that no longer run. A pid means something only in its own namespace: a process
// in another one that shares the temp directory (a container, a sandbox started with --unshare-pid, such as the tests'
// restarted "container") found most pids gone and removed live processes' folders, and their next attempt failed with
// "submit failed: ENOENT" on its sandbox. So only folders named with this process's namespace are swept.
import { readlinkSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/**
 * `<tmp>/<prefix><pid>-<pid namespace>-XXXXXX` (`<prefix><pid>-XXXXXX` where there is no /proc to name the namespace),
 * after removing this namespace's `<prefix><pid>-*` folders whose process is gone.
 */
export async function ownedTempDir(prefix: string, root = os.tmpdir()): Promise<string> {
  await sweepOrphans(prefix, root);
  const namespace = pidNamespace();
  return mkdtemp(path.join(root, `${prefix}${process.pid}-${namespace ? `${namespace}-` : ''}`));
}

/** This process's pid namespace (the inode /proc/self/ns/pid names), or '' where there is none to read. */
export function pidNamespace(): string {
  try {
    return /^pid:\[(\d+)\]$/.exec(readlinkSync('/proc/self/ns/pid'))?.[1] ?? '';
  } catch {
    return '';
  }
}

async function sweepOrphans(prefix: string, root: string): Promise<void> {
  const entries = await readdir(root).catch(() => [] as string[]);
  // A folder named before namespaces were (no namespace part) is judged by its pid alone, as it was then.
  const owner = new RegExp(`^${prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(\\d+)-(?:(\\d+)-)?[^-]+$`);
  const namespace = pidNamespace();
  await Promise.all(
    entries.map(async (name) => {
      const match = owner.exec(name);
      const pid = Number(match?.[1]);
      if (!pid || (match?.[2] !== undefined && match[2] !== namespace)) return; // another namespace's pid: not ours to judge
      if (pid === process.pid || alive(pid)) return;
      await rm(path.join(root, name), { recursive: true, force: true }).catch(() => undefined); // another's, or busy: later
    }),
  );
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'; // someone else's process: alive
  }
}
