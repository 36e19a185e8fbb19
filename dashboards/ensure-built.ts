// Builds the dashboards when dashboards/dist is missing or older than their sources; `npm start` runs it
// before the control plane, and the browser tests call it. A failed build is reported, never fatal: the
// control plane still starts and its / page says how to build.
//
// Several processes call it at once (the test workers' browser files, a control plane starting beside them), and
// each control plane serves dist/ from disk on every request. So one process builds at a time (build-lock.ts; the
// others wait for it, then find the build fresh), and each build is a version of its own in dist.builds/ that dist/
// (a symbolic link) is switched to in one step: a new link renamed over the old one. No moment is without a whole
// dist/ (two renames of directories left one between them). Older versions stay for a while (prune-builds.ts): an
// answer a control plane began from one reads it whole, and a browser tab opened on one still loads its lazy chunks
// (the control plane answers a hashed asset the build in use lacks from them). `npm run build:dashboards` goes
// through here too (`--always`): vite writing into dist/ itself would rewrite the version in use in place.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { lstat, mkdir, readdir, readlink, rename, rm, stat, symlink, utimes } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { takeBuildLock } from './build-lock';
import { newVersionName, versionsDir } from './build-versions';
import { pruneBuilds, type Retention } from './prune-builds';

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
  /** Which older versions stay (prune-builds.ts; tests shorten it). */
  retain?: Partial<Retention>;
}

/**
 * Builds into a new version, then points `dist` at it with one rename of a new link over the old (never a moment
 * without a dist/); marks the version it replaced as retired now, and prunes the versions no rule keeps.
 */
export async function buildDashboards({ dir = dashboardsDir, build = viteBuild, retain, ...options }: BuildOptions = {}): Promise<void> {
  const dist = path.join(dir, 'dist');
  const versions = path.join(dir, versionsDir);
  const version = newVersionName(randomBytes(3).toString('hex'));
  const link = path.join(versions, `${version}.link`);
  // built under a name of its own, so no one serves an asset from it before it is whole
  const partial = path.join(versions, `${version}.partial`);
  await mkdir(versions, { recursive: true });
  let previous: string | undefined;
  try {
    await build(partial, options);
    await rename(partial, path.join(versions, version));
    previous = await currentVersion(dist);
    await symlink(path.join(versionsDir, version), link, 'dir');
    if ((await lstat(dist).catch(() => null))?.isDirectory()) {
      // a dist/ directory built before versions: moved into them once (the one moment without a dist/)
      await rename(dist, path.join(versions, (previous = `${version}.before`)));
    }
    await rename(link, dist);
  } catch (error) {
    await rm(link, { force: true });
    await rm(partial, { recursive: true, force: true });
    await rm(path.join(versions, version), { recursive: true, force: true });
    throw error;
  }
  // the grace period of a replaced version runs from now: a tab opened on it a week ago may still be open
  const now = new Date();
  if (previous) await utimes(path.join(versions, previous), now, now).catch(() => undefined);
  await pruneBuilds(versions, [version, await currentVersion(dist)], retain);
}

/** The version `dist` points at; undefined when it is missing or a directory (built before versions). */
async function currentVersion(dist: string): Promise<string | undefined> {
  const target = await readlink(dist).catch(() => undefined);
  return target === undefined ? undefined : path.basename(target);
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
  return withBuildLock(dir, async () => {
    if (await isBuildFresh(dir)) return 'fresh'; // built by the process we waited for
    await buildDashboards(options);
    return 'built';
  });
}

/** Holds the build lock of the dashboards in `dir` while `work` runs. */
async function withBuildLock<T>(dir: string, work: () => Promise<T>): Promise<T> {
  // a folder of claims (build-lock.ts); not `.dist.lock`, the single lock file of earlier checkouts
  const release = await takeBuildLock(path.join(dir, '.dist.claims'));
  try {
    return await work();
  } finally {
    await release();
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const started = Date.now();
  if (process.argv.includes('--always')) {
    // `npm run build:dashboards`: a build even when fresh, and a failed one fails the command
    withBuildLock(dashboardsDir, () => buildDashboards()).then(
      () => console.log(`Built the dashboards in ${((Date.now() - started) / 1000).toFixed(1)} s.`),
      (error: Error) => {
        console.error(`The dashboards could not be built:\n${error.message}`);
        process.exitCode = 1;
      },
    );
  } else {
    ensureDashboardsBuilt()
      .then((what) => {
        if (what === 'built') console.log(`Built the dashboards in ${((Date.now() - started) / 1000).toFixed(1)} s.`);
      })
      .catch((error: Error) => {
        console.error(`The dashboards could not be built, the control plane starts without them:\n${error.message}`);
      });
  }
}
