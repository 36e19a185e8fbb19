import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_URL, readCliConfig } from './config';

const dirs: string[] = [];
const emptyDataDir = async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'atelier-cli-'));
  dirs.push(dir);
  return dir;
};
afterAll(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

describe('readCliConfig', () => {
  it('defaults to the control plane `npm start` runs here, and its data dir', () => {
    const config = readCliConfig({ ATELIER_DATA_DIR: '/nonexistent/atelier-data' });
    expect(DEFAULT_URL).toBe('http://127.0.0.1:4000');
    expect(config).toEqual({
      url: DEFAULT_URL,
      urlSource: 'default',
      token: undefined,
      dataDir: '/nonexistent/atelier-data',
      adminTokenFile: '/nonexistent/atelier-data/admin-token',
      natsUrl: undefined,
      debug: false,
      ci: false,
    });
    expect(readCliConfig({}).dataDir).toBe(path.resolve('.atelier'));
  });

  it('reads each variable under its one name', () => {
    const config = readCliConfig({
      ATELIER_URL: 'http://atelier.internal:8080',
      ATELIER_TOKEN: ' atl_x \n',
      ATELIER_DATA_DIR: '/srv/atelier',
      NATS_URL: 'nats://n:4222',
      ATELIER_DEBUG: '1',
      CI: 'true',
    });
    expect(config).toEqual({
      url: 'http://atelier.internal:8080',
      urlSource: 'ATELIER_URL',
      token: 'atl_x',
      dataDir: '/srv/atelier',
      adminTokenFile: '/srv/atelier/admin-token',
      natsUrl: 'nats://n:4222',
      debug: true,
      ci: true,
    });
  });

  it('finds a control plane started on another port through the URL it wrote to its data dir; ATELIER_URL still wins', async () => {
    const dataDir = await emptyDataDir();
    await writeFile(path.join(dataDir, 'url'), 'http://127.0.0.1:4610\n');
    expect(readCliConfig({ ATELIER_DATA_DIR: dataDir })).toMatchObject({ url: 'http://127.0.0.1:4610', urlSource: 'data dir' });
    expect(readCliConfig({ ATELIER_DATA_DIR: dataDir, ATELIER_URL: 'http://other:1' }).url).toBe('http://other:1');
  });

  it('finds the data dir of `npm start` at the repository root from a folder below it, as git finds .git', async () => {
    const root = await emptyDataDir();
    const below = path.join(root, 'examples', 'iris');
    await mkdir(path.join(root, '.atelier'));
    await mkdir(below, { recursive: true });
    await writeFile(path.join(root, '.atelier', 'url'), 'http://127.0.0.1:4611\n');
    expect(readCliConfig({}, below)).toMatchObject({
      dataDir: path.join(root, '.atelier'),
      adminTokenFile: path.join(root, '.atelier', 'admin-token'),
      url: 'http://127.0.0.1:4611',
    });
    // one in the folder itself comes first; ATELIER_DATA_DIR, relative to the folder, before both
    await mkdir(path.join(below, '.atelier'));
    expect(readCliConfig({}, below).dataDir).toBe(path.join(below, '.atelier'));
    expect(readCliConfig({ ATELIER_DATA_DIR: 'data' }, below).dataDir).toBe(path.join(below, 'data'));
  });

  it('ignores a URL file that holds no URL', async () => {
    const dataDir = await emptyDataDir();
    await writeFile(path.join(dataDir, 'url'), 'not a url; rm -rf /\n');
    expect(readCliConfig({ ATELIER_DATA_DIR: dataDir }).url).toBe(DEFAULT_URL);
  });
});
