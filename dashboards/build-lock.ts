// The dashboards' build lock: one process builds at a time (ensure-built.ts). A holder that died mid-build (killed, its
// machine rebooted) must not block the others forever, so its claim is ignored once its process is gone, and two
// waiters that both see it gone must not both take over: a lock file removed and made again by each (as before) let
// the second remove the first's fresh lock and take it too.
//
// So the lock is a folder of claims, one file per claimant with a name of its own (pid and a random part, never
// reused). To take the lock a process writes its claim, then lists the folder: if any other claim is live, it
// withdraws its own and waits; otherwise it holds the lock. Of two live claimants the later to write its claim always
// sees the earlier's (a claim stays until its holder releases), so two never hold at once; both may see each other
// and both withdraw, and then they try again after a random wait. No step removes anything but a claim whose process
// has ended, so no one's live claim is ever taken from it.
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** Older than any build takes: its process is taken to be gone (and its pid since reused). */
const STALE_MS = 600_000;

/** Takes the lock (a folder, made when missing); resolves with its release once this process holds it. */
export async function takeBuildLock(lockDir: string, options: { pollMs?: number } = {}): Promise<() => Promise<void>> {
  const pollMs = options.pollMs ?? 200;
  await mkdir(lockDir, { recursive: true });
  const mine = `${process.pid}-${randomBytes(6).toString('hex')}`;
  const claim = path.join(lockDir, mine);
  for (;;) {
    await writeFile(claim, '', { flag: 'wx' });
    if (!(await otherLiveClaim(lockDir, mine))) return () => rm(claim, { force: true });
    await rm(claim, { force: true });
    // the holder's build takes seconds: look again, at a random moment so that two who withdrew do not meet again
    await new Promise((resolve) => setTimeout(resolve, pollMs * (0.5 + Math.random())));
  }
}

/** Whether a claim other than `mine` is live; claims of ended processes are removed on the way. */
async function otherLiveClaim(lockDir: string, mine: string): Promise<boolean> {
  let live = false;
  for (const name of await readdir(lockDir)) {
    if (name === mine) continue;
    const pid = Number(name.split('-')[0]);
    const since = (await stat(path.join(lockDir, name)).catch(() => null))?.mtimeMs;
    if (since === undefined) continue; // released meanwhile
    if (Number.isInteger(pid) && pid > 0 && alive(pid) && Date.now() - since < STALE_MS) live = true;
    else await rm(path.join(lockDir, name), { force: true });
  }
  return live;
}

/** Whether process `pid` is running (a process of another user's counts). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
