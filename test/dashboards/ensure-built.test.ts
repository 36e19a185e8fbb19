// Several processes ensure the dashboards are built at once (the test workers' browser files, a control plane
// starting beside them) while others serve dashboards/dist from disk: one builds and the others wait for it, and the
// old build stays in place, whole, until the new one replaces it. A second `vite build` straight into dist/ emptied
// it under a running control plane, whose pages then never loaded (daily-use.test.ts's rare failures); a swap by two
// renames of directories left a moment with no dist/ at all, and a lock taken over from a crashed builder could be
// taken by two at once.
import { spawn } from 'node:child_process';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type Builder, buildDashboards, ensureDashboardsBuilt } from '../../dashboards/ensure-built';

let dir = '';

/** A dashboards folder whose build is stale: an old dist/ directory (as built before versions), a source newer. */
async function staleDashboards(): Promise<string> {
  const made = await mkdtemp(path.join(os.tmpdir(), 'atelier-ensure-built-'));
  await mkdir(path.join(made, 'src'));
  await mkdir(path.join(made, 'dist'));
  await writeFile(path.join(made, 'dist', 'index.html'), 'old build');
  await utimes(path.join(made, 'dist', 'index.html'), new Date(1_000), new Date(1_000));
  await writeFile(path.join(made, 'src', 'main.tsx'), 'edited since');
  return made;
}

/** `outDir/index.html`, its folder made. */
async function mkdirOf(outDir: string): Promise<string> {
  await mkdir(outDir, { recursive: true });
  return path.join(outDir, 'index.html');
}

const made: string[] = [];
beforeAll(async () => {
  made.push((dir = await staleDashboards()));
});
afterAll(async () => {
  for (const d of made) await rm(d, { recursive: true, force: true });
});

it('builds once for callers at once, and serves the old build whole until the new one is in place', async () => {
  let builds = 0;
  const finishers: (() => void)[] = [];
  let begun = () => {};
  const started = new Promise<void>((resolve) => (begun = resolve));
  const build: Builder = async (outDir) => {
    builds++;
    await mkdir(outDir, { recursive: true });
    await writeFile(path.join(outDir, 'index.html'), 'new build');
    begun();
    await new Promise<void>((resolve) => finishers.push(resolve));
  };
  const callers = [1, 2, 3].map(() => ensureDashboardsBuilt({ dir, build }));
  await started;
  // mid-build, what a control plane serves is the old build
  expect(await readFile(path.join(dir, 'dist', 'index.html'), 'utf8')).toBe('old build');
  for (const finish of finishers) finish();
  expect((await Promise.all(callers)).sort()).toEqual(['built', 'fresh', 'fresh']);
  expect(builds).toBe(1);
  expect(await readFile(path.join(dir, 'dist', 'index.html'), 'utf8')).toBe('new build');
  expect(await ensureDashboardsBuilt({ dir, build })).toBe('fresh');
});

it('never leaves a moment without dist/index.html while it rebuilds, and prunes the builds no rule keeps', async () => {
  const own = await staleDashboards();
  made.push(own);
  const index = path.join(own, 'dist', 'index.html');
  // [stop, reads]: the reader counts what it read, and stops when told
  const shared = new Int32Array(new SharedArrayBuffer(8));
  const build: Builder = async (outDir) => {
    // A build takes seconds, so any read begun before the last switch has ended before the next: two more reads.
    const reads = Atomics.load(shared, 1);
    while (Atomics.load(shared, 1) < reads + 2) await new Promise((resolve) => setTimeout(resolve, 1));
    await mkdir(outDir, { recursive: true });
    await writeFile(path.join(outDir, 'index.html'), `build of ${outDir}`);
  };
  // the dist/ directory of earlier checkouts moved into the versions: the one moment without a dist/, once
  await buildDashboards({ dir: own, build: async (outDir) => void (await writeFile(await mkdirOf(outDir), 'first')) });
  // A reader on a thread of its own, reading as fast as it can, as a control plane serving pages does.
  const reader = new Worker(
    `const { workerData, parentPort } = require('node:worker_threads');
     const fs = require('node:fs');
     const shared = new Int32Array(workerData.shared);
     let misses = 0;
     parentPort.postMessage('reading');
     while (Atomics.load(shared, 0) === 0) {
       try { fs.readFileSync(workerData.index); Atomics.add(shared, 1, 1); } catch { misses++; }
     }
     parentPort.postMessage({ misses });`,
    { eval: true, workerData: { shared: shared.buffer, index } },
  );
  const messages: unknown[] = [];
  let heard = () => {};
  reader.on('message', (m) => (messages.push(m), heard()));
  const next = () => new Promise<void>((resolve) => (heard = resolve));
  await next(); // reading
  // no grace period: only the newest two stay, so a read begun from the one before still finds it
  for (let i = 0; i < 60; i++) await buildDashboards({ dir: own, build, retain: { builds: 2, graceMs: 0 } });
  const done = next();
  Atomics.store(shared, 0, 1);
  await done;
  await reader.terminate();
  expect(messages[1]).toEqual({ misses: 0 });
  expect(await readdir(path.join(own, 'dist.builds'))).toHaveLength(2);
});

it('lets one caller, not two, take over the lock of a builder that was killed mid-build', async () => {
  const own = await staleDashboards();
  made.push(own);
  // A builder in a process of its own takes the lock and dies mid-build, leaving the lock behind.
  const crashed = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      '-e',
      `import('${path.resolve('dashboards/ensure-built.ts')}').then(({ ensureDashboardsBuilt }) =>
         ensureDashboardsBuilt({ dir: ${JSON.stringify(own)}, build: async () => process.kill(process.pid, 'SIGKILL') }))`,
    ],
    { stdio: 'inherit' },
  );
  expect(await new Promise((resolve) => crashed.on('exit', (_code, signal) => resolve(signal)))).toBe('SIGKILL');
  // What it left behind (whatever form the lock takes), to be left behind again for each round of takers.
  const left = (await readdir(own)).filter((name) => name.startsWith('.dist'));
  expect(left.length).toBeGreaterThan(0);
  const snapshot = path.join(own, 'left-behind');
  for (const name of left) await cp(path.join(own, name), path.join(snapshot, name), { recursive: true });
  let running = 0;
  let most = 0;
  const build: Builder = async (outDir) => {
    most = Math.max(most, ++running);
    await mkdir(outDir, { recursive: true });
    await new Promise((resolve) => setTimeout(resolve, 20));
    await writeFile(path.join(outDir, 'index.html'), 'after the crash');
    running--;
  };
  // Takers arriving out of step (the race needs one to look while another takes): rounds of eight, each from the
  // crashed builder's lock and a stale build.
  for (let round = 0; round < 8; round++) {
    for (const name of left) await rm(path.join(own, name), { recursive: true, force: true });
    for (const name of left) await cp(path.join(snapshot, name), path.join(own, name), { recursive: true });
    if (round > 0) await utimes(path.join(own, 'dist', 'index.html'), new Date(1_000), new Date(1_000));
    const callers = await Promise.all(
      Array.from({ length: 8 }, async () => {
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 4));
        return ensureDashboardsBuilt({ dir: own, build });
      }),
    );
    expect(most).toBe(1);
    expect(callers.filter((c) => c === 'built')).toHaveLength(1);
  }
  expect(await readFile(path.join(own, 'dist', 'index.html'), 'utf8')).toBe('after the crash');
});

it('keeps the newest builds, those replaced within the grace period, the one in use and one being built', async () => {
  const own = await mkdtemp(path.join(os.tmpdir(), 'atelier-prune-builds-'));
  made.push(own);
  const versions = path.join(own, 'dist.builds');
  const hour = 3600_000;
  const now = Date.now();
  // name → when it was replaced (its folder's mtime), oldest first
  const builds: [string, number][] = [
    [`${now - 50 * hour}-1-aaaaaa`, now - 49 * hour], // replaced two days ago: goes
    [`${now - 40 * hour}-1-bbbbbb`, now - 2 * hour], // built long ago, replaced two hours ago: a tab may still be open on it
    [`${now - 30 * hour}-1-cccccc.before`, now - 26 * hour], // goes
    [`${now - 20 * hour}-1-dddddd`, now - 25 * hour], // one of the newest three (with the two built below)
  ];
  for (const [name, replaced] of builds) {
    await mkdir(path.join(versions, name, 'assets'), { recursive: true });
    await utimes(path.join(versions, name), new Date(replaced), new Date(replaced));
  }
  // one a live process is building (this one), and one whose builder is gone
  await mkdir(path.join(versions, `${now}-${process.pid}-eeeeee.partial`));
  const dead = spawn(process.execPath, ['-e', '']);
  const deadPid = await new Promise<number>((resolve) => dead.on('exit', () => resolve(dead.pid!)));
  await mkdir(path.join(versions, `${now}-${deadPid}-ffffff.partial`));
  await buildDashboards({ dir: own, build: async (outDir) => void (await writeFile(await mkdirOf(outDir), 'newer')) });
  await buildDashboards({ dir: own, build: async (outDir) => void (await writeFile(await mkdirOf(outDir), 'newest')) });
  const left = (await readdir(versions)).sort();
  // the two builds made here, and two of those before
  expect(left.filter((name) => !builds.some(([b]) => name === b) && !name.endsWith('.partial'))).toHaveLength(2);
  expect(left).toContain(builds[1]![0]);
  expect(left).toContain(builds[3]![0]);
  expect(left).not.toContain(builds[0]![0]);
  expect(left).not.toContain(builds[2]![0]);
  expect(left).toContain(`${now}-${process.pid}-eeeeee.partial`);
  expect(left).not.toContain(`${now}-${deadPid}-ffffff.partial`);
  expect(await readFile(path.join(own, 'dist', 'index.html'), 'utf8')).toBe('newest');

  // with none kept for age or number, the build in use still stays
  await buildDashboards({ dir: own, build: async (outDir) => void (await writeFile(await mkdirOf(outDir), 'last')), retain: { builds: 0, graceMs: 0 } });
  expect((await readdir(versions)).filter((name) => !name.endsWith('.partial'))).toHaveLength(1);
  expect(await readFile(path.join(own, 'dist', 'index.html'), 'utf8')).toBe('last');
});
