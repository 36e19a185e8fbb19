// What a crash mid-write leaves on local disk: every object is written to a `*.tmp` file and renamed into place only
// once whole (store.ts, verify.ts), so a process killed in between leaves the `.tmp` behind, never a partial object.
// Nothing would ever remove it (a killed upload of 256 MB leaks 256 MB); this sweep does, at start and then hourly.
// Safe beside live writers (other replicas on the same directory): a write in progress keeps its file's mtime fresh
// as it streams and renames it within its request, so only files untouched for PARTIAL_MAX_AGE_MS are removed; and
// removing one could only fail that write (retryable), never touch a stored object (no stored object ends in .tmp).
import { readdir, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Service } from '../lifecycle';
import type { ObjectStore } from './store';

/** A `.tmp` file untouched this long belongs to no live write (requests end within minutes). */
export const PARTIAL_MAX_AGE_MS = 60 * 60_000;
const SWEEP_EVERY_MS = 60 * 60_000;
/** The temporary names the stores write (verify.ts `spool`, store.ts `place`, verify.ts `writeVerified`), and only those. */
const PARTIAL = /^(?:\.incoming-[0-9a-f-]{36}|[0-9a-f]{64}\.[0-9a-f-]{36})\.tmp$/;

/** Removes the stores' temporary files under `dir` (to the object layout's depth: `sha256/ab/<hex>.<uuid>.tmp`) older than `olderThanMs`. */
export async function removeStalePartials(dir: string, olderThanMs: number, depth = 3): Promise<number> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  let removed = 0;
  for (const entry of entries) {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory() && depth > 1) removed += await removeStalePartials(file, olderThanMs, depth - 1);
    else if (entry.isFile() && PARTIAL.test(entry.name)) {
      const info = await stat(file).catch(() => undefined);
      if (
        info &&
        Date.now() - info.mtimeMs > olderThanMs &&
        (await unlink(file).then(
          () => true,
          () => false,
        ))
      )
        removed++;
    }
  }
  return removed;
}

/** The sweep as a service: a pass at start (a crashed process is starting again), then every hour. */
export function partialsSweep(options: { store: ObjectStore; log: (message: string) => void }): Service {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  const pass = () => {
    running ??= options.store
      .removePartials(PARTIAL_MAX_AGE_MS)
      .then((n) => {
        if (n) options.log(`object store: removed ${n} partial file(s) that interrupted writes left`);
      })
      .catch((error: unknown) => options.log(`object store partials sweep: ${(error as Error).message} (will retry)`))
      .finally(() => (running = undefined));
  };
  return {
    name: 'object store partials sweep',
    start() {
      pass();
      timer = setInterval(pass, SWEEP_EVERY_MS);
      timer.unref();
    },
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
