import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { ownedTempDir } from './temp-dirs';

const roots: string[] = [];
afterAll(() => Promise.all(roots.map((r) => rm(r, { recursive: true, force: true }))));

it("sweeps the folders of hosts that are gone, keeps live hosts' and names its own with its pid", async () => {
  const root = await mkdtemp(path.join(os.tmpdir(), 'atelier-temp-dirs-'));
  roots.push(root);
  const dead = spawnSync('true').pid; // exited (and reaped) before we look
  await mkdir(path.join(root, `atelier-sandbox-${dead}-aB3dE9`));
  await mkdir(path.join(root, `atelier-sandbox-${process.ppid}-zZ9zZ9`)); // alive: the process that started this one
  await mkdir(path.join(root, 'atelier-sandbox-notapid'));
  await mkdir(path.join(root, `atelier-hot-pool-${dead}-aB3dE9`)); // another prefix: not this sweep's
  const mine = await ownedTempDir('atelier-sandbox-', root);
  expect(path.basename(mine)).toMatch(new RegExp(`^atelier-sandbox-${process.pid}-\\w{6}$`));
  expect((await readdir(root)).sort()).toEqual(
    [path.basename(mine), `atelier-sandbox-${process.ppid}-zZ9zZ9`, 'atelier-sandbox-notapid', `atelier-hot-pool-${dead}-aB3dE9`].sort(),
  );
});
