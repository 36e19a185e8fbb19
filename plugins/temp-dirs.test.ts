// Folders a process owns in the temp directory: swept once their process is gone, and only by a process of the same
// pid namespace (a pid means nothing in another one).
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { ownedTempDir, pidNamespace } from './temp-dirs';

const repoRoot = path.join(import.meta.dirname, '..');

const roots: string[] = [];
afterAll(() => Promise.all(roots.map((r) => rm(r, { recursive: true, force: true }))));

it("sweeps the folders of hosts that are gone, keeps live hosts' and names its own with its pid", async () => {
  const root = await mkdtemp(path.join(os.tmpdir(), 'atelier-temp-dirs-'));
  roots.push(root);
  const dead = spawnSync('true').pid; // exited (and reaped) before we look
  const namespace = pidNamespace();
  await mkdir(path.join(root, `atelier-sandbox-${dead}-aB3dE9`)); // named before namespaces were: by its pid alone
  await mkdir(path.join(root, `atelier-sandbox-${dead}-${namespace}-cD4eF5`));
  await mkdir(path.join(root, `atelier-sandbox-${dead}-1234-gH6iJ7`)); // another namespace's pid: not this sweep's to judge
  await mkdir(path.join(root, `atelier-sandbox-${process.ppid}-zZ9zZ9`)); // alive: the process that started this one
  await mkdir(path.join(root, 'atelier-sandbox-notapid'));
  await mkdir(path.join(root, `atelier-hot-pool-${dead}-aB3dE9`)); // another prefix: not this sweep's
  const mine = await ownedTempDir('atelier-sandbox-', root);
  expect(namespace).toMatch(/^\d+$/);
  expect(path.basename(mine)).toMatch(new RegExp(`^atelier-sandbox-${process.pid}-${namespace}-\\w{6}$`));
  expect((await readdir(root)).sort()).toEqual(
    [
      path.basename(mine),
      `atelier-sandbox-${process.ppid}-zZ9zZ9`,
      'atelier-sandbox-notapid',
      `atelier-hot-pool-${dead}-aB3dE9`,
      `atelier-sandbox-${dead}-1234-gH6iJ7`,
    ].sort(),
  );
});

it("leaves a live process's folder to a process in another pid namespace sharing the temp directory", async () => {
  const root = await mkdtemp(path.join(os.tmpdir(), 'atelier-temp-dirs-'));
  roots.push(root);
  const mine = await ownedTempDir('atelier-sandbox-', root);
  // A process in a fresh pid namespace (as a container or `bwrap --unshare-pid` starts one), same file system: there,
  // this process's pid runs nothing (or something else).
  const code = `import { ownedTempDir } from ${JSON.stringify(path.join(repoRoot, 'plugins', 'temp-dirs.ts'))}; console.log(await ownedTempDir('atelier-sandbox-', ${JSON.stringify(root)}));`;
  const other = spawnSync('bwrap', ['--dev-bind', '/', '/', '--unshare-pid', '--die-with-parent', '--', process.execPath, '--import', 'tsx', '-e', code], {
    cwd: repoRoot,
    encoding: 'utf8',
    timeout: 60_000,
  });
  expect(other.status, other.stderr).toBe(0);
  const theirs = other.stdout.trim();
  expect(path.dirname(theirs)).toBe(root);
  expect((await readdir(root)).sort()).toEqual([path.basename(mine), path.basename(theirs)].sort());
}, 60_000);
