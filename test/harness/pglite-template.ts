// Test apps on the embedded database start from a copy of one freshly migrated PGlite database instead of
// migrating their own: migrating an empty PGlite costs ~8 s of CPU, a copy ~1 s, and ~60 test files open one. The
// template is built once per machine for each set of migrations (and PGlite version): it runs every migration from
// an empty database, so the migrations are still exercised by every run that changes them, and on each fresh CI
// machine. Only what cannot tell the difference uses it: a data directory that a test then opens as usual.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { cp, mkdtemp, readdir, readFile, rename, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { type Database, openDatabase } from '../../server/db/client';
import { repoRoot } from './cli';

const migrations = path.join(repoRoot, 'server', 'db', 'migrations');
let template: Promise<string> | undefined;

/** Copies a migrated embedded database into `dataDir` (where `openDatabase`/`buildApp` will find it). */
export async function seedEmbeddedDatabase(dataDir: string): Promise<void> {
  await cp(path.join(await migratedTemplate(), 'pgdata'), path.join(dataDir, 'pgdata'), { recursive: true });
}

function migratedTemplate(): Promise<string> {
  template ??= (async () => {
    const dir = path.join(os.tmpdir(), `atelier-pglite-template-${await fingerprint()}`);
    if (existsSync(dir)) return dir; // complete: it appears only by the rename below
    const building = await mkdtemp(`${dir}-building-`);
    try {
      const database = await openDatabase({ dataDir: building });
      await database.close();
      await rename(building, dir);
    } catch (error) {
      if (!existsSync(dir)) throw error; // else another worker finished first: use its copy
    } finally {
      await rm(building, { recursive: true, force: true });
    }
    return dir;
  })();
  return template;
}

/** Every migration file's name and bytes, and PGlite's version (its data format). */
async function fingerprint(): Promise<string> {
  const hash = createHash('sha256');
  const files = (await readdir(migrations, { recursive: true, withFileTypes: true })).filter((e) => e.isFile());
  for (const file of files.map((e) => path.join(e.parentPath, e.name)).sort()) {
    hash.update(path.relative(migrations, file)).update(await readFile(file));
  }
  hash.update(await readFile(path.join(repoRoot, 'node_modules', '@electric-sql', 'pglite', 'package.json')));
  return hash.digest('hex').slice(0, 16);
}

/** A migrated embedded database of its own in a temporary directory, opened; `close` also removes the directory. */
export async function openTestDatabase(name: string): Promise<{ database: Database; close(): Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `atelier-${name}-`));
  await seedEmbeddedDatabase(dir);
  const database = await openDatabase({ dataDir: dir });
  return {
    database,
    async close() {
      await database.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
