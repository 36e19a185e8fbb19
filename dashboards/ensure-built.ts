// Builds the dashboards when dashboards/dist is missing or older than their sources; `npm start` runs it
// before the control plane, and the browser tests call it. A failed build is reported, never fatal: the
// control plane still starts and its / page says how to build.
import { spawn } from 'node:child_process';
import { readdir, stat } from 'node:fs/promises';
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

/** Runs `vite build` in a child process (the only way its output and memory stay out of the caller's). */
export async function buildDashboards(options: { quiet?: boolean } = {}): Promise<void> {
  let viteBin: string;
  try {
    viteBin = path.join(path.dirname(createRequire(import.meta.url).resolve('vite/package.json')), 'bin', 'vite.js');
  } catch {
    throw new Error('vite is not installed (dev dependencies were omitted?): run `npm install`, then `npm run build:dashboards`.');
  }
  await new Promise<void>((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [viteBin, 'build', '--config', path.join(dashboardsDir, 'vite.config.ts'), '--logLevel', options.quiet ? 'error' : 'warn'],
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
}

/** Builds unless the build is fresh; says what it did. */
export async function ensureDashboardsBuilt(options: { quiet?: boolean } = {}): Promise<'fresh' | 'built'> {
  if (await isBuildFresh()) return 'fresh';
  await buildDashboards(options);
  return 'built';
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
