// Test apps on the embedded database start from a copy of one freshly migrated PGlite database instead of
// migrating their own: migrating an empty PGlite costs ~8 s of CPU, a copy ~1 s, and ~60 test files open one. The
// template is built once per machine for each set of migrations (and PGlite version): it runs every migration from
// an empty database, so the migrations are still exercised by every run that changes them, and on each fresh CI
// machine. Only what cannot tell the difference uses it: a data directory that a test then opens as usual.
//
// Two things make a copy cheap, since ~140 test apps open one. Its files (~1,400) are copied side by side from a list
// made once, not by `fs.cp` walking the tree file by file (~0.5 s a copy, ~0.1 s so). And the template's
// postgresql.conf asks for 16 MB of shared buffers instead of initdb's 128 MB: PGlite sets up the whole pool in its
// WebAssembly memory each time it opens a database, ~0.35 s for 128 MB, and no test's database comes near 16 MB.
// Databases the product makes itself (the embedded default) keep initdb's settings.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Database, openDatabase } from '../../server/db/client';
import { repoRoot } from './cli';

const migrations = path.join(repoRoot, 'server', 'db', 'migrations');
let template: Promise<Template> | undefined;

interface Template {
  pgdata: string;
  /** Relative to `pgdata`: every folder, parents first, and every file. */
  folders: string[];
  files: string[];
}

/** Copies a migrated embedded database into `dataDir` (where `openDatabase`/`buildApp` will find it). */
export async function seedEmbeddedDatabase(dataDir: string): Promise<void> {
  const { pgdata, folders, files } = await migratedTemplate();
  const target = path.join(dataDir, 'pgdata');
  for (const folder of ['', ...folders]) await mkdir(path.join(target, folder), { recursive: true, mode: 0o700 });
  await Promise.all(files.map((file) => copyFile(path.join(pgdata, file), path.join(target, file))));
}

function migratedTemplate(): Promise<Template> {
  template ??= (async () => {
    const pgdata = path.join(await builtTemplate(), 'pgdata');
    const entries = await readdir(pgdata, { recursive: true, withFileTypes: true });
    const relative = (e: (typeof entries)[number]) => path.relative(pgdata, path.join(e.parentPath, e.name));
    return {
      pgdata,
      folders: entries
        .filter((e) => e.isDirectory())
        .map(relative)
        .sort(),
      files: entries.filter((e) => e.isFile()).map(relative),
    };
  })();
  return template;
}

async function builtTemplate(): Promise<string> {
  const dir = path.join(os.tmpdir(), `atelier-pglite-template-${await fingerprint()}`);
  if (existsSync(dir)) return dir; // complete: it appears only by the rename below
  const building = await mkdtemp(`${dir}-building-`);
  try {
    const database = await openDatabase({ dataDir: building });
    await database.close();
    const conf = path.join(building, 'pgdata', 'postgresql.conf');
    await writeFile(conf, `${await readFile(conf, 'utf8')}\n# Atelier's test template (test/harness/pglite-template.ts)\nshared_buffers = 16MB\n`);
    await rename(building, dir);
  } catch (error) {
    if (!existsSync(dir)) throw error; // else another worker finished first: use its copy
  } finally {
    await rm(building, { recursive: true, force: true });
  }
  return dir;
}

/** Every migration file's name and bytes, PGlite's version (its data format), and this file (how it is made). */
async function fingerprint(): Promise<string> {
  const hash = createHash('sha256');
  const files = (await readdir(migrations, { recursive: true, withFileTypes: true })).filter((e) => e.isFile());
  for (const file of files.map((e) => path.join(e.parentPath, e.name)).sort()) {
    hash.update(path.relative(migrations, file)).update(await readFile(file));
  }
  hash.update(await readFile(path.join(repoRoot, 'node_modules', '@electric-sql', 'pglite', 'package.json')));
  hash.update(await readFile(fileURLToPath(import.meta.url)));
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
