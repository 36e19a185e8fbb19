// What a module's artifacts folder may hold: regular files in folders, in path order; a link or a FIFO refuses it.
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, symlink, truncate, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expect, it } from 'vitest';
import { ArtifactsRefused, collectArtifacts, MAX_ARTIFACT_BYTES, MAX_ARTIFACT_FILES } from './artifacts';

const scratch = () => mkdtemp(path.join(os.tmpdir(), 'atelier-artifacts-'));

it('lists the regular files under the folder, nested, in path order; none when the folder is missing', async () => {
  const dir = await scratch();
  await mkdir(path.join(dir, 'model', 'b'), { recursive: true });
  await writeFile(path.join(dir, 'model', 'b', 'w.bin'), Buffer.alloc(3));
  await writeFile(path.join(dir, 'model', 'a.json'), '{}');
  await mkdir(path.join(dir, 'empty'));
  expect((await collectArtifacts(dir)).map((f) => [f.path, f.size])).toEqual([
    ['model/a.json', 2],
    ['model/b/w.bin', 3],
  ]);
  expect(await collectArtifacts(path.join(dir, 'missing'))).toEqual([]);
});

it('refuses a symbolic link (to a file or a folder) and a FIFO, naming it', async () => {
  const linked = await scratch();
  await symlink('/etc', path.join(linked, 'etc'));
  await expect(collectArtifacts(linked)).rejects.toThrow(new ArtifactsRefused('"etc" is a symbolic link: write the file itself into ATELIER_ARTIFACTS_DIR'));
  const fifo = await scratch();
  await mkdir(path.join(fifo, 'm'));
  execFileSync('mkfifo', [path.join(fifo, 'm', 'pipe')]);
  await expect(collectArtifacts(fifo)).rejects.toThrow(/"m\/pipe" is not a regular file or folder/);
});

it('refuses more files, or more bytes in all, than it logs', async () => {
  const dir = await scratch();
  await Promise.all(Array.from({ length: MAX_ARTIFACT_FILES + 1 }, (_, i) => writeFile(path.join(dir, `f${i}`), '')));
  await expect(collectArtifacts(dir)).rejects.toThrow(`more than ${MAX_ARTIFACT_FILES} files`);
  const big = await scratch();
  await writeFile(path.join(big, 'huge.bin'), '');
  await truncate(path.join(big, 'huge.bin'), MAX_ARTIFACT_BYTES + 1); // sparse: nothing written
  await expect(collectArtifacts(big)).rejects.toThrow(`more than ${MAX_ARTIFACT_BYTES} (keep large data in a dataset`);
});
