// Several processes ensure the dashboards are built at once (the test workers' browser files, a control plane
// starting beside them) while others serve dashboards/dist from disk: one builds and the others wait for it, and the
// old build stays in place, whole, until the new one replaces it. A second `vite build` straight into dist/ emptied
// it under a running control plane, whose pages then never loaded (daily-use.test.ts's rare failures).
import { mkdir, mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type Builder, ensureDashboardsBuilt } from '../../dashboards/ensure-built';

let dir = '';

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'atelier-ensure-built-'));
  await mkdir(path.join(dir, 'src'));
  await mkdir(path.join(dir, 'dist'));
  await writeFile(path.join(dir, 'dist', 'index.html'), 'old build');
  await utimes(path.join(dir, 'dist', 'index.html'), new Date(1_000), new Date(1_000));
  await writeFile(path.join(dir, 'src', 'main.tsx'), 'edited since'); // so the build is stale
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
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
