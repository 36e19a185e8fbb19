#!/usr/bin/env node
// `npx atelier`: runs the CLI (./main.ts). Through tsx's loader every start costs ~0.5 s before the first line of the
// CLI runs (the loader thread, then each module resolved and loaded through it), so the CLI runs from a bundle
// esbuild writes once into node_modules/.cache/atelier-cli and reuses while none of the files it was built from
// changed: ~0.2 s to `--help` instead of ~0.9 s. Commands load their heavy parts (the server for `start`, the executor
// host) as split chunks only when they run. Where the bundle cannot be built or loaded (a read-only install, or
// ATELIER_CLI_TSX=1), the CLI runs through tsx as before.
//
// What a start costs here is paid by every CLI child (the test suite starts hundreds): the freshness check is one
// stat of each input (~490), by absolute path, compared with the mtime it had at the build; a file edited in place
// keeps its directory's mtime, so nothing cheaper stays correct. The bundle's files are .mjs: in node_modules no
// package.json says "type": "module", and Node would otherwise compile each file twice to detect its format. No
// node:crypto here (~3 ms to load): the cache's name for a checkout is a plain string hash. Measured base vs after
// in docs/performance.md ("The CLI's start, again").
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');
/** FNV-1a, 52 bits: a name for the checkout's cache directory, not a security boundary. */
function hashOf(text) {
  let hash = 0xcbf29ce484222325n;
  for (let i = 0; i < text.length; i++) hash = BigInt.asUintN(64, (hash ^ BigInt(text.charCodeAt(i))) * 0x100000001b3n);
  return (hash >> 12n).toString(36);
}

// One cache per checkout: worktrees sharing a node_modules never run each other's bundle.
const cacheDir = path.join(root, 'node_modules', '.cache', 'atelier-cli', hashOf(root));
const pointerFile = path.join(cacheDir, 'current.json');

/** The bundle's entry, when the pointer names one whose every input is as it was when it was built. */
function freshBundle() {
  try {
    const pointer = JSON.parse(readFileSync(pointerFile, 'utf8'));
    const { files, mtimes } = pointer.inputs;
    for (let i = 0; i < files.length; i++) if (statSync(files[i], { throwIfNoEntry: false })?.mtimeMs !== mtimes[i]) return null;
    return path.join(cacheDir, pointer.dir, 'main.mjs');
  } catch {
    return null;
  }
}

// Each module keeps its own source's URL as `import.meta.url`, so files it reads beside itself (package.json,
// migrations, worker and router scripts, the dashboards) are found where they are, not beside the bundle.
const sourceUrls = {
  name: 'source-import-meta-url',
  setup(build) {
    build.onLoad({ filter: /\.(ts|mts|js|mjs)$/ }, async (args) => {
      if (args.path.includes(`${path.sep}node_modules${path.sep}`)) return undefined;
      const text = await readFile(args.path, 'utf8');
      if (!text.includes('import.meta.url')) return undefined;
      return {
        contents: text.replaceAll('import.meta.url', JSON.stringify(pathToFileURL(args.path).href)),
        loader: /\.m?ts$/.test(args.path) ? 'ts' : 'js',
      };
    });
  },
};

/** Builds the bundle into a directory of its own, then points at it (a rename: concurrent builders never mix). */
async function buildBundle() {
  const { build } = await import('esbuild');
  const dir = `build-${Date.now()}-${process.pid}`;
  const outdir = path.join(cacheDir, dir);
  const result = await build({
    entryPoints: [path.join(here, 'main.ts')],
    outdir,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    outExtension: { '.js': '.mjs' },
    packages: 'external',
    // No keepNames: it wraps every named closure in __name(), a defineProperty each time one is made (the executor
    // host's attempt makes ~10 per task: ~3% of its CPU in S1). Only symbols esbuild renames (two modules' same
    // top-level name) show another name in a stack trace; nothing reads a function's or a class's name.
    // Beside the bundle, not inside it: an inline map is kept in the heap twice (in the source text and as its URL),
    // ~6.4 MB of every CLI process and control plane, and only `--enable-source-maps` reads it (from the file too).
    sourcemap: 'linked',
    metafile: true,
    logLevel: 'silent',
    plugins: [sourceUrls],
    // Input paths in the metafile are then relative to the repository, wherever the CLI was started from.
    absWorkingDir: root,
  });
  // This file too: a bundle built with other options is stale.
  // Absolute paths: the cache is the checkout's own, and a stat needs no path.join then.
  const files = [...Object.keys(result.metafile.inputs), path.relative(root, fileURLToPath(import.meta.url))]
    .filter((file) => !file.startsWith('node_modules/') && !file.includes(':'))
    .map((file) => path.join(root, file));
  const inputs = { files, mtimes: files.map((file) => statSync(file).mtimeMs) };
  const temp = `${pointerFile}.${process.pid}`;
  writeFileSync(temp, JSON.stringify({ dir, inputs }));
  renameSync(temp, pointerFile);
  pruneOldBuilds(dir);
  return path.join(outdir, 'main.mjs');
}

/** Builds older than a day go (a long-running `atelier executor` may still load chunks of a recent one). */
function pruneOldBuilds(keep) {
  const dayAgo = Date.now() - 86_400_000;
  for (const name of safeReaddir(cacheDir)) {
    const started = Number(/^build-(\d+)-/.exec(name)?.[1]);
    if (name !== keep && started && started < dayAgo) rmSync(path.join(cacheDir, name), { recursive: true, force: true });
  }
}

function safeReaddir(dir) {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

async function bundledEntry() {
  if (process.env.ATELIER_CLI_TSX === '1') return null;
  const fresh = freshBundle();
  if (fresh) return fresh;
  try {
    mkdirSync(cacheDir, { recursive: true });
    return await buildBundle();
  } catch {
    return null;
  }
}

const entry = await bundledEntry();
if (entry) {
  await import(pathToFileURL(entry).href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('./main.ts');
}
