// What the local directory store adds for the collector (collect.ts): last-touched time is the file's mtime, which a
// put of an object already there refreshes; listing walks `sha256/ab/<hex>`; a delete first renames the object to a
// grave (`<hex>.<uuid>.gc`) and decides on the grave's mtime, so a put racing it either touched the object before the
// rename (the grave is fresh: it is linked back) or finds it gone and writes it again: never a put that believes an
// object is stored while it is deleted. A collector killed between rename and decision leaves a grave, which the next
// start or pass links back (keeping an orphan one pass longer, never losing an object someone touched).
import { randomUUID } from 'node:crypto';
import { link, readdir, rename, stat, unlink, utimes } from 'node:fs/promises';
import path from 'node:path';
import type { StoredObject } from './store';

const OBJECT = /^[0-9a-f]{64}$/;
const GRAVE = /^([0-9a-f]{64})\.[0-9a-f-]{36}\.gc$/;
const PAGE = 256;

/** Marks an object as just written; false when there is none (or it cannot be touched: the caller writes it again). */
export async function touch(file: string): Promise<boolean> {
  const now = new Date();
  return utimes(file, now, now).then(
    () => true,
    () => false,
  );
}

async function subdirectories(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  return entries
    .filter((e) => e.isDirectory() && /^[0-9a-f]{2}$/.test(e.name))
    .map((e) => e.name)
    .sort();
}

/** Every object under `root`, one two-hex folder at a time (a folder holds 1/256th of the store). */
export async function* listLocalObjects(root: string): AsyncIterable<StoredObject> {
  await restoreGraves(root);
  const base = path.join(root, 'sha256');
  for (const prefix of await subdirectories(base)) {
    const names = (await readdir(path.join(base, prefix)).catch(() => [] as string[])).filter((n) => OBJECT.test(n) && n.startsWith(prefix));
    for (let i = 0; i < names.length; i += PAGE) {
      const infos = await Promise.all(
        names.slice(i, i + PAGE).map(async (hex) => {
          const info = await stat(path.join(base, prefix, hex)).catch(() => undefined);
          return info?.isFile() ? { digest: `sha256:${hex}`, size: info.size, touchedAt: info.mtime } : undefined;
        }),
      );
      for (const info of infos) if (info) yield info;
    }
  }
}

async function relink(grave: string, file: string): Promise<void> {
  // EEXIST: a put wrote the object again meanwhile (the same bytes); either way it is in place.
  await link(grave, file).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'EEXIST') throw error;
  });
  await unlink(grave);
}

/** Deletes `file` if its mtime is before `untouchedBefore`; resolves with its size, or null when kept or gone. */
export async function deleteLocalObject(file: string, untouchedBefore: Date): Promise<number | null> {
  const grave = `${file}.${randomUUID()}.gc`;
  try {
    await rename(file, grave);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
  // From here a put finds no object (its touch fails) and writes a new one: only a touch before the rename counts.
  const info = await stat(grave);
  if (info.mtimeMs >= untouchedBefore.getTime()) {
    await relink(grave, file);
    return null;
  }
  await unlink(grave);
  return info.size;
}

/** Links back every grave a killed collector left under `root`; resolves with how many. */
export async function restoreGraves(root: string): Promise<number> {
  const base = path.join(root, 'sha256');
  let restored = 0;
  for (const prefix of await subdirectories(base)) {
    for (const name of await readdir(path.join(base, prefix)).catch(() => [] as string[])) {
      const hex = GRAVE.exec(name)?.[1];
      if (!hex) continue;
      await relink(path.join(base, prefix, name), path.join(base, prefix, hex)).catch(() => {}); // another restorer took it
      restored++;
    }
  }
  return restored;
}
