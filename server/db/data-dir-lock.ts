// One process at a time on an embedded database. PGlite has no postmaster to refuse a second process, and two
// processes writing one data directory damage it: a second `npm start` beside a running one (on another port, or
// failing on the same one after opening the database) left a directory that no longer opened ("Aborted()").
//
// The lock is a listening Unix socket named after the directory: only one process can listen on a name, and the
// kernel frees it when that process ends however it ends (SIGKILL, OOM, a power cut), so no stale lock is ever left
// to clear by hand, and none is guessed stale from a pid that may have been reused. On Linux the name lives in the
// abstract namespace (no file at all); elsewhere it is a socket file in the temporary directory, removed when a
// connection to it is refused (its process is gone). The holder answers a connection with its pid, for the message.
//
// An abstract name is one network namespace's: two containers mounting one data directory (a shared volume, a
// compose service scaled to two) each got the lock. So the directory's own lock file is held too, with flock(1)
// where it is installed (util-linux's: busybox's has no --timeout, and is reported at start as not guarding): a child holding exclusive locks on the directory and on `<dir>.lock`
// while it reads a pipe from this process, which the kernel closes when this process ends, however it ends (the
// locks go with it).
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { realpathSync, unlinkSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export interface DataDirLock {
  release(): Promise<void>;
}

/** Another process holds the directory: `message` says which and what to do. */
export class DataDirLocked extends Error {
  override readonly name = 'DataDirLocked';
}

/** `abstract`: a name in Linux's abstract namespace (the default there), else a socket file (elsewhere; tests). */
export async function lockDataDir(
  dir: string,
  { abstract = process.platform === 'linux', fileLockWaitSeconds = FILE_LOCK_WAIT_SECONDS } = {},
): Promise<DataDirLock> {
  const key = createHash('sha256').update(realpathSync(dir)).digest('hex').slice(0, 32);
  const address = abstract ? `\0atelier-embedded-${key}` : path.join(os.tmpdir(), `atelier-embedded-${key}.sock`);
  for (let attempt = 0; ; attempt++) {
    const server = net.createServer((socket) => socket.end(`${process.pid}\n`));
    const listened = await new Promise<NodeJS.ErrnoException | null>((resolve) => {
      server.once('error', resolve);
      server.listen(address, () => resolve(null));
    });
    if (!listened) {
      server.unref(); // the lock never keeps the process alive
      const closeServer = () => new Promise<void>((resolve) => server.close(() => resolve()));
      const file = await lockFile(dir, `${dir}.lock`, fileLockWaitSeconds);
      if (file === 'held') {
        await closeServer();
        throw new DataDirLocked(lockedMessage(dir, null));
      }
      return {
        release: async () => {
          await file?.release();
          await closeServer();
        },
      };
    }
    if (listened.code !== 'EADDRINUSE') throw listened;
    const holder = await holderOf(address);
    if (holder === null && !abstract && attempt === 0) {
      unlinkSync(address); // a socket file its process left behind: nobody listens on it
      continue;
    }
    throw new DataDirLocked(lockedMessage(dir, holder));
  }
}

const lockedMessage = (dir: string, holder: string | null) =>
  `Another Atelier process${holder ? ` (pid ${holder})` : ''} is using the embedded database in ${dir}; two processes writing it would damage it. Stop that one first, or give this one its own directory (ATELIER_DATA_DIR=…), or let both share a Postgres (DATABASE_URL=…).`;

/** Seconds to wait for the file's lock: its holder may be a process just killed whose flock child is still ending. */
const FILE_LOCK_WAIT_SECONDS = 5;
const FILE_LOCK_HELD = 75;

/**
 * Exclusive flock(1)s on the directory itself and on `file` beside it, held by a child until `release` or this
 * process's end; 'held' when another process holds either; null where they cannot be taken (no flock installed, a
 * file system without locks): the socket alone guards. The directory's lock cannot be deleted from under its holder
 * (a lock file removed by hand let the next start take a new one beside a running holder); the file's is the one
 * earlier versions take, so a holder of either kind keeps the other out.
 */
function lockFile(dir: string, file: string, waitSeconds: number): Promise<{ release(): Promise<void> } | 'held' | null> {
  const flock = (target: string) => ['--exclusive', '--timeout', String(waitSeconds), '--conflict-exit-code', String(FILE_LOCK_HELD), target];
  return new Promise((resolve) => {
    const child = spawn(
      'flock',
      [...flock(dir), 'flock', ...flock(file), 'sh', '-c', 'echo held; exec cat'],
      // Its own process group: a terminal's Ctrl-C reaches this process's shutdown, not the lock under it.
      { stdio: ['pipe', 'pipe', 'ignore'], detached: true },
    );
    const exited = new Promise<void>((done) => child.once('exit', () => done()));
    let holding = false; // the lock was taken: an exit after it is its release
    child.once('error', () => resolve(null));
    child.once('exit', (code) => {
      if (!holding && code !== FILE_LOCK_HELD)
        console.warn(
          `[atelier] the data directory's lock file is not held: flock(1) exited ${code} (busybox's lacks --timeout: install util-linux's, e.g. \`apk add util-linux\`). ` +
            'One machine is still guarded by the lock socket; two containers sharing this volume are not kept apart.',
        );
      resolve(code === FILE_LOCK_HELD ? 'held' : null);
    });
    child.stdin!.on('error', () => undefined);
    child.stdout!.once('data', () => {
      holding = true;
      // Held: neither the child nor its pipes keep this process alive.
      child.stdout!.destroy();
      child.unref();
      (child.stdin as unknown as { unref(): void }).unref();
      resolve({
        release: async () => {
          child.stdin!.end();
          await exited;
        },
      });
    });
  });
}

/** The pid the holder answers with; null when nobody listens (a socket file left behind). */
function holderOf(address: string): Promise<string | null> {
  return new Promise((resolve) => {
    let answer = '';
    const socket = net.connect(address);
    socket.setTimeout(2_000, () => socket.destroy());
    socket.on('data', (chunk) => (answer += chunk.toString()));
    socket.on('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNREFUSED' || error.code === 'ENOENT' ? null : ''));
    socket.on('close', () => resolve(answer.trim()));
  });
}
