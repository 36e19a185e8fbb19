// Whether this process may write a directory it keeps data in (the data directory, the embedded database's): a
// read-only mount or another user's files otherwise failed later and obscurely (PGlite's "failed to initialize",
// which read as a damaged database whose advice was to move it aside and start anew). Nothing is touched.
import { accessSync, constants, existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';

/** Why `error` (from a write to `target`) means the directory cannot be written; undefined for any other error. */
function unwritable(error: unknown): string | undefined {
  const { code } = error as NodeJS.ErrnoException;
  if (code === 'EROFS') return 'its file system is mounted read-only';
  if (code === 'EACCES' || code === 'EPERM') return `this process (uid ${process.getuid?.() ?? '?'}) may not write it (${code})`;
  return undefined;
}

const advice = (what: string, dir: string, why: string) =>
  `${what} ${dir} cannot be written: ${why}. Nothing in it was changed. Mount it read-write, or give it to the user Atelier runs as (chown -R), or point ATELIER_DATA_DIR at a writable directory.`;

/**
 * Runs `write` (making or changing `dir`), turning a refusal to write into a message that says what to do; other
 * errors pass as they are.
 */
export async function writingTo<T>(what: string, dir: string, write: () => T | Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (error) {
    const why = unwritable(error);
    throw why ? new Error(advice(what, dir, why)) : error;
  }
}

/** Makes `dir` if missing, then checks that it and `files` in it (those present) can be read and written. */
export function assertWritable(what: string, dir: string, files: readonly string[] = []): void {
  for (const target of [dir, ...files.map((f) => path.join(dir, f))]) {
    if (target !== dir && !existsSync(target)) continue;
    try {
      if (target === dir) mkdirSync(dir, { recursive: true });
      accessSync(target, constants.R_OK | constants.W_OK);
    } catch (error) {
      const why = unwritable(error);
      throw why ? new Error(advice(what, dir, why)) : error;
    }
  }
}
