import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { urlFileService } from './url-file';

const dirs: string[] = [];
afterAll(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));
const dataDir = async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'atelier-url-'));
  dirs.push(dir);
  return dir;
};
const read = (dir: string) => readFile(path.join(dir, 'url'), 'utf8').catch(() => null);

describe('the URL file a running control plane keeps in its data dir', () => {
  it('is written on start and removed on stop', async () => {
    const dir = await dataDir();
    const service = urlFileService(dir, () => 'http://127.0.0.1:4610');
    await service.start();
    expect(await read(dir)).toBe('http://127.0.0.1:4610\n');
    await service.stop();
    expect(await read(dir)).toBeNull();
    await service.stop(); // idempotent
  });

  it('is left alone on stop when another control plane has written its own address since', async () => {
    const dir = await dataDir();
    const service = urlFileService(dir, () => 'http://127.0.0.1:4610');
    await service.start();
    await writeFile(path.join(dir, 'url'), 'http://127.0.0.1:4611\n');
    await service.stop();
    expect(await read(dir)).toBe('http://127.0.0.1:4611\n');
  });
});
