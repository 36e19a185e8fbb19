// The embedded database is one process's at a time (server/db/data-dir-lock.ts): a second opener is refused before it
// touches the directory, with who holds it and what to do; the lock goes with its holder however it ends (no stale
// lock after a SIGKILL); a directory PGlite cannot open says how to recover.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, realpathSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, queryRows } from '../../server/db/client';
import { lockDataDir } from '../../server/db/data-dir-lock';
import { repoRoot } from '../harness/cli';
import { seedEmbeddedDatabase } from '../harness/pglite-template';

let dir: string;
/** server/db/data-dir-lock.ts as plain JavaScript (it imports only Node's modules): a holder starts without tsx's loader. */
let lockModule: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'atelier-data-dir-lock-'));
  lockModule = path.join(dir, 'data-dir-lock.mjs');
  const { build } = await import('esbuild');
  await build({
    entryPoints: [path.join(repoRoot, 'server/db/data-dir-lock.ts')],
    outfile: lockModule,
    bundle: true,
    format: 'esm',
    platform: 'node',
    logLevel: 'silent',
  });
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A process that takes the lock on `dir` and keeps it until killed (run under `wrap`: a namespace of its own). */
async function holdingChild(dir: string, abstract: boolean, wrap: string[] = []) {
  const child = spawn(
    wrap[0] ?? process.execPath,
    [
      ...(wrap.length ? [...wrap.slice(1), process.execPath] : []),
      '--input-type=module',
      '-e',
      `import { lockDataDir } from ${JSON.stringify(pathToFileURL(lockModule).href)}; await lockDataDir(${JSON.stringify(dir)}, { abstract: ${abstract} }); console.log('held'); setInterval(() => {}, 1000);`,
    ],
    { cwd: repoRoot, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (c: Buffer) => c.toString().includes('held') && resolve());
    child.once('exit', (code) => reject(new Error(`the holder exited (${code}) before taking the lock`)));
  });
  return child;
}

describe('the embedded database’s lock', () => {
  it('refuses a second opener while the first has it, and lets the next one in once it is closed', async () => {
    const data = path.join(dir, 'twice');
    await seedEmbeddedDatabase(data);
    const first = await openDatabase({ dataDir: data });
    try {
      const refused = await openDatabase({ dataDir: data }).then(
        () => 'opened',
        (error: Error) => error.message,
      );
      expect(refused).toContain(`Another Atelier process (pid ${process.pid}) is using the embedded database in ${path.join(data, 'pgdata')}`);
      expect(refused).toContain('ATELIER_DATA_DIR=');
      // The first one is untouched by the refusal.
      expect(await queryRows<{ one: number }>(first.db, sql`select 1 as one`)).toEqual([{ one: 1 }]);
    } finally {
      await first.close();
    }
    const next = await openDatabase({ dataDir: data });
    expect(await queryRows<{ one: number }>(next.db, sql`select 1 as one`)).toEqual([{ one: 1 }]);
    await next.close();
  }, 60_000);

  it('goes with a holder that is killed: no stale lock to clear', async () => {
    const held = path.join(dir, 'killed');
    await rm(held, { recursive: true, force: true });
    await mkdir(held, { recursive: true });
    const child = await holdingChild(held, true);
    await expect(lockDataDir(held)).rejects.toThrow(`(pid ${child.pid})`);
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
    const mine = await lockDataDir(held);
    await mine.release();
  }, 60_000);

  it('refuses while a process in another network namespace holds it (two containers on one volume), and not once it is killed', async () => {
    const held = path.join(dir, 'other-netns');
    await mkdir(held, { recursive: true });
    // An abstract socket name is its network namespace's alone: this holder's is out of this process's reach.
    const child = await holdingChild(held, true, ['bwrap', '--dev-bind', '/', '/', '--unshare-net', '--die-with-parent', '--']);
    // Refused once the file's lock stays held for 1 s (the product waits 5 s, for a holder just killed to let go).
    await expect(lockDataDir(held, { fileLockWaitSeconds: 1 })).rejects.toThrow(`Another Atelier process is using the embedded database in ${held}`);
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
    const mine = await lockDataDir(held);
    await mine.release();
  }, 60_000);

  it('still refuses once the lock file beside the directory is deleted under its holder (in another network namespace)', async () => {
    const held = path.join(dir, 'lock-file-deleted');
    await mkdir(held, { recursive: true });
    const child = await holdingChild(held, true, ['bwrap', '--dev-bind', '/', '/', '--unshare-net', '--die-with-parent', '--']);
    await rm(`${held}.lock`);
    // Refused once the file's lock stays held for 1 s (the product waits 5 s, for a holder just killed to let go).
    await expect(lockDataDir(held, { fileLockWaitSeconds: 1 })).rejects.toThrow(`Another Atelier process is using the embedded database in ${held}`);
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
    const mine = await lockDataDir(held);
    await mine.release();
  }, 60_000);

  it('as a socket file (where there is no abstract namespace): refuses while held, and clears one its process left behind', async () => {
    const held = path.join(dir, 'file-socket');
    await mkdir(held, { recursive: true });
    const mine = await lockDataDir(held, { abstract: false });
    await expect(lockDataDir(held, { abstract: false })).rejects.toThrow(`(pid ${process.pid})`);
    await mine.release();
    // A holder killed outright leaves its socket file: nobody listens on it, so the next opener takes the lock.
    const child = await holdingChild(held, false);
    await expect(lockDataDir(held, { abstract: false })).rejects.toThrow(`(pid ${child.pid})`);
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
    const key = createHash('sha256').update(realpathSync(held)).digest('hex').slice(0, 32);
    expect(existsSync(path.join(os.tmpdir(), `atelier-embedded-${key}.sock`))).toBe(true);
    const next = await lockDataDir(held, { abstract: false });
    await next.release();
  }, 60_000);

  it('says how to recover when PGlite cannot open the directory, and holds no lock after', async () => {
    const damaged = path.join(dir, 'damaged');
    await seedEmbeddedDatabase(damaged);
    const pgdata = path.join(damaged, 'pgdata');
    await writeFile(path.join(pgdata, 'global', 'pg_control'), 'not a control file');
    const failed = await openDatabase({ dataDir: damaged }).then(
      () => 'opened',
      (error: Error) => error.message,
    );
    expect(failed).toContain(`Could not open the embedded database in ${pgdata}`);
    expect(failed).toContain(`mv ${pgdata} ${pgdata}.damaged`);
    const after = await lockDataDir(pgdata);
    await after.release();
  }, 60_000);

  it('says a read-only data directory cannot be written (not that it is damaged), and changes nothing in it', async () => {
    const data = path.join(dir, 'read-only');
    await seedEmbeddedDatabase(data);
    const pgdata = path.join(data, 'pgdata');
    const before = await readFile(path.join(pgdata, 'global', 'pg_control'));
    /** What opening `what` says in a process that sees `mount` read-only (a read-only volume). */
    const opened = (mount: string, code: string) => {
      const child = spawn(
        'bwrap',
        ['--dev-bind', '/', '/', '--ro-bind', mount, mount, '--die-with-parent', '--', process.execPath, '--import', 'tsx', '-e', code],
        { cwd: repoRoot, stdio: ['ignore', 'pipe', 'inherit'] },
      );
      let out = '';
      child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
      return new Promise<string>((resolve) => child.once('exit', () => resolve(out.trim())));
    };
    const server = (file: string) => JSON.stringify(path.join(repoRoot, 'server', file));
    // The embedded database's own directory read-only (the data directory writable).
    const db = await opened(
      pgdata,
      `import { openDatabase } from ${server('db/client.ts')}; await openDatabase({ dataDir: ${JSON.stringify(data)} }).then(() => console.log('opened'), (e) => console.log(e.message));`,
    );
    expect(db).toContain(`The embedded database in ${pgdata} cannot be written: its file system is mounted read-only. Nothing in it was changed.`);
    expect(db).not.toContain('damaged');
    // The whole data directory read-only: the server says so before opening anything.
    const app = await opened(
      data,
      `import { buildApp } from ${server('app.ts')}; import { loadConfig } from ${server('config/index.ts')}; await buildApp(loadConfig({ PORT: '0', ATELIER_DATA_DIR: ${JSON.stringify(data)}, ATELIER_LOG_LEVEL: 'silent' })).then(() => console.log('built'), (e) => console.log(e.message));`,
    );
    expect(app).toContain(`The data directory (ATELIER_DATA_DIR) ${data} cannot be written: its file system is mounted read-only.`);
    expect(await readFile(path.join(pgdata, 'global', 'pg_control'))).toEqual(before);
    // Writable again, it opens as it was.
    const database = await openDatabase({ dataDir: data });
    expect(await queryRows<{ one: number }>(database.db, sql`select 1 as one`)).toEqual([{ one: 1 }]);
    await database.close();
  }, 120_000);
});
