// One process at a time on an embedded database. PGlite has no postmaster to refuse a second process, and two
// processes writing one data directory damage it: a second `npm start` beside a running one (on another port, or
// failing on the same one after opening the database) left a directory that no longer opened ("Aborted()").
//
// The lock is a listening Unix socket named after the directory: only one process can listen on a name, and the
// kernel frees it when that process ends however it ends (SIGKILL, OOM, a power cut), so no stale lock is ever left
// to clear by hand, and none is guessed stale from a pid that may have been reused. On Linux the name lives in the
// abstract namespace (no file at all); elsewhere it is a socket file in the temporary directory, removed when a
// connection to it is refused (its process is gone). The holder answers a connection with its pid, for the message.
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
export async function lockDataDir(dir: string, { abstract = process.platform === 'linux' } = {}): Promise<DataDirLock> {
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
      return { release: () => new Promise<void>((resolve) => server.close(() => resolve())) };
    }
    if (listened.code !== 'EADDRINUSE') throw listened;
    const holder = await holderOf(address);
    if (holder === null && !abstract && attempt === 0) {
      unlinkSync(address); // a socket file its process left behind: nobody listens on it
      continue;
    }
    throw new DataDirLocked(
      `Another Atelier process${holder ? ` (pid ${holder})` : ''} is using the embedded database in ${dir}; two processes writing it would damage it. Stop that one first, or give this one its own directory (ATELIER_DATA_DIR=…), or let both share a Postgres (DATABASE_URL=…).`,
    );
  }
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
