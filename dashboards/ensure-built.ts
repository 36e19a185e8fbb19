// Builds the dashboards when dashboards/dist is missing or older than their sources; `npm start` runs it
// before the control plane, and the browser tests call it. A failed build is reported, never fatal: the
// control plane still starts and its / page says how to build.
//
// Several processes call it at once (the test workers' browser files, a control plane starting beside them), and
// each control plane serves dist/ from disk on every request. So one process builds at a time (a lock file beside
// dist/; the others wait for it, then find the build fresh), and a build is written to a directory of its own and
// put in place by renames: vite empties its output directory first, and a second build into dist/ itself left a
// running control plane's pages without their index.html or scripts for a moment (the daily-use flake).
import { spawn } from 'node:child_process';
import { open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const dashboardsDir = path.dirname(fileURLToPath(import.meta.url));
// the lockfile too: an upgraded dependency changes the bundle
const sources = ['src', 'public', 'index.html', 'vite.config.ts', 'tsconfig.json', '../package-lock.json'];

async function newestMtime(entry: string): Promise<number> {
  const info = await stat(entry).catch(() => null);
  if (!info) return 0;
  if (!info.isDirectory()) return info.mtimeMs;
  const children = await readdir(entry);
  const times = await Promise.all(children.map((child) => newestMtime(path.join(entry, child))));
  return Math.max(info.mtimeMs, ...times);
}

/** True when dist/index.html exists and is newer than every source file. */
export async function isBuildFresh(dir = dashboardsDir): Promise<boolean> {
  const built = await stat(path.join(dir, 'dist', 'index.html')).catch(() => null);
  if (!built) return false;
  const times = await Promise.all(sources.map((s) => newestMtime(path.join(dir, s))));
  return built.mtimeMs >= Math.max(...times);
}

/** Writes a build of the dashboards into `outDir` (made afresh). */
export type Builder = (outDir: string, options: { quiet?: boolean }) => Promise<void>;

interface BuildOptions {
  quiet?: boolean;
  /** The dashboards folder (tests use one of their own). */
  dir?: string;
  /** `vite build` unless a test passes another. */
  build?: Builder;
}

/** Builds into a directory of its own, then puts that in place of `dist/` (two renames: no half-written dist/). */
export async function buildDashboards({ dir = dashboardsDir, build = viteBuild, ...options }: BuildOptions = {}): Promise<void> {
  const dist = path.join(dir, 'dist');
  const fresh = `${dist}.${process.pid}.new`;
  const old = `${dist}.${process.pid}.old`;
  try {
    await build(fresh, options);
    await rm(old, { recursive: true, force: true });
    await rename(dist, old).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') throw error;
    });
    await rename(fresh, dist);
  } finally {
    await rm(fresh, { recursive: true, force: true });
    await rm(old, { recursive: true, force: true });
  }
}

/** `vite build` in a child process: the only way its output and memory stay out of the caller's. */
const viteBuild: Builder = async (outDir, options) => {
  let viteBin: string;
  try {
    viteBin = path.join(path.dirname(createRequire(import.meta.url).resolve('vite/package.json')), 'bin', 'vite.js');
  } catch {
    throw new Error('vite is not installed (dev dependencies were omitted?): run `npm install`, then `npm run build:dashboards`.');
  }
  await new Promise<void>((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [
        viteBin,
        'build',
        '--config',
        path.join(dashboardsDir, 'vite.config.ts'),
        '--outDir',
        outDir,
        '--emptyOutDir',
        '--logLevel',
        options.quiet ? 'error' : 'warn',
      ],
      {
        cwd: path.dirname(dashboardsDir),
        // a production build whatever the caller runs under (vitest sets NODE_ENV=test, which would ship preact/debug)
        env: { ...process.env, NODE_ENV: 'production' },
        stdio: ['ignore', options.quiet ? 'pipe' : 'inherit', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk;
      if (!options.quiet) process.stderr.write(chunk);
    });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`vite build exited with ${code}${stderr ? `:\n${stderr.trim()}` : ''}`))));
  });
};

/** Builds unless the build is fresh (after waiting for another process's build); says what it did. */
export async function ensureDashboardsBuilt(options: BuildOptions = {}): Promise<'fresh' | 'built'> {
  const dir = options.dir ?? dashboardsDir;
  if (await isBuildFresh(dir)) return 'fresh';
  const release = await buildLock(path.join(dir, '.dist.lock'));
  try {
    if (await isBuildFresh(dir)) return 'fresh'; // built by the process we waited for
    await buildDashboards(options);
    return 'built';
  } finally {
    await release();
  }
}

/**
 * Takes the build lock: a file made only if absent, holding the builder's pid. While a live process holds it, waits
 * until it is gone; one whose process has ended (killed mid-build), or older than any build takes (its pid since
 * reused), is taken over.
 */
async function buildLock(lockFile: string): Promise<() => Promise<void>> {
  for (;;) {
    try {
      const handle = await open(lockFile, 'wx');
      await handle.writeFile(String(process.pid));
      await handle.close();
      return () => rm(lockFile, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const holder = Number(await readFile(lockFile, 'utf8').catch(() => ''));
    const since = (await stat(lockFile).catch(() => null))?.mtimeMs ?? Date.now();
    if ((holder && !alive(holder)) || Date.now() - since > 600_000) await rm(lockFile, { force: true });
    else await new Promise((resolve) => setTimeout(resolve, 200)); // the holder's build takes seconds: look again
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const started = Date.now();
  ensureDashboardsBuilt()
    .then((what) => {
      if (what === 'built') console.log(`Built the dashboards in ${((Date.now() - started) / 1000).toFixed(1)} s.`);
    })
    .catch((error: Error) => {
      console.error(`The dashboards could not be built, the control plane starts without them:\n${error.message}`);
    });
}
