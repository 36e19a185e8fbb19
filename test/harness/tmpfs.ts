// A small tmpfs for tests of a full disk: mounted at a folder of the temp directory when this process is root (CI is),
// else undefined, and the test skips. `unmount` lazily (a process may still hold a file there) and removes the folder.
import { execFileSync } from 'node:child_process';
import { rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/** Mounts a tmpfs of `size` (mount's form: `1m`, `128m`) at a fresh folder named after `name`; undefined where it cannot. */
export function mountTmpfs(name: string, size: string): string | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const dir = path.join(os.tmpdir(), `atelier-${name}-${process.pid}`);
  try {
    execFileSync('mkdir', ['-p', dir]);
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { stdio: 'ignore' });
    return dir;
  } catch {
    return undefined;
  }
}

export async function unmountTmpfs(dir: string | undefined): Promise<void> {
  if (!dir) return;
  execFileSync('umount', ['-l', dir]);
  await rm(dir, { recursive: true, force: true });
}
