// Temporary folders a process owns (executor hosts' work folders, the local executor's sandboxes and hot clusters'
// workers), named with its pid. A process that is SIGKILLed cannot remove its own, so the next one sweeps the folders
// of processes that no longer run.
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/** `<tmp>/<prefix><pid>-XXXXXX`, after removing `<prefix><pid>-*` folders whose process is gone. */
export async function ownedTempDir(prefix: string, root = os.tmpdir()): Promise<string> {
  await sweepOrphans(prefix, root);
  return mkdtemp(path.join(root, `${prefix}${process.pid}-`));
}

async function sweepOrphans(prefix: string, root: string): Promise<void> {
  const entries = await readdir(root).catch(() => [] as string[]);
  const owner = new RegExp(`^${prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(\\d+)-[^-]+$`);
  await Promise.all(
    entries.map(async (name) => {
      const pid = Number(owner.exec(name)?.[1]);
      if (!pid || pid === process.pid || alive(pid)) return;
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
