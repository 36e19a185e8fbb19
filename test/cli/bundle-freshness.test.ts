// The CLI's bundle (server/cli/bin.js) is reused only while every file it was built from is as it was: a source file
// edited in place (its directory's mtime unchanged) is picked up by the next command. Run on a checkout of its own
// (bin.js beside a two-file CLI, esbuild linked in), so the repository's own bundle is never touched.
import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { cliBin, repoRoot } from '../harness/cli';

const run = promisify(execFile);
let root = '';
const cli = path.join('server', 'cli');

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'atelier-bundle-'));
  await mkdir(path.join(root, cli), { recursive: true });
  await cp(cliBin, path.join(root, cli, 'bin.js'));
  await writeFile(path.join(root, cli, 'main.ts'), `import { word } from './word';\nconsole.log(word);\n`);
  await writeFile(path.join(root, cli, 'word.ts'), `export const word = 'first';\n`);
  await mkdir(path.join(root, 'node_modules'));
  await symlink(path.join(repoRoot, 'node_modules', 'esbuild'), path.join(root, 'node_modules', 'esbuild'));
});

afterAll(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

const atelier = async () => (await run(process.execPath, [path.join(root, cli, 'bin.js')], { cwd: root })).stdout.trim();
/** The build the cache points at (its directory's name). */
const pointedAt = async () => {
  const cache = path.join(root, 'node_modules', '.cache', 'atelier-cli');
  const [checkout] = await readdir(cache);
  return (JSON.parse(await readFile(path.join(cache, checkout!, 'current.json'), 'utf8')) as { dir: string }).dir;
};

it('runs a file edited in place after the build, and reuses the build while nothing changed', async () => {
  expect(await atelier()).toBe('first');
  const built = await pointedAt();
  expect(await atelier()).toBe('first');
  expect(await pointedAt()).toBe(built);

  const dir = await stat(path.join(root, cli));
  await writeFile(path.join(root, cli, 'word.ts'), `export const word = 'again';\n`); // same inode, same directory mtime
  expect((await stat(path.join(root, cli))).mtimeMs).toBe(dir.mtimeMs);
  expect(await atelier()).toBe('again');
  expect(await pointedAt()).not.toBe(built);
}, 60_000);
