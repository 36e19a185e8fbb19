// The older builds' assets (server/http/older-builds.ts) cost no disk reads for a miss: a flood of made-up asset names
// costs at most one listing of dist.builds/ a second, not a listing and a stat of every kept build each. Before, each
// miss read dist.builds/ and looked for the name in every kept build. A build added later is found (once the listing
// is read again), one removed is never served from, even before then.
import { mkdir, mkdtemp, readdir, readFile, realpath, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { createOlderBuilds } from '../../server/http/older-builds';

/** The real disk, its readdir and stat calls counted, and a clock the test moves. */
const io = {
  calls: 0,
  nowMs: 1_000_000,
  readdir: (dir: string) => (io.calls++, readdir(dir)),
  stat: (file: string) => (io.calls++, stat(file)),
  now: () => io.nowMs,
};
const { assetOf } = createOlderBuilds(io);

let root: string;
let current: string;
const versions = () => path.join(root, 'dist.builds');

/** A whole build `name` with these assets, made as ensure-built.ts makes one: written as `.partial`, then renamed. */
async function build(name: string, assets: Record<string, string>) {
  const partial = path.join(versions(), `${name}.partial`);
  await mkdir(path.join(partial, 'assets'), { recursive: true });
  await writeFile(path.join(partial, 'index.html'), `page of ${name}`);
  for (const [file, text] of Object.entries(assets)) await writeFile(path.join(partial, 'assets', file), text);
  await rename(partial, path.join(versions(), name));
}

const text = async (name: string) => {
  const found = await assetOf(root, current, name);
  return found && readFile(found.file, 'utf8');
};

/** Moves the clock past the once-a-second reading of dist.builds/. */
function aSecondLater() {
  io.nowMs += 1001;
}

beforeAll(async () => {
  root = await realpath(await mkdtemp(path.join(tmpdir(), 'atelier-older-builds-')));
  await build('1000-1-aaaaaa', { 'page-Aaaaaaaa.js': 'oldest chunk', 'shared-Ssssssss.css': 'oldest copy' });
  await build('2000-1-bbbbbb', { 'page-Bbbbbbbb.js': 'older chunk', 'shared-Ssssssss.css': 'older copy' });
  await build('3000-1-cccccc', { 'page-Cccccccc.js': 'current chunk' });
  await mkdir(path.join(versions(), '4000-1-dddddd.partial', 'assets'), { recursive: true });
  await writeFile(path.join(versions(), '4000-1-dddddd.partial', 'assets', 'page-Dddddddd.js'), 'half a chu');
  await symlink(path.join('dist.builds', '3000-1-cccccc'), path.join(root, 'dist'));
  current = await realpath(path.join(root, 'dist'));
});
afterEach(() => {
  io.calls = 0;
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

it('answers a flood of made-up asset names without reading the disk for each', async () => {
  expect(await text('page-Bbbbbbbb.js')).toBe('older chunk');
  io.calls = 0;
  const misses = 300;
  for (let i = 0; i < misses; i++) expect(await assetOf(root, current, `made-up-${i}.js`)).toBeNull();
  // before: a listing of dist.builds/ and a stat in each of the two older builds, for every miss (900 here)
  expect(io.calls).toBe(0);
  aSecondLater();
  for (let i = 0; i < misses; i++) expect(await assetOf(root, current, `made-up-${i}.js`)).toBeNull();
  // the list of builds is read again once, and is the same: no build's assets/ read again
  expect(io.calls).toBe(1);
});

it('answers from the newest build that has a name, never the one in use, a build in progress or a page', async () => {
  expect(await text('shared-Ssssssss.css')).toBe('older copy');
  expect(await text('page-Aaaaaaaa.js')).toBe('oldest chunk');
  expect(await text('page-Cccccccc.js')).toBeNull();
  expect(await text('page-Dddddddd.js')).toBeNull();
  for (const name of ['index.html', '../index.html', '..', '.', '']) expect(await text(name)).toBeNull();
});

it('never serves from a build removed after the index was made, and finds one added once the list is read again', async () => {
  expect(await text('page-Bbbbbbbb.js')).toBe('older chunk');
  await rm(path.join(versions(), '2000-1-bbbbbb'), { recursive: true });
  // within the second: the index still names the removed build, but its files are looked at before being served
  expect(await text('page-Bbbbbbbb.js')).toBeNull();
  expect(await text('shared-Ssssssss.css')).toBe('oldest copy');
  await build('2500-1-eeeeee', { 'page-Eeeeeeee.js': 'added chunk' });
  aSecondLater();
  expect(await text('page-Eeeeeeee.js')).toBe('added chunk');
  expect(await text('page-Bbbbbbbb.js')).toBeNull();
  io.calls = 0;
  for (let i = 0; i < 100; i++) await assetOf(root, current, `made-up-${i}.js`);
  expect(io.calls).toBe(0);
});
